/**
 * `node --import tsx scripts/cli/lab-check.ts [--keep]`: runs `npm run verify` and `npm run restore` exactly as
 * an operator would (child processes, standard endpoint variables) against a local-lab session — moto
 * for S3/DynamoDB/SQS, the project's RDS log endpoint serving fixture files, the real handlers — then
 * breaks the backup three ways and expects each to be found:
 *
 *   clean              verify (--deep) exits 0; restore writes every file byte-identical
 *   tampered object    a segment replaced by other bytes (a new version): verify CHECKSUM_MISMATCH,
 *                      restore exits 1 and leaves no output file
 *   missing range      a segment deleted (a delete marker): verify GAP
 *   LOST file          a file grows, is marked PENDING, and vanishes from RDS before the downloader
 *                      reads it: the downloader records LOST, verify reports LOST
 *
 * Exit status 0 when every expectation held. Needs moto_server (as the lab does); no MariaDB.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { paginateScan } from '@aws-sdk/lib-dynamodb';
import { ENV, LedgerStatus, logFilePrefix } from '../../lambda/shared/contract';
import { LAB_CREDENTIALS } from '../local-lab/aws-services';
import { LAB_INSTANCE_IDS, type LabSession, startLabSession } from '../local-lab/lab-session';
import { installCleanupHandlers, ProcessRegistry } from '../local-lab/processes';

const ROOT = join(__dirname, '..', '..');
const REGION = 'us-east-1';
const FILE_A = 'audit/audit.log.0.2026-11-25-13-05.0';
const FILE_B = 'audit/audit.log.1.2026-11-25-13-05.0';
const FILE_R = 'audit/audit.log.0.2026-11-25-13-05.1';
/** Small pages and objects, so a file is several segments and a missing one is a gap. */
const PAGE_LIMIT_BYTES = 100_000;
const MAX_OBJECT_BYTES = 300_000;

const log = (line: string) => process.stdout.write(`${line}\n`);

function auditText(bytes: number, seed: string): string {
  let text = '';
  for (let i = 0; text.length < bytes; i++) {
    text += `1764075900${String(i).padStart(6, '0')},ip-10-0-0-1,app,10.0.0.9,${i},${i},QUERY,sbtest,'SELECT c FROM sbtest1 WHERE id=${i} /* ${seed} */',0\n`;
  }
  return text;
}

interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command as a child process. Asynchronously: the RDS log endpoint lives in this process and
 * must keep answering while the child calls it.
 */
async function runCli(session: LabSession, script: 'verify' | 'restore', args: string[]): Promise<CliRun> {
  const env = {
    ...process.env,
    AWS_ENDPOINT_URL: session.aws.url,
    AWS_ENDPOINT_URL_RDS: session.rdsEndpointUrl,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: LAB_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LAB_CREDENTIALS.secretAccessKey,
    // The SDK's Node-version notice is not what these checks look at.
    NODE_NO_WARNINGS: '1',
    [ENV.bucket]: session.resources.bucket,
    [ENV.ledgerTable]: session.resources.ledgerTable,
  };
  // The npm scripts' own command line (`node --import tsx ...`).
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'cli', `${script}.ts`), ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() };
}

async function ledgerStatuses(session: LabSession): Promise<Map<string, string>> {
  const statuses = new Map<string, string>();
  const pages = paginateScan({ client: session.clients.ledger }, { TableName: session.resources.ledgerTable, ConsistentRead: true });
  for await (const page of pages) {
    for (const item of page.Items ?? []) statuses.set(`${item.DBInstanceIdentifier}/${item.LogFileName}`, String(item.Status));
  }
  return statuses;
}

async function segmentKeys(session: LabSession, instance: string, file: string): Promise<string[]> {
  const keys: string[] = [];
  const pages = paginateListObjectsV2({ client: session.clients.s3 }, { Bucket: session.resources.bucket, Prefix: logFilePrefix(instance, file) });
  for await (const page of pages) for (const entry of page.Contents ?? []) if (entry.Key) keys.push(entry.Key);
  return keys;
}

