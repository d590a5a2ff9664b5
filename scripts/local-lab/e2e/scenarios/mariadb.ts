/**
 * Real MariaDB server_audit logs: steady growth under sysbench across many cycles (writer and reader,
 * with rotations), and MariaDB rotating (renaming) the very file a downloader is reading.
 */
import { join } from 'node:path';
import type { LabSession } from '../../lab-session';
import { AUDIT_FILE_BASENAME, MariaDbInstance } from '../../mariadb';
import { sleep } from '../../net';
import { prepareSysbench, runDdlAndDcl, runSysbench, WorkloadSettings } from '../../workload';
import { fileId, Scenario, ScenarioRun } from '../harness';
import { LAB_TIME, mariaDbSources } from './common';

export const steadyGrowth: Scenario = {
  id: 'steady-growth',
  title: 'MariaDB under sysbench, then steady growth over many cycles',
  mariadb: true,
  timeoutMs: 200_000,
  async run(run) {
    const session = await run.startSession({
      audit: { rotateSizeBytes: 1_000_000, rotations: 999 },
      // sysbench writes megabytes per second; CDATA keeps the SDK's XML parsing of them cheap (the
      // fixture scenarios cover the escaped encoding RDS uses).
      endpoint: { logDataEncoding: 'cdata' },
      lambda: LAB_TIME,
    });
    const databases = session.databases!;
    const sources = () => mariaDbSources(session);
    const workload: WorkloadSettings = { durationSeconds: 6, threads: 1, tables: 1, tableSize: 1000, logDir: join(run.workDir, 'logs') };
    await Promise.all([prepareSysbench(run.registry, databases.writer, workload), prepareSysbench(run.registry, databases.reader, workload)]);

    let stored = 0;
    let cyclesWithNewBytes = 0;
    const cycle = async (label: string): Promise<void> => {
      await run.cycle(sources, label);
      const now = (await run.ledgerItems()).reduce((sum, item) => sum + item.BackedUpBytes, 0);
      if (now > stored) cyclesWithNewBytes += 1;
      stored = now;
    };

    run.log(`sysbench for ${workload.durationSeconds} s on the writer (oltp_read_write) and the reader (oltp_read_only) while the pipeline cycles`);
    let running = true;
    let workloadError: unknown;
    void Promise.all([
      runSysbench(run.registry, databases.writer, 'writer', 1, workload),
      runSysbench(run.registry, databases.reader, 'reader', 1, workload),
      sleep(2000).then(() => runDdlAndDcl(databases.writer, 1)),
    ]).then(
      () => (running = false),
      (error: unknown) => {
        workloadError = error;
        running = false;
      },
    );
    while (running) {
      const begin = Date.now();
      await cycle('sysbench');
      await run.pause(Math.max(0, 1000 - (Date.now() - begin)));
    }
    run.require('the sysbench workload ran', workloadError === undefined, String(workloadError ?? ''));

    run.log('steady growth: every cycle both instances write more (queries, DDL and DCL)');
    for (let round = 1; round <= STEADY_ROUNDS; round += 1) {
      await auditTraffic(databases.writer, 150_000, `steady-${round}`);
      await auditTraffic(databases.reader, 60_000, `steady-${round}`);
      if (round % 2 === 0) await runDdlAndDcl(databases.writer, 1 + round);
      await cycle('steady');
    }
    const caughtUp = await run.runUntilCaughtUp(sources, { intervalMs: 1000, timeoutMs: 90_000 });

    run.check('bytes were backed up incrementally in many cycles while the logs grew', cyclesWithNewBytes >= STEADY_ROUNDS, `${cyclesWithNewBytes} cycles stored new bytes`);
    const files = await sources();
    const perInstance = (instance: string) => files.filter((file) => file.instance === instance).length;
    run.check(
      'MariaDB rotated: several files per instance',
      perInstance('lab-writer') >= 2 && perInstance('lab-reader') >= 2,
      `writer ${perInstance('lab-writer')}, reader ${perInstance('lab-reader')} files`,
    );
    const sourceBytes = files.reduce((sum, file) => sum + file.size, 0);
    const served = session.endpoint!.stats().bytesServed;
    run.check('bytes read from the endpoint / bytes in the logs <= 1.01 (incremental, no re-reads)', served <= sourceBytes * 1.01, `${(served / sourceBytes).toFixed(4)}`);
    await run.finish({ sources: files, caughtUp });
  },
};

