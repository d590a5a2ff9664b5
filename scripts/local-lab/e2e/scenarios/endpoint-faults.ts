/**
 * Faults of the RDS API itself: throttling, truncated pages, a line longer than a page, the final
 * Marker, a slow endpoint.
 */
import { ENV, LedgerStatus, RDS_TRUNCATION_TEXT } from '../../../../lambda/shared/contract';
import { LineTooLongError } from '../../../../lambda/shared/rds-log-reader';
import { formatBytes } from '../../progress';
import type { Scenario } from '../harness';
import { checkEndpointListsFixtures, countLogLines, FIXTURE_PAGE_LIMIT, HAND_OFF_LOG, fixtureSession, growAcrossCycles, portionCalls, storedObjects } from './common';

const MAX_LINE_BYTES = 6000;

/** How a downloader invocation fails on a line longer than a page (the batch fails with its one record). */
const LONG_LINE_FAILURE = /LineTooLongError|All records failed/;

export const throttling: Scenario = {
  id: 'throttling',
  title: '30 % of RDS API calls answer Throttling',
  mariadb: false,
  timeoutMs: 150_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, {
      seed: 'throttling',
      filesPerInstance: 2,
      bytesPerFile: 300_000,
      // Every throttled call costs the SDK's back-off (hundreds of ms): larger pages keep the call count, and the run, short.
      endpoint: { pageLimitBytes: 256 * 1024, faults: { throttleFraction: 0.3, seed: 30 } },
    });
    await growAcrossCycles(run, fixtures, 2, 120_000);
    const caughtUp = await run.runUntilCaughtUp(() => fixtures.sources(), { intervalMs: 1000, timeoutMs: 90_000 });
    const stats = session.endpoint!.stats();
    const calls = Object.values(stats.calls).reduce((sum, count) => sum + count, 0);
    run.check(
      'the endpoint throttled about 30 % of all RDS calls (every action), and the pipeline still completed',
      stats.throttled >= calls * 0.15 && stats.throttled <= calls * 0.45,
      `${stats.throttled} of ${calls} calls throttled`,
    );
    await checkEndpointListsFixtures(run, session, fixtures);
    await run.finish({ sources: fixtures.sources(), caughtUp });
  },
};

export const truncatedPages: Scenario = {
  id: 'truncated-pages',
  title: 'pages cut at the limit with the truncation text',
  mariadb: false,
  timeoutMs: 120_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, {
      seed: 'truncated',
      filesPerInstance: 2,
      bytesPerFile: 400_000,
      maxLineBytes: MAX_LINE_BYTES,
      endpoint: { faults: { truncatePagesFraction: 0.5, seed: 7 } },
    });
    await growAcrossCycles(run, fixtures, 2, 150_000);
    const caughtUp = await run.runUntilCaughtUp(() => fixtures.sources(), { intervalMs: 1000, timeoutMs: 60_000 });
    const stats = session.endpoint!.stats();
    run.check('the endpoint truncated pages', stats.truncatedPages > 0, `${stats.truncatedPages} of ${stats.downloadPages} pages`);
    const withText = (await storedObjects(session)).filter((object) => object.body.includes(RDS_TRUNCATION_TEXT));
    run.check('no stored object contains the truncation text', withText.length === 0, withText.map((object) => object.key).join(', '));
    run.facts.rereadRatio = stats.bytesServed / fixtures.totalBytes;
    run.log(`re-reads after truncation: ${formatBytes(stats.bytesServed)} served for ${formatBytes(fixtures.totalBytes)} of logs`);
    await checkEndpointListsFixtures(run, session, fixtures);
    await run.finish({ sources: fixtures.sources(), caughtUp });
  },
};

