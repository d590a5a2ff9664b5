/**
 * A downloader outage longer than the stream mapping's retries: every delivery fails (here: the
 * function's DynamoDB calls are denied, as after a deployment that broke its permissions) until the
 * mapping gives the records up to its on-failure queue. Once the downloader works again, the pipeline
 * must still back up every file — the stream will not deliver those records again. The reconciler
 * (its schedule ticking every few cycles in lab time, with a lab-time staleness) finds the items stale
 * PENDING and re-drives them through a transition the stream filter admits.
 */
import { ENV, LedgerStatus } from '../../../../lambda/shared/contract';
import type { Interception } from '../fault-proxy';
import { fileId, type Scenario } from '../harness';
import { fixtureSession, growAcrossCycles, startProxy } from './common';

/** Lab time: a PENDING item untouched this long has lost its trigger (the stack: a few downloader timeouts). */
const LAB_STALE_MS = 5000;
/** The reconcile schedule fires every this many cycles (the stack: every few scan intervals). */
const RECONCILE_EVERY_CYCLES = 2;

const DENIED: Interception = {
  action: 'fail',
  answer: {
    status: 400,
    contentType: 'application/x-amz-json-1.0',
    body: JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message: 'injected outage: the downloader may not use DynamoDB' }),
  },
};

export const downloaderOutage: Scenario = {
  id: 'downloader-outage',
  title: 'downloader fails until the stream gives its records up, then recovers',
  mariadb: false,
  timeoutMs: 120_000,
  async run(run) {
    let outage = true;
    const dynamoDbProxy = await startProxy(run, () => run.suite.awsEndpointUrl, () => (outage ? DENIED : { action: 'forward' }));
    const started = await fixtureSession(run, {
      seed: 'outage',
      filesPerInstance: 2,
      bytesPerFile: 150_000,
      lambda: {
        envOverrides: {
          downloader: { AWS_ENDPOINT_URL_DYNAMODB: dynamoDbProxy.url },
          // The detector only warns about a stale PENDING item; the reconciler re-drives it.
          detector: { [ENV.staleClaimMs]: String(LAB_STALE_MS) },
          reconciler: { [ENV.staleClaimMs]: String(LAB_STALE_MS) },
        },
        reconcileEveryCycles: RECONCILE_EVERY_CYCLES,
      },
    });
    const { fixtures } = started;
    const sources = () => fixtures.sources();

    await run.cycle(sources, 'outage');
    const discarded = run.totals.streamDiscarded;
    run.check(
      'during the outage the mapping gave every triggering record up (on-failure queue)',
      discarded >= fixtures.files.length,
      `${discarded} records discarded after ${run.totals.streamRetries} retries`,
    );
    const stuck = (await run.ledgerItems()).filter((item) => item.Status === LedgerStatus.PENDING);
    const pending = stuck.length;
    run.log(`outage over: ${pending} item(s) PENDING whose stream records are gone`);
    outage = false;

    await growAcrossCycles(run, fixtures, 2, 40_000);
    const caughtUp = await run.runUntilCaughtUp(sources, { intervalMs: 1000, timeoutMs: 20_000 });
    const redrivenFromPending = new Set(
      run.reconcileRuns.flatMap((reconcile) =>
        (reconcile.summary?.redriven ?? []).filter((item) => item.from === LedgerStatus.PENDING).map((item) => fileId(item.instance, item.file)),
      ),
    );
    const notRedriven = stuck.filter((item) => !redrivenFromPending.has(fileId(item.DBInstanceIdentifier, item.LogFileName)));
    run.check(
      'the reconciler re-drove every item left PENDING by the outage (stale PENDING, through FAILED, back to PENDING)',
      pending > 0 && notRedriven.length === 0,
      `${redrivenFromPending.size} re-driven in ${run.reconcileRuns.length} reconciler run(s)` +
        (notRedriven.length ? `; not: ${notRedriven.map((item) => fileId(item.DBInstanceIdentifier, item.LogFileName)).join(', ')}` : ''),
    );
    await run.finish({
      sources: sources(),
      caughtUp,
      // The batches given up during the outage: their metadata is what the on-failure queue is for.
      onFailureAtMost: discarded,
      expectedFunctionError: (error) => /AccessDenied|All records failed/.test(error),
    });
  },
};
