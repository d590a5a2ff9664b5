/**
 * The reconciler handler over the downloader's world: it verifies, re-drives stuck items with
 * transitions the downloader's stream filter admits (checked with the local lab's matcher on the very
 * DOWNLOADER_STREAM_FILTERS the stack deploys), and publishes VerifierFindings. The re-driven records
 * are then delivered to the real downloader, which must finish the work.
 */
import { METRICS_TEST_SERVICE } from './support/enable-metrics';
import {
  FILE,
  INSTANCE,
  bucket,
  fakeRds,
  handler as downloader,
  ledgerItem,
  newFile,
  rds,
  resetDownloaderWorld,
  s3,
  table,
} from './support/downloader-world';
import {
  DescribeDBClusterParametersCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
} from '@aws-sdk/client-rds';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CONFIG_DEFAULTS } from '../../lambda/shared/config';
import { verifyScope } from '../../lambda/shared/reconcile';
import { DOWNLOADER_STREAM_FILTERS, LedgerStatus, METRICS, RECONCILE_EVENT_FIELDS, type LedgerItem } from '../../lambda/shared/contract';
import { compileFilters } from '../../scripts/local-lab/runner/filter-matcher';
import { EmfCapture } from './support/emf';
import type { Change, Item } from './support/fake-dynamodb';
import { auditLines } from './support/fake-rds';
import { fakeContext, streamEvent, streamRecord } from './support/lambda-harness';

const { handler: reconciler, scheduledTimeOf } = require('../../lambda/reconciler') as typeof import('../../lambda/reconciler');

const admitted = compileFilters(DOWNLOADER_STREAM_FILTERS);
const STALE = 2 * CONFIG_DEFAULTS.staleClaimMs;
const CONTENT = auditLines(30);

let emf: EmfCapture;

/** RDS knows these audit-enabled instances (one cluster with auditing on). */
function auditedInstances(ids: string[]): void {
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: ids.map((id) => ({ DBInstanceIdentifier: id, DBClusterIdentifier: 'cluster', Engine: 'aurora-mysql' })),
  });
  rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [{ DBClusterIdentifier: 'cluster', DBClusterParameterGroup: 'audit' }] });
  rds.on(DescribeDBClusterParametersCommand).resolves({ Parameters: [{ ParameterName: 'server_audit_logging', ParameterValue: '1' }] });
}

/** The file is in RDS and its ledger item was left `fields` long ago, with no stream record pending. */
function stuck(fields: Partial<LedgerItem>, file = FILE, content = CONTENT): void {
  newFile(content, file, { StatusChangedAt: Date.now() - STALE, ...fields });
}

/** What the downloader's event source would deliver of the changes since `from` (the stack's filter). */
function deliverable(from: number): { changes: Change[]; admittedRecords: ReturnType<typeof streamRecord>[] } {
  const changes = table.changes.slice(from);
  return { changes, admittedRecords: changes.map(streamRecord).filter((record) => admitted(record)) };
}

beforeEach(() => {
  resetDownloaderWorld();
  auditedInstances([INSTANCE]);
  emf = new EmfCapture();
});

afterEach(() => emf.restore());

test('a clean run publishes VerifierFindings 0 with the service dimension only, and re-drives nothing', async () => {
  newFile(CONTENT);
  await downloader(streamEvent(deliverable(0).admittedRecords), fakeContext());
  emf.clear();

  const summary = await reconciler({}, fakeContext());

  expect(summary).toMatchObject({ findings: 0, findingsByCode: {}, redriven: [], itemsVerified: 1, objectsChecked: 1 });
  expect(emf.values(METRICS.verifierFindings)).toEqual([0]);
  expect(emf.definitions(METRICS.verifierFindings)).toEqual([
    { unit: 'Count', namespace: METRICS.namespace, dimensions: [['service']], dimensionValues: { service: METRICS_TEST_SERVICE } },
  ]);
  expect(emf.values(METRICS.throttleRetries)).toEqual([0]);
});

