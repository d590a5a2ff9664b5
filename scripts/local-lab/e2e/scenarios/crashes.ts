/**
 * The downloader stopped mid-file: by its own time budget (clean hand-off), killed at the three points
 * of its object commit (mid-download, after the intent before the PUT, after the PUT before the
 * checkpoint), and failing with an error at the same points. Every time the work must resume from the
 * checkpoint, adopt an object that was stored but not checkpointed, and read no stored byte again.
 */
import { ENV, logFilePrefix, segmentObjectKey } from '../../../../lambda/shared/contract';
import type { LabSession } from '../../lab-session';
import { formatBytes } from '../../progress';
import { rdsAction, rdsErrorAnswer, s3ErrorAnswer, Interception } from '../fault-proxy';
import { FixtureLogs } from '../fixtures';
import { fileId, Scenario, ScenarioRun, servedBytes } from '../harness';
import { countLogLines, FIXTURE_PAGE_LIMIT, fixtureSession, HAND_OFF_LOG, isSegmentPut, startProxy, storedObjects } from './common';

/** What the downloader logs when it finds a dead holder's intent (lambda/shared/download.ts). */
const ADOPTED_LOG = 'adopted the object a previous holder stored';
const DROPPED_LOG = 'previous holder died before storing its object';

/** Every file's bytes were read from RDS exactly once (nothing stored was downloaded again). */
function checkNoReread(run: ScenarioRun, session: LabSession, fixtures: FixtureLogs, allowance: number): void {
  const excess = fixtures.files.map((file) => ({
    id: fileId(file.instance, file.logFileName),
    over: servedBytes(session, file.instance, file.logFileName) - file.size,
  }));
  const total = excess.reduce((sum, entry) => sum + entry.over, 0);
  run.facts.bytesReadAgain = total;
  run.check(
    allowance === 0
      ? 'no byte was downloaded twice (endpoint bytes served = source bytes, per file)'
      : `bytes downloaded again are only those read but never stored by a dead pass (at most ${formatBytes(allowance)})`,
    excess.every((entry) => entry.over >= 0) && total <= allowance,
    excess.map((entry) => `${entry.id.split('/').pop()} +${entry.over}`).join(', '),
  );
}

export const timeoutHandOff: Scenario = {
  id: 'timeout-hand-off',
  title: 'downloader budget runs out mid-file: checkpoint, hand-off, resume',
  mariadb: false,
  timeoutMs: 150_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, {
      seed: 'timeout',
      filesPerInstance: 1,
      bytesPerFile: 1_200_000,
      endpoint: { faults: { latencyMs: 120 } },
      lambda: {
        // About 1.5 s of reading per invocation: every file needs several.
        timeoutMs: { downloader: 4000 },
        envOverrides: { downloader: { [ENV.safetyMarginMs]: '2500' } },
      },
    });
    const caughtUp = await run.runUntilCaughtUp(() => fixtures.sources(), { intervalMs: 500, timeoutMs: 100_000 });
    const stats = session.service.functions.downloader.stats;
    run.check('no invocation was killed by its timeout (the pass stops itself in time)', stats.timeouts === 0, `${stats.timeouts} timeouts in ${stats.invocations} invocations`);
    const objects = await storedObjects(session);
    const perFile = fixtures.files.map((file) => objects.filter((object) => object.key.startsWith(logFilePrefix(file.instance, file.logFileName))).length);
    const handOffs = countLogLines(run, 'downloader', HAND_OFF_LOG);
    run.check(
      'each file was stored over several hand-offs (an object and a checkpoint per invocation)',
      perFile.every((count) => count >= 2) && handOffs >= fixtures.files.length,
      `objects per file: ${perFile.join(', ')}; ${handOffs} hand-offs`,
    );
    checkNoReread(run, session, fixtures, 0);
    await run.finish({ sources: fixtures.sources(), caughtUp });
  },
};

/**
 * Kill points, in the order the suite meets them (counted over the whole run, retries included):
 * RDS call 6 is mid-segment; segment PUT 3 is stored and then the holder dies; PUT 6 never reaches S3.
 */
const KILL_AT_PORTION_CALL = 6;
const KILL_AFTER_PUT = 3;
const KILL_BEFORE_PUT = 6;
const KILL_OBJECT_BYTES = 200_000;