function findingCodes(report: { findings: Array<{ code: string; key?: string; file?: string }> }): string[] {
  return report.findings.map((finding) => finding.code).sort();
}

async function main(): Promise<number> {
  const keep = process.argv.includes('--keep');
  const workDir = mkdtempSync(join(tmpdir(), 'verify-lab-'));
  const writerDir = join(workDir, 'fixtures', 'writer');
  const readerDir = join(workDir, 'fixtures', 'reader');
  for (const dir of [writerDir, readerDir]) mkdirSync(join(dir, 'audit'), { recursive: true });
  const sources: Record<string, string> = {
    [`${LAB_INSTANCE_IDS.writer}/${FILE_A}`]: join(writerDir, FILE_A),
    [`${LAB_INSTANCE_IDS.writer}/${FILE_B}`]: join(writerDir, FILE_B),
    [`${LAB_INSTANCE_IDS.reader}/${FILE_R}`]: join(readerDir, FILE_R),
  };
  writeFileSync(sources[`${LAB_INSTANCE_IDS.writer}/${FILE_A}`], auditText(1_500_000, 'a'));
  writeFileSync(sources[`${LAB_INSTANCE_IDS.writer}/${FILE_B}`], auditText(200_000, 'b'));
  writeFileSync(sources[`${LAB_INSTANCE_IDS.reader}/${FILE_R}`], auditText(400_000, 'r'));

  const registry = new ProcessRegistry(join(workDir, 'pids.json'));
  installCleanupHandlers(registry, (error) => process.stderr.write(`[lab-check] fatal: ${String((error as Error)?.stack ?? error)}\n`));
  const results: Array<{ check: string; ok: boolean; detail: string }> = [];
  const expect = (check: string, ok: boolean, detail: string) => {
    results.push({ check, ok, detail });
    log(`[lab-check] ${ok ? 'PASS' : 'FAIL'} ${check}: ${detail}`);
  };

  let session: LabSession | undefined;
  try {
    session = await startLabSession(
      {
        workDir,
        region: REGION,
        audit: { rotateSizeBytes: 1_000_000, rotations: 10 },
        fixtureLogDirs: { writer: writerDir, reader: readerDir },
        lambda: { envOverrides: { downloader: { [ENV.maxObjectBytes]: String(MAX_OBJECT_BYTES) } } },
        endpointSettings: { pageLimitBytes: PAGE_LIMIT_BYTES },
        log,
      },
      registry,
    );
    for (let cycle = 1; cycle <= 10; cycle++) {
      await session.service.cycle();
      const statuses = [...(await ledgerStatuses(session)).values()];
      if (statuses.length === 3 && statuses.every((status) => status === LedgerStatus.DONE)) break;
    }

    // ---- Clean ---------------------------------------------------------------------------------
    const reportFile = join(workDir, 'verify-clean.json');
    const clean = await runCli(session, 'verify', ['--deep', '--json', reportFile]);
    const cleanReport = existsSync(reportFile) ? JSON.parse(readFileSync(reportFile, 'utf8')) : { findings: [], totals: {} };
    expect(
      'verify, clean backup',
      clean.status === 0 && cleanReport.findings.length === 0,
      `exit ${clean.status}; ${cleanReport.totals.objectsChecked} objects, ${cleanReport.totals.bytesHashed} bytes re-hashed, ${cleanReport.totals.filesListed} RDS files; findings ${JSON.stringify(findingCodes(cleanReport))}${clean.stderr ? `; stderr ${clean.stderr.trim()}` : ''}`,
    );
    for (const [id, path] of Object.entries(sources)) {
      const [instance, ...rest] = id.split('/');
      const out = join(workDir, `restored-${instance}-${rest.join('_').replace(/\//g, '_')}`);
      const restored = await runCli(session, 'restore', ['--instance', instance, '--file', rest.join('/'), '--out', out]);
      const same = existsSync(out) && createHash('sha256').update(readFileSync(out)).digest('hex') === createHash('sha256').update(readFileSync(path)).digest('hex');
      expect(`restore ${id}`, restored.status === 0 && same, `exit ${restored.status}; byte-identical ${same}; ${restored.stderr.trim().split('\n').at(-1)}`);
    }

    // ---- Tampered object ---------------------------------------------------------------------------
    const keysA = await segmentKeys(session, LAB_INSTANCE_IDS.writer, FILE_A);
    const tampered = keysA[1];
    const original = readFileSync(sources[`${LAB_INSTANCE_IDS.writer}/${FILE_A}`]);
    const [start, end] = tampered.slice(tampered.lastIndexOf('/') + 1).split('-').map(Number);
    const forged = Buffer.from(original.subarray(start, end).toString().replace('SELECT', 'DELETE'));
    await session.clients.s3.send(
      new PutObjectCommand({
        Bucket: session.resources.bucket,
        Key: tampered,
        Body: forged,
        ChecksumAlgorithm: 'SHA256',
        ChecksumSHA256: createHash('sha256').update(forged).digest('base64'),
      }),
    );
    const afterTamper = await runCli(session, 'verify', ['--json', '-']);
    const tamperReport = JSON.parse(afterTamper.stdout);
    expect(
      'verify finds the tampered object',
      afterTamper.status === 1 && tamperReport.findings.some((f: { code: string; key?: string }) => f.code === 'CHECKSUM_MISMATCH' && f.key === tampered),
      `exit ${afterTamper.status}; findings ${JSON.stringify(findingCodes(tamperReport))}`,
    );
    const refusedOut = join(workDir, 'restored-tampered');
    const refused = await runCli(session, 'restore', ['--instance', LAB_INSTANCE_IDS.writer, '--file', FILE_A, '--out', refusedOut]);
    expect(
      'restore refuses the tampered file',
      refused.status === 1 && !existsSync(refusedOut) && !existsSync(`${refusedOut}.partial`),
      `exit ${refused.status}; ${refused.status === 1 ? refused.stderr.trim().split('\n')[0] : refused.stderr.trim()}`,
    );

    // ---- Missing range ---------------------------------------------------------------------------
    const deleted = keysA[2];
    await session.clients.s3.send(new DeleteObjectCommand({ Bucket: session.resources.bucket, Key: deleted }));
    const afterDelete = await runCli(session, 'verify', ['--json', '-']);
    const deleteReport = JSON.parse(afterDelete.stdout);
    expect(
      'verify finds the missing range',
      afterDelete.status === 1 && deleteReport.findings.some((f: { code: string; detail: string }) => f.code === 'GAP' && f.detail.includes(deleted)),
      `exit ${afterDelete.status}; findings ${JSON.stringify(findingCodes(deleteReport))}`,
    );

    // ---- LOST file ---------------------------------------------------------------------------------
    appendFileSync(sources[`${LAB_INSTANCE_IDS.writer}/${FILE_B}`], auditText(50_000, 'b2'));
    await session.service.tickSchedule();
    await session.service.sqsSource.pump();
    const pending = (await ledgerStatuses(session)).get(`${LAB_INSTANCE_IDS.writer}/${FILE_B}`);
    session.endpoint?.hideFile(LAB_INSTANCE_IDS.writer, FILE_B);
    await session.service.streamSource.pump();
    const lostStatus = (await ledgerStatuses(session)).get(`${LAB_INSTANCE_IDS.writer}/${FILE_B}`);
    const afterLost = await runCli(session, 'verify', ['--json', '-']);
    const lostReport = JSON.parse(afterLost.stdout);
    expect(
      'verify finds the LOST file',
      pending === LedgerStatus.PENDING &&
        lostStatus === LedgerStatus.LOST &&
        afterLost.status === 1 &&
        lostReport.findings.some((f: { code: string; file?: string }) => f.code === 'LOST' && f.file === FILE_B),
      `ledger ${pending} -> ${lostStatus}; exit ${afterLost.status}; findings ${JSON.stringify(findingCodes(lostReport))}`,
    );
  } finally {
    await session?.stop({ keep });
    if (!keep) rmSync(workDir, { recursive: true, force: true });
    else log(`[lab-check] kept ${workDir}`);
  }
  const failed = results.filter((result) => !result.ok);
  log(`[lab-check] ${results.length - failed.length}/${results.length} checks passed`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`[lab-check] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 2;
  },
);
