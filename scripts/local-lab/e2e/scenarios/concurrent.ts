/**
 * Lambda's pollers instead of the suite's cycles: the detector and the downloader run whenever there is
 * work, at the same time as each other and as the schedule's ticks, while the files grow and rotate.
 * The race the cycles never produce is the point: the detector recording a larger Size of a file while a
 * downloader holds its claim, also after the pass read its last page (its PUTs are held on the way to
 * S3), so the pass cannot mark the file DONE and hands it back. The ledger stream shows whether both
 * happened; the oracle, that nothing was lost or stored twice because of them.
 */
import type { AttributeValue, _Record as StreamSdkRecord } from '@aws-sdk/client-dynamodb-streams';
import { LEDGER_ATTR, LedgerStatus } from '../../../../lambda/shared/contract';
import { sleep } from '../../net';
import { formatBytes, formatDuration } from '../../progress';
import { catchUpState } from '../../verify';
import type { Interception } from '../fault-proxy';
import type { FixtureFile } from '../fixtures';
import type { Scenario, ScenarioRun, SourceList } from '../harness';
import { countLogLines, fixtureSession, HAND_OFF_LOG, isSegmentPut, readWholeStream, startProxy } from './common';

/** Lab-time scan interval: several ticks fall within one downloader pass. */
const TICK_MS = 200;
const GROWTH_MS = 8_000;
const APPEND_EVERY_MS = 150;
const APPEND_BYTES = 30_000;
/** Each instance starts a new file this often (the old one stops growing, as after a rotation). */
const ROTATE_EVERY_MS = 3_000;
const CATCH_UP_MS = 60_000;
/**
 * Each of the downloader's object PUTs is held this long on its way to S3: the files grow and the
 * schedule ticks meanwhile, so passes end with more bytes listed than they read.
 */
const PUT_DELAY_MS = 600;

type Image = Record<string, AttributeValue> | undefined;
const text = (image: Image, name: string): string | undefined => image?.[name]?.S;
const number = (image: Image, name: string): number | undefined => (image?.[name]?.N === undefined ? undefined : Number(image[name]?.N));

/**
 * What the ledger stream shows of detector and downloader meeting on one item. `releasedToReadMore`
 * counts IN_PROGRESS -> PENDING with bytes left to read: a pass handing its file back because more was
 * listed than it read, or because its time ran out, or a stale claim taken back (the caller rules the
 * last two out).
 */
export function claimRaces(records: readonly StreamSdkRecord[]): { grewWhileClaimed: number; releasedToReadMore: number } {
  let grewWhileClaimed = 0;
  let releasedToReadMore = 0;
  for (const record of records) {
    const before = record.dynamodb?.OldImage;
    const after = record.dynamodb?.NewImage;
    if (record.eventName !== 'MODIFY' || text(before, LEDGER_ATTR.status) !== LedgerStatus.IN_PROGRESS) continue;
    const sizeBefore = number(before, LEDGER_ATTR.size) ?? 0;
    const sizeAfter = number(after, LEDGER_ATTR.size) ?? 0;
    const sameClaim = text(before, LEDGER_ATTR.claimToken) !== undefined && text(before, LEDGER_ATTR.claimToken) === text(after, LEDGER_ATTR.claimToken);
    if (text(after, LEDGER_ATTR.status) === LedgerStatus.IN_PROGRESS && sameClaim && sizeAfter > sizeBefore) grewWhileClaimed += 1;
    if (text(after, LEDGER_ATTR.status) === LedgerStatus.PENDING && sizeAfter > (number(after, LEDGER_ATTR.backedUpBytes) ?? 0)) releasedToReadMore += 1;
  }
  return { grewWhileClaimed, releasedToReadMore };
}

async function tickAndCheck(run: ScenarioRun, sources: () => SourceList, label: string): Promise<boolean> {
  const begin = Date.now();
  const service = run.session.service;
  const ticked = await service.tick();
  const delivered = service.takeDelivered();
  run.record({ ...ticked, ...delivered });
  run.cycles += 1;
  const { items, sources: current } = await run.checkLedger(sources);
  const state = catchUpState(current, items);
  if (run.cycles % 5 === 0 || state.caughtUp) {
    run.log(
      `${label} tick ${run.cycles}: ${state.done}/${state.files} files complete, ${formatBytes(state.backedUpBytes)} of ${formatBytes(state.sourceBytes)} | ` +
        `detector ${delivered.sqs.messages} msg, downloader ${delivered.stream.invocations} inv since the last tick`,
    );
  }
  await run.pause(Math.max(0, TICK_MS - (Date.now() - begin)));
  return state.caughtUp;
}