test('stale PENDING: parked as FAILED then PENDING again; only the second write passes the stream filter, and the downloader finishes it', async () => {
  stuck({ Status: LedgerStatus.PENDING });
  const before = table.changes.length;
  const observed = ledgerItem();
  // Writing PENDING over PENDING would never reach the downloader: the filter drops it.
  expect(admitted(streamRecord({ eventName: 'MODIFY', oldImage: observed as unknown as Item, newImage: { ...observed, StatusChangedAt: Date.now() } as unknown as Item }))).toBe(false);

  const summary = await reconciler({}, fakeContext());

  expect(summary.redriven).toEqual([{ instance: INSTANCE, file: FILE, from: LedgerStatus.PENDING }]);
  // The file's bytes have waited in RDS far beyond the stale threshold, too.
  expect(summary.findingsByCode).toEqual({ STALE_PENDING: 1, UNSTORED_BYTES: 1 });
  expect(emf.values(METRICS.verifierFindings)).toEqual([2]);
  const blob = emf.blobs.find((b) => b[METRICS.verifierFindings] !== undefined);
  expect(JSON.parse(String(blob?.findingsByCode))).toEqual({ STALE_PENDING: 1, UNSTORED_BYTES: 1 });
  const { changes, admittedRecords } = deliverable(before);
  expect(changes.map((c) => [c.oldImage?.Status, c.newImage?.Status])).toEqual([
    [LedgerStatus.PENDING, LedgerStatus.FAILED],
    [LedgerStatus.FAILED, LedgerStatus.PENDING],
  ]);
  expect(changes[0].newImage?.LastError).toMatch(/^re-driven by the reconciler: PENDING for \d+ min without a downloader claim$/);
  expect(admittedRecords).toHaveLength(1);
  expect(admittedRecords[0].dynamodb?.OldImage?.Status).toEqual({ S: LedgerStatus.FAILED });
  expect(admittedRecords[0].dynamodb?.NewImage?.Status).toEqual({ S: LedgerStatus.PENDING });
  expect(Number(changes[1].newImage?.StatusChangedAt)).toBeGreaterThan(Number(changes[0].newImage?.StatusChangedAt));

  const response = await downloader(streamEvent(admittedRecords), fakeContext());

  expect(response.batchItemFailures).toEqual([]);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: Buffer.byteLength(CONTENT) });
  expect(bucket.concatenated(`logs/${INSTANCE}/${FILE}/`).toString()).toBe(CONTENT);
});

test('stale IN_PROGRESS: one admitted write back to PENDING, the dead claim dropped', async () => {
  stuck({ Status: LedgerStatus.IN_PROGRESS, ClaimToken: 'dead-holder' });
  const before = table.changes.length;

  const summary = await reconciler({}, fakeContext());

  expect(summary.redriven).toEqual([{ instance: INSTANCE, file: FILE, from: LedgerStatus.IN_PROGRESS }]);
  const { changes, admittedRecords } = deliverable(before);
  expect(changes).toHaveLength(1);
  expect(changes[0].newImage).toMatchObject({ Status: LedgerStatus.PENDING });
  expect(changes[0].newImage?.ClaimToken).toBeUndefined();
  expect(admittedRecords).toHaveLength(1);
  await downloader(streamEvent(admittedRecords), fakeContext());
  expect(ledgerItem().Status).toBe(LedgerStatus.DONE);
});

test('FAILED waits out the detector backoff; after it, one admitted write back to PENDING', async () => {
  stuck({ Status: LedgerStatus.FAILED, Attempts: 1, StatusChangedAt: Date.now() - 1000, LastError: 'Throttling' });

  const waiting = await reconciler({}, fakeContext());

  expect(waiting).toMatchObject({ redriven: [], waitingForBackoff: 1, findingsByCode: { FAILED: 1 } });
  expect(ledgerItem().Status).toBe(LedgerStatus.FAILED);

  table.seed({ ...ledgerItem(), StatusChangedAt: Date.now() - CONFIG_DEFAULTS.failedRetryBackoffMs - 1 } as unknown as Item);
  const before = table.changes.length;
  const redriven = await reconciler({}, fakeContext());

  expect(redriven.redriven).toEqual([{ instance: INSTANCE, file: FILE, from: LedgerStatus.FAILED }]);
  const { admittedRecords } = deliverable(before);
  expect(admittedRecords).toHaveLength(1);
  await downloader(streamEvent(admittedRecords), fakeContext());
  expect(ledgerItem().Status).toBe(LedgerStatus.DONE);
});

test('an item another writer moves between verification and re-drive is left to it', async () => {
  stuck({ Status: LedgerStatus.PENDING });
  let claimed = false;
  table.beforeWrite = (key) => {
    if (claimed) return;
    claimed = true;
    // A downloader claims the item just before the reconciler's first write.
    table.seed({ ...table.item(key), Status: LedgerStatus.IN_PROGRESS, ClaimToken: 'live', StatusChangedAt: Date.now() });
  };

  const summary = await reconciler({}, fakeContext());

  expect(summary).toMatchObject({ redriven: [], changedMeanwhile: 1 });
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.IN_PROGRESS, ClaimToken: 'live' });
});

test('a FAILED file of a deleted instance (never scanned again) is settled: re-driven, then LOST by the downloader', async () => {
  stuck({ Status: LedgerStatus.FAILED, Attempts: 1, LastError: 'Throttling' });
  fakeRds.removeInstance(INSTANCE);
  auditedInstances([]);
  const before = table.changes.length;

  const summary = await reconciler({}, fakeContext());

  expect(summary.redriven).toHaveLength(1);
  await downloader(streamEvent(deliverable(before).admittedRecords), fakeContext());
  expect(ledgerItem().Status).toBe(LedgerStatus.LOST);
  emf.clear();
  const after = await reconciler({}, fakeContext());
  expect(after.findingsByCode).toEqual({ LOST: 1 });
  expect(emf.values(METRICS.verifierFindings)).toEqual([1]);
});

test('a verification that fails (S3 denied) fails the invocation; the throttle metric is still flushed', async () => {
  newFile(CONTENT);
  s3.on(ListObjectsV2Command).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));

  await expect(reconciler({}, fakeContext())).rejects.toThrow('Access Denied');

  expect(emf.values(METRICS.verifierFindings)).toEqual([]);
  expect(emf.values(METRICS.throttleRetries)).toEqual([0]);
});