export const killedMidFile: Scenario = {
  id: 'killed-mid-file',
  title: 'downloader process killed mid-download, before and after its PUT',
  mariadb: false,
  timeoutMs: 180_000,
  async run(run) {
    let session: LabSession | undefined;
    let portion = 0;
    let puts = 0;
    const kills: string[] = [];
    let adoptedKey: string | undefined;
    const kill = (what: string) => async (): Promise<void> => {
      kills.push(what);
      run.log(`killing the downloader: ${what}`);
      await session?.service.functions.downloader.recycle();
    };
    const rdsProxy = await startProxy(run, () => session?.rdsEndpointUrl ?? '', (request): Interception => {
      if (rdsAction(request) === 'DownloadDBLogFilePortion' && ++portion === KILL_AT_PORTION_CALL) {
        return { action: 'drop', afterwards: kill(`mid-download (RDS call ${portion})`) };
      }
      return { action: 'forward' };
    });
    const s3Proxy = await startProxy(run, () => run.suite.awsEndpointUrl, (request): Interception => {
      if (!isSegmentPut(request)) return { action: 'forward' };
      puts += 1;
      if (puts === KILL_AFTER_PUT) {
        adoptedKey = decodeURIComponent(request.url.split('?')[0] ?? '').replace(/^\/[^/]+\//, '');
        return { action: 'forward-then-drop', afterwards: kill(`after PUT ${puts} reached S3, before the checkpoint`) };
      }
      if (puts === KILL_BEFORE_PUT) return { action: 'drop', afterwards: kill(`after the intent, before PUT ${puts} reached S3`) };
      return { action: 'forward' };
    });

    const started = await fixtureSession(run, {
      seed: 'killed',
      filesPerInstance: 1,
      bytesPerFile: 900_000,
      lambda: {
        timeoutMs: { downloader: 8000 },
        envOverrides: {
          downloader: {
            [ENV.safetyMarginMs]: '2000',
            [ENV.maxObjectBytes]: String(KILL_OBJECT_BYTES),
            AWS_ENDPOINT_URL_RDS: rdsProxy.url,
            AWS_ENDPOINT_URL_S3: s3Proxy.url,
          },
          // Longer than the downloader's timeout: a claim is only taken over once its holder is surely gone.
          detector: { [ENV.staleClaimMs]: '10000' },
        },
        streamRetryDelayMs: 1000,
      },
    });
    session = started.session;
    const { fixtures } = started;
    const caughtUp = await run.runUntilCaughtUp(() => fixtures.sources(), { intervalMs: 1000, timeoutMs: 150_000 });

    run.check('the downloader was killed at all three points', kills.length === 3, kills.join('; '));
    const stats = session.service.functions.downloader.stats;
    run.check('each kill ended its invocation as a crash', stats.crashes >= 3, `${stats.crashes} crashes`);
    const adopted = countLogLines(run, 'downloader', ADOPTED_LOG);
    const dropped = countLogLines(run, 'downloader', DROPPED_LOG);
    run.check('the next holder adopted the object stored before the kill (no re-read, no rewrite)', adopted >= 1, `${adopted} adoption(s)`);
    run.check('the next holder dropped the intent whose PUT never happened', dropped >= 1, `${dropped} dropped intent(s)`);
    const segmentKeys = (await run.ledgerItems()).flatMap((item) =>
      (item.Segments ?? []).map((segment) => segmentObjectKey(item.DBInstanceIdentifier, item.LogFileName, segment.Start, segment.End)),
    );
    run.check('the object PUT before the kill is one of the ledger segments', adoptedKey !== undefined && segmentKeys.includes(adoptedKey), adoptedKey ?? 'no PUT seen');
    // Killed passes lose what they spooled but had not stored. The downloader overlaps storing with
    // reading, so each kill loses the spool being filled (up to an object and a page); the kills
    // mid-download and before a PUT also lose the spool whose store was in flight, while the one after
    // a PUT does not (that object is adopted).
    const lostPerSpool = KILL_OBJECT_BYTES + FIXTURE_PAGE_LIMIT;
    checkNoReread(run, session, fixtures, kills.length * lostPerSpool + 2 * KILL_OBJECT_BYTES);
    await run.finish({
      sources: fixtures.sources(),
      caughtUp,
      onFailureAtMost: kills.length,
      expectedFunctionError: (error) => /Runtime\.ExitError|All records failed/.test(error),
    });
  },
};

const FAIL_AT_PORTION_CALL = 5;
const FAIL_AFTER_PUT = 4;
const FAIL_OBJECT_BYTES = 200_000;

export const failedMidFile: Scenario = {
  id: 'error-mid-file',
  title: 'downloader fails with an error mid-download and after its PUT',
  mariadb: false,
  timeoutMs: 150_000,
  async run(run) {
    let session: LabSession | undefined;
    let portion = 0;
    let puts = 0;
    const failures: string[] = [];
    const rdsProxy = await startProxy(run, () => session?.rdsEndpointUrl ?? '', (request): Interception => {
      if (rdsAction(request) === 'DownloadDBLogFilePortion' && ++portion === FAIL_AT_PORTION_CALL) {
        failures.push(`RDS call ${portion} refused`);
        return { action: 'fail', answer: rdsErrorAnswer('InvalidParameterCombination', 'injected fault: the service refused this call') };
      }
      return { action: 'forward' };
    });
    const s3Proxy = await startProxy(run, () => run.suite.awsEndpointUrl, (request): Interception => {
      if (isSegmentPut(request) && ++puts === FAIL_AFTER_PUT) {
        failures.push(`PUT ${puts} stored, then answered with an error`);
        return { action: 'forward-then-fail', answer: s3ErrorAnswer('InvalidRequest', 'injected fault after the object was stored') };
      }
      return { action: 'forward' };
    });
    const started = await fixtureSession(run, {
      seed: 'errors',
      filesPerInstance: 1,
      bytesPerFile: 700_000,
      lambda: {
        envOverrides: {
          downloader: { [ENV.maxObjectBytes]: String(FAIL_OBJECT_BYTES), AWS_ENDPOINT_URL_RDS: rdsProxy.url, AWS_ENDPOINT_URL_S3: s3Proxy.url },
          // FAILED items are re-driven after this back-off (lab time).
          detector: { [ENV.failedRetryBackoffMs]: '500' },
        },
      },
    });
    session = started.session;
    const { fixtures } = started;
    const caughtUp = await run.runUntilCaughtUp(() => fixtures.sources(), { intervalMs: 700, timeoutMs: 100_000 });
    run.check('both errors were injected', failures.length === 2, failures.join('; '));
    const adopted = countLogLines(run, 'downloader', ADOPTED_LOG);
    run.check('the object stored before the error was adopted, not written again', adopted >= 1, `${adopted} adoption(s)`);
    checkNoReread(run, session, fixtures, FAIL_OBJECT_BYTES + FIXTURE_PAGE_LIMIT);
    await run.finish({
      sources: fixtures.sources(),
      caughtUp,
      expectedFunctionError: (error) => /InvalidParameterCombination|InvalidRequest|All records failed/.test(error),
    });
  },
};