export const lineLongerThanPage: Scenario = {
  id: 'line-longer-than-page',
  title: 'a line longer than a page: the lines before it stored, FAILED, retries read only that line',
  mariadb: false,
  timeoutMs: 120_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, {
      seed: 'long-line',
      filesPerInstance: 1,
      bytesPerFile: 400_000,
      lambda: { envOverrides: { detector: { [ENV.failedRetryBackoffMs]: '300' } } },
    });
    const [cut] = fixtures.files.filter((file) => file.role === 'writer');
    if (!cut) throw new Error('the fixtures have no writer file');
    cut.appendUnreadableLine(FIXTURE_PAGE_LIMIT);
    // Lines after it, and growth of the other file, which must still be backed up whole.
    await growAcrossCycles(run, fixtures, 2, 60_000);
    const caughtUp = await run.runUntilCaughtUp(() => fixtures.sources(), { intervalMs: 500, timeoutMs: 60_000 });

    // The detector re-drives the FAILED file after its (lab-time) back-off: each retry must start at
    // the long line, so it reads about that line's pages, never the 400 kB before it again.
    const failures = (): number => run.functionErrors.filter((error) => LONG_LINE_FAILURE.test(error)).length;
    const endpoint = session.endpoint!;
    const before = { failures: failures(), served: endpoint.stats().bytesServed };
    const deadline = Date.now() + 30_000;
    while (failures() < before.failures + 2 && Date.now() < deadline) {
      await run.cycle(() => fixtures.sources(), 'retries');
      await run.pause(400);
    }
    const retries = failures() - before.failures;
    const servedForRetries = endpoint.stats().bytesServed - before.served;
    run.check('the FAILED file was retried', retries >= 2, `${retries} retries`);
    run.check(
      'each retry read only the long line (two cut pages), not the lines stored before it',
      retries > 0 && servedForRetries <= retries * 3 * FIXTURE_PAGE_LIMIT,
      `${formatBytes(servedForRetries)} served for ${retries} retries`,
    );

    const item = (await run.ledgerItems()).find((candidate) => candidate.DBInstanceIdentifier === cut.instance && candidate.LogFileName === cut.logFileName);
    run.check('the file is FAILED and says why', item?.Status === LedgerStatus.FAILED && LineTooLongError.isRecordedReason(item.LastError), `${item?.Status}: ${item?.LastError?.slice(0, 160)}`);
    run.check('the endpoint cut the long line at the page limit', endpoint.stats().truncatedPages > 0, `${endpoint.stats().truncatedPages} cut pages`);
    const withText = (await storedObjects(session)).filter((object) => object.body.includes(RDS_TRUNCATION_TEXT));
    run.check('no stored object contains the truncation text', withText.length === 0, withText.map((object) => object.key).join(', '));
    await run.finish({
      sources: fixtures.sources(),
      caughtUp,
      expectedFunctionError: (error) => LONG_LINE_FAILURE.test(error),
    });
  },
};

export const finalMarker: Scenario = {
  id: 'final-marker',
  title: 'last page with a non-empty Marker, then without one',
  mariadb: false,
  timeoutMs: 120_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, { seed: 'final-marker', filesPerInstance: 1, bytesPerFile: 250_000, maxLineBytes: MAX_LINE_BYTES });
    const sources = () => fixtures.sources();
    const endpoint = session.endpoint!;

    // A pass reads whole lines up to the page limit: it needs at most one page per (limit - longest
    // line) bytes, plus the one answer that says no more data is pending.
    const maxCalls = (served: number, passes: number): number => Math.ceil(served / (FIXTURE_PAGE_LIMIT - MAX_LINE_BYTES)) + passes;
    let before = { served: 0, calls: 0, passes: 0 };
    const phase = (): { served: number; calls: number; passes: number } => {
      const now = { served: endpoint.stats().bytesServed, calls: portionCalls(session), passes: run.totals.streamDelivered };
      const delta = { served: now.served - before.served, calls: now.calls - before.calls, passes: now.passes - before.passes };
      before = now;
      return delta;
    };

    run.log('phase 1: RDS behaviour (the last page carries a Marker with AdditionalDataPending false)');
    await growAcrossCycles(run, fixtures, 3, 90_000);
    const firstCaughtUp = await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 30_000 });
    const first = phase();
    run.check(
      'with a non-empty final Marker every pass stops after its last page',
      firstCaughtUp && first.calls <= maxCalls(first.served, first.passes),
      `${first.calls} calls for ${first.served} B in ${first.passes} passes`,
    );

    run.log('phase 2: the last page carries no Marker');
    endpoint.setFaults({ nonEmptyFinalMarker: false });
    await growAcrossCycles(run, fixtures, 3, 90_000);
    const caughtUp = await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 30_000 });
    const second = phase();
    run.check(
      'without a final Marker every pass also stops after its last page',
      caughtUp && second.calls <= maxCalls(second.served, second.passes),
      `${second.calls} calls for ${second.served} B in ${second.passes} passes`,
    );
    await run.finish({ sources: sources(), caughtUp: firstCaughtUp && caughtUp });
  },
};

export const slowEndpoint: Scenario = {
  id: 'slow-endpoint',
  title: 'every RDS answer 300 ms late, short invocations hand off',
  mariadb: false,
  timeoutMs: 150_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, {
      seed: 'slow',
      filesPerInstance: 2,
      bytesPerFile: 450_000,
      endpoint: { faults: { latencyMs: 300 } },
      lambda: {
        // About 2 s of reading per invocation (7 pages at this latency).
        timeoutMs: { downloader: 5000 },
        envOverrides: { downloader: { [ENV.safetyMarginMs]: '3000' } },
      },
    });
    await growAcrossCycles(run, fixtures, 2, 100_000);
    const caughtUp = await run.runUntilCaughtUp(() => fixtures.sources(), { intervalMs: 500, timeoutMs: 100_000 });
    const downloader = session.service.functions.downloader.stats;
    run.check('no downloader invocation ran into its timeout (it hands off in time)', downloader.timeouts === 0, `${downloader.timeouts} timeouts`);
    const handOffs = countLogLines(run, 'downloader', HAND_OFF_LOG);
    run.check('passes ran out of time and handed the rest over', handOffs >= fixtures.files.length, `${handOffs} hand-offs`);
    await run.finish({ sources: fixtures.sources(), caughtUp });
  },
};