async function ticksUntilCaughtUp(run: ScenarioRun, sources: () => SourceList, label: string): Promise<boolean> {
  const deadline = Date.now() + CATCH_UP_MS;
  let caughtUp = false;
  while (!caughtUp && Date.now() < deadline) caughtUp = await tickAndCheck(run, sources, label);
  return caughtUp;
}

export const concurrentFunctions: Scenario = {
  id: 'concurrent-functions',
  title: "Lambda's pollers: detector and downloader at the same time while files grow and rotate",
  mariadb: false,
  // Warm-up and catch-up may each take up to a minute on a slow machine.
  timeoutMs: 150_000,
  async run(run) {
    let delayedPuts = 0;
    const s3Proxy = await startProxy(run, () => run.suite.awsEndpointUrl, async (request): Promise<Interception> => {
      if (isSegmentPut(request)) {
        delayedPuts += 1;
        await sleep(PUT_DELAY_MS);
      }
      return { action: 'forward' };
    });
    const { fixtures, session } = await fixtureSession(run, {
      seed: 'concurrent-functions',
      filesPerInstance: 1,
      bytesPerFile: 300_000,
      // Every page takes a while, so a pass spans several ticks.
      endpoint: { faults: { latencyMs: 25 } },
      lambda: { envOverrides: { downloader: { AWS_ENDPOINT_URL_S3: s3Proxy.url } } },
    });
    const sources = (): SourceList => fixtures.sources();
    const live = new Map<string, FixtureFile>(fixtures.files.map((file) => [file.role, file]));

    session.service.startPolling(25);
    // Warm first: a cold start (seconds) would leave the growth phase without a pass to race with.
    const caughtUpWarm = await ticksUntilCaughtUp(run, sources, 'warm-up');
    run.require('the first files were backed up (every function warm)', caughtUpWarm);
    const started = Date.now();
    let lastRotation = started;
    let appended = 0;
    const growth = (async () => {
      while (Date.now() - started < GROWTH_MS) {
        if (Date.now() - lastRotation >= ROTATE_EVERY_MS) {
          lastRotation = Date.now();
          for (const role of ['writer', 'reader'] as const) live.set(role, fixtures.create(role));
        }
        for (const file of live.values()) appended += file.append(APPEND_BYTES);
        await run.pause(APPEND_EVERY_MS);
      }
    })();
    let growing = true;
    const grown = (): void => {
      growing = false;
    };
    // Settled either way here; a failure of the growth (the scenario's time limit) is thrown below.
    growth.then(grown, grown);
    while (growing) await tickAndCheck(run, sources, 'growth');
    await growth;
    run.log(`growth over: ${formatBytes(appended)} appended in ${formatDuration(Date.now() - started)}, ${fixtures.files.length} files`);

    const caughtUp = await ticksUntilCaughtUp(run, sources, 'catch-up');
    run.record(await session.service.stopPolling());

    const races = claimRaces(await readWholeStream(session));
    run.facts.races = races;
    run.check(
      'the detector recorded growth of a file while a downloader held its claim (the race cycles never produce)',
      races.grewWhileClaimed > 0,
      `${races.grewWhileClaimed} time(s)`,
    );
    // Not a time-budget hand-off (none logged) nor a stale claim (30 minutes, longer than the scenario).
    const handOffs = countLogLines(run, 'downloader', HAND_OFF_LOG);
    run.check(
      'passes that ended with more listed than they had read handed the file back (PENDING) for the next pass',
      races.releasedToReadMore > 0 && handOffs === 0,
      `${races.releasedToReadMore} time(s), ${handOffs} time-budget hand-off(s); ${delayedPuts} PUTs held ${PUT_DELAY_MS} ms each`,
    );
    await run.finish({ sources: sources(), caughtUp });
  },
};