const STEADY_ROUNDS = 6;

/** Writes roughly `bytes` of audit records: SELECTs of a padded literal, as the lab user over TCP. */
async function auditTraffic(database: MariaDbInstance, bytes: number, tag: string): Promise<void> {
  const statementsPerCall = 200;
  const pad = 'x'.repeat(380);
  const calls = Math.max(1, Math.ceil(bytes / (statementsPerCall * 480)));
  for (let call = 0; call < calls; call += 1) {
    const statements = Array.from({ length: statementsPerCall }, (_, index) => `SELECT '${tag}-${call}-${index}-${pad}' AS pad`);
    await database.userSql(statements.join(';\n'));
  }
}

/** The stable name of the file MariaDB writes now (server_audit.log itself). */
async function currentFile(session: LabSession, instance: string): Promise<string | undefined> {
  return (await session.endpoint!.files()).find(
    (file) => file.DBInstanceIdentifier === instance && !file.gone && file.path.endsWith(`/${AUDIT_FILE_BASENAME}`),
  )?.LogFileName;
}

/**
 * One cycle during which MariaDB rotates `instance`'s current file as soon as the downloader has read
 * three pages of it. Returns how many pages of that file were read after the rotation (by its stable
 * name: the download continued on the renamed file).
 */
async function rotateDuringDownload(run: ScenarioRun, session: LabSession, database: MariaDbInstance, instance: string): Promise<{ file: string; pagesAfter: number; rotated: boolean }> {
  const endpoint = session.endpoint!;
  const file = await currentFile(session, instance);
  if (!file) throw new Error(`${instance} has no current audit file`);
  const calls = (): number => endpoint.stats().perFile[fileId(instance, file)]?.calls ?? 0;
  const before = calls();
  let rotatedAt: number | undefined;
  let stop = false;
  const watcher = (async () => {
    while (!stop && calls() < before + 3) await sleep(5);
    if (stop) return;
    await database.setGlobal('server_audit_file_rotate_now', 'ON');
    rotatedAt = calls();
    run.log(`rotated ${instance}'s current file ${file} after ${rotatedAt - before} pages of it were read`);
    // New records go to the new file while the old one is still being read.
    await auditTraffic(database, 100_000, `after-rotation-${instance}`);
  })();
  await run.cycle(() => mariaDbSources(session), 'rotation');
  stop = true;
  await watcher;
  return { file, pagesAfter: rotatedAt === undefined ? 0 : calls() - rotatedAt, rotated: rotatedAt !== undefined };
}

export const rotationDuringDownload: Scenario = {
  id: 'rotation-mid-download',
  title: 'MariaDB rotates the file a downloader is reading',
  mariadb: true,
  timeoutMs: 150_000,
  async run(run) {
    const session = await run.startSession({
      // No rotation by size: the scenario rotates at the moment it chooses.
      audit: { rotateSizeBytes: 50_000_000, rotations: 999 },
      endpoint: { pageLimitBytes: 64 * 1024, faults: { latencyMs: 100 } },
      lambda: LAB_TIME,
    });
    const databases = session.databases!;
    const sources = () => mariaDbSources(session);
    const rotations: Array<{ file: string; pagesAfter: number; rotated: boolean }> = [];
    for (const [role, instance] of [['writer', 'lab-writer'], ['reader', 'lab-reader'], ['writer', 'lab-writer']] as const) {
      await auditTraffic(databases[role], 900_000, `before-rotation-${rotations.length}`);
      rotations.push(await rotateDuringDownload(run, session, databases[role], instance));
    }
    const caughtUp = await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 60_000 });
    run.check(
      'every rotation happened while its file was being downloaded, and the download went on under the same name',
      rotations.every((rotation) => rotation.rotated && rotation.pagesAfter > 0),
      rotations.map((rotation) => `${rotation.file.split('.').slice(-2).join('.')}: ${rotation.pagesAfter} pages after`).join(', '),
    );
    const files = await sources();
    run.check('each rotation gave its instance a new file', files.length >= 5, `${files.length} files`);
    await run.finish({ sources: files, caughtUp });
  },
};