test('near its timeout the run stops inspecting objects and reports VERIFY_INCOMPLETE', async () => {
  newFile(CONTENT);
  newFile(auditLines(3, 100), 'audit/audit.log.3.2024-01-04-08-30.0');
  await downloader(streamEvent(deliverable(0).admittedRecords), fakeContext());

  const summary = await reconciler({}, fakeContext(() => 30_000));

  expect(summary.findingsByCode).toEqual({ VERIFY_INCOMPLETE: 1 });
  expect(summary.itemsVerified).toBe(0);
});

describe('scheduled runs: what changed recently every run, the older objects in a rolling sweep', () => {
  const HOUR = 3_600_000;
  const MIDNIGHT = Date.UTC(2026, 11, 5);
  /** The event the reconcile schedule sends for its k-th hourly run after MIDNIGHT. */
  const scheduledRun = (k: number) => ({ [RECONCILE_EVENT_FIELDS.scheduledTime]: new Date(MIDNIGHT + k * HOUR).toISOString().replace('.000Z', 'Z') });

  test('a tampered object of a file backed up two days ago: found by one scheduled run a day, that run again the next day, and any run started by hand', async () => {
    newFile(CONTENT);
    await downloader(streamEvent(deliverable(0).admittedRecords), fakeContext());
    const twoDaysAgo = Date.now() - 48 * HOUR;
    table.seed({ ...ledgerItem(), StatusChangedAt: twoDaysAgo, LastBackup: twoDaysAgo } as unknown as Item);
    const [key] = [...bucket.objects.keys()];
    const body = bucket.objects.get(key as string)?.body as Buffer;
    bucket.tamper(key as string, Buffer.concat([Buffer.from(body[0] === 0x41 ? 'B' : 'A'), body.subarray(1)]));

    const finding: number[] = [];
    for (let k = 0; k < 24; k++) {
      const summary = await reconciler(scheduledRun(k), fakeContext());
      if (summary.findingsByCode.CHECKSUM_MISMATCH) finding.push(k);
      expect(summary.itemsVerified).toBe(summary.findingsByCode.CHECKSUM_MISMATCH ? 1 : 0);
    }
    expect(finding).toHaveLength(1);
    const [day1] = finding as [number];
    expect((await reconciler(scheduledRun(day1 + 24), fakeContext())).findingsByCode).toEqual({ CHECKSUM_MISMATCH: 1 });
    expect((await reconciler(scheduledRun(day1 + 25), fakeContext())).findingsByCode).toEqual({});
    expect((await reconciler({}, fakeContext())).findingsByCode).toEqual({ CHECKSUM_MISMATCH: 1 });
  });

  test('an item that changed within the window is verified by every scheduled run', async () => {
    newFile(CONTENT);
    await downloader(streamEvent(deliverable(0).admittedRecords), fakeContext());
    for (let k = 0; k < 3; k++) expect((await reconciler(scheduledRun(k), fakeContext())).itemsVerified).toBe(1);
  });

  test('a scheduled time that is not a time fails the run instead of changing what it verifies', async () => {
    expect(scheduledTimeOf({})).toBeUndefined();
    expect(scheduledTimeOf(null)).toBeUndefined();
    expect(scheduledTimeOf(scheduledRun(1))).toBe(MIDNIGHT + HOUR);
    await expect(reconciler({ [RECONCILE_EVENT_FIELDS.scheduledTime]: 'soon' }, fakeContext())).rejects.toThrow(/not an ISO 8601 time: "soon"/);
    await expect(reconciler({ [RECONCILE_EVENT_FIELDS.scheduledTime]: 7 }, fakeContext())).rejects.toThrow(/not an ISO 8601 time: 7/);
  });

  test('consecutive scheduled times take the slices in turn; a retry keeps its slice; a sweep shorter than the rate checks everything', () => {
    const config = { verifyWindowMs: 24 * HOUR, verifySweepMs: 24 * HOUR, reconcileRateMs: HOUR };
    // Any time within the hour the schedule started at: runs are rate apart from it.
    const start = MIDNIGHT + 37 * 60_000;
    const slices = Array.from({ length: 48 }, (_, k) => verifyScope(config, start + k * HOUR).sweep?.slice);
    expect(new Set(slices.slice(0, 24)).size).toBe(24);
    expect(slices.slice(24)).toEqual(slices.slice(0, 24));
    expect(verifyScope(config, start + 5 * HOUR)).toEqual(verifyScope(config, start + 5 * HOUR));
    expect(verifyScope(config, start)).toMatchObject({ windowMs: 24 * HOUR, sweep: { slices: 24 } });
    expect(verifyScope({ ...config, reconcileRateMs: 5 * HOUR }, start).sweep?.slices).toBe(4);
    expect(verifyScope({ ...config, verifySweepMs: HOUR / 2 }, start).sweep).toEqual({ slice: 0, slices: 1 });
    expect(verifyScope(config, undefined)).toEqual({});
  });
});
