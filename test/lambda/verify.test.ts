/**
 * The completeness verifier against what the real downloader stored (the downloader's world of fakes:
 * ledger, bucket with S3's checksum behaviour, RDS), then with one thing broken at a time: each must
 * be found, under its own code, and nothing else.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import {
  FILE,
  INSTANCE,
  bucket,
  deliver,
  expectContiguousObjects,
  fakeRds,
  ledgerClient,
  ledgerItem,
  ledgerKey,
  newFile,
  resetDownloaderWorld,
  s3,
  table,
} from './support/downloader-world';
import { LedgerStatus, type LedgerItem, logFilePrefix, segmentObjectKey } from '../../lambda/shared/contract';
import { judgeItemState, sweepSliceOf } from '../../lambda/shared/verify';
import type { Item } from './support/fake-dynamodb';
import { auditLines } from './support/fake-rds';
import { sha256Base64 } from './support/lambda-harness';
import { STALE_MS, codes, verify } from './support/verify-world';

const FILE2 = 'audit/audit.log.1.2024-01-04-08-30.0';
const FILE3 = 'audit/audit.log.3.2024-01-04-08-30.0';
const FILE4 = 'audit/audit.log.0.2024-01-04-09-30.0';
const LARGE = auditLines(200);
const SMALL = auditLines(12, 500);
const HOUR = 3_600_000;

/** Two files backed up by the real downloader: one in several objects, one in a single object. */
async function backedUp(): Promise<string[]> {
  newFile(LARGE, FILE);
  newFile(SMALL, FILE2);
  await deliver(0);
  expect(ledgerItem(FILE).Status).toBe(LedgerStatus.DONE);
  expect(ledgerItem(FILE2).Status).toBe(LedgerStatus.DONE);
  return expectContiguousObjects(FILE, Buffer.byteLength(LARGE));
}

function seedItem(file: string, fields: Partial<LedgerItem>): void {
  table.seed({
    DBInstanceIdentifier: INSTANCE,
    LogFileName: file,
    Size: 100,
    LastWritten: 1_700_000_000_000,
    Status: LedgerStatus.DONE,
    StatusChangedAt: Date.now(),
    BackedUpBytes: 0,
    ...fields,
  } as unknown as Item);
}

function sameLengthOther(key: string): string {
  const body = bucket.objects.get(key)?.body.toString() ?? '';
  return body.replace('SELECT', 'DELETE');
}

beforeEach(() => resetDownloaderWorld());

test('clean: what the downloader stored verifies without findings, across ledger and listing pages', async () => {
  const keys = await backedUp();
  table.queryPageSize = 1;
  bucket.listPageSize = 2;

  const { report, attention } = await verify({ deep: true });

  expect(report.findings).toEqual([]);
  expect(attention).toEqual([]);
  const totalKeys = bucket.keys().length;
  expect(report.totals).toMatchObject({
    ledgerItems: 2,
    malformedItems: 0,
    itemsByStatus: { DONE: 2, PENDING: 0, IN_PROGRESS: 0, FAILED: 0, LOST: 0 },
    itemsInspected: 2,
    objectsChecked: totalKeys,
    bytesChecked: Buffer.byteLength(LARGE) + Buffer.byteLength(SMALL),
    objectsHashed: totalKeys,
    objectsListed: totalKeys,
    rdsConsulted: true,
    instancesListed: [INSTANCE],
    filesListed: 2,
    bytesNotStored: 0,
    backupLagSeconds: 0,
    findings: 0,
  });
  expect(keys.length).toBeGreaterThan(3);
});

test('a missing range: GAP naming the bytes and the object the ledger records for them', async () => {
  const keys = await backedUp();
  bucket.remove(keys[1]);

  const result = await verify();

  expect(codes(result)).toEqual(['GAP']);
  const [gap] = result.report.findings;
  expect(gap).toMatchObject({ instance: INSTANCE, file: FILE });
  expect(gap.detail).toContain(keys[1]);
  expect(gap.detail).toMatch(/^bytes \d+-\d+ of the \d+ stored are in no object/);
});

test('a missing last object is a GAP up to BackedUpBytes', async () => {
  const keys = await backedUp();
  bucket.remove(keys[keys.length - 1]);

  const result = await verify();

  expect(codes(result)).toEqual(['GAP']);
  expect(result.report.findings[0].detail).toContain(`of the ${Buffer.byteLength(LARGE)} stored`);
});

test('an overlapping object the ledger does not record: OVERLAP with each object it covers, and UNRECORDED_OBJECT', async () => {
  const keys = await backedUp();
  const extra = segmentObjectKey(INSTANCE, FILE, 100, 5000);
  bucket.seed(extra, LARGE.slice(100, 5000));

  const result = await verify();

  // In key order: the first object, the extra one (overlapping it), the second (overlapped by it).
  expect(codes(result)).toEqual(['OVERLAP', 'OVERLAP', 'UNRECORDED_OBJECT']);
  const overlaps = result.report.findings.filter((finding) => finding.code === 'OVERLAP');
  expect(overlaps.map((finding) => finding.key)).toEqual([extra, keys[1]]);
  expect(overlaps[0].detail).toContain(keys[0]);
  expect(overlaps[1].detail).toContain(extra);
  expect(result.report.findings.find((finding) => finding.code === 'UNRECORDED_OBJECT')?.key).toBe(extra);
});

test('objects that are no segment, or belong to no ledger item: UNKNOWN_OBJECT and ORPHAN_OBJECT', async () => {
  await backedUp();
  bucket.seed(`${logFilePrefix(INSTANCE, FILE)}notes.txt`, 'hello');
  const orphan = segmentObjectKey('other-instance', 'audit/audit.log.0.2024-01-01-00-00.0', 0, 5);
  bucket.seed(orphan, 'hello');

  const result = await verify();

  expect(codes(result)).toEqual(['ORPHAN_OBJECT', 'UNKNOWN_OBJECT']);
  expect(result.report.findings.find((f) => f.code === 'ORPHAN_OBJECT')).toMatchObject({ instance: 'other-instance', key: orphan });
  expect(result.report.findings.find((f) => f.code === 'UNKNOWN_OBJECT')).toMatchObject({ instance: INSTANCE });
});

test('a tampered object (a new version, with the checksum S3 computed for it): CHECKSUM_MISMATCH; deep adds CONTENT_MISMATCH', async () => {
  const keys = await backedUp();
  const other = sameLengthOther(keys[2]);
  bucket.tamper(keys[2], other);

  expect(codes(await verify())).toEqual(['CHECKSUM_MISMATCH']);
  const deep = await verify({ deep: true });
  expect(codes(deep)).toEqual(['CHECKSUM_MISMATCH', 'CONTENT_MISMATCH']);
  expect(deep.report.findings[0].detail).toContain(`S3 reports SHA-256 ${sha256Base64(other)}`);
});

test('bytes changed under an unchanged checksum (a broken store) are found only by --deep', async () => {
  const keys = await backedUp();
  const object = bucket.objects.get(keys[0]);
  if (!object) throw new Error('no object');
  object.body = Buffer.from(sameLengthOther(keys[0]));

  expect(codes(await verify())).toEqual([]);
  expect(codes(await verify({ deep: true }))).toEqual(['CONTENT_MISMATCH']);
});

test('an object as long as another range, or without a SHA-256: SIZE_MISMATCH, CHECKSUM_MISSING', async () => {
  const keys = await backedUp();
  const object = bucket.objects.get(keys[0]);
  if (!object) throw new Error('no object');
  bucket.objects.set(keys[0], { ...object, checksumKept: false });
  bucket.tamper(keys[1], 'short');
  bucket.objects.set(keys[1], { ...(bucket.objects.get(keys[1]) as typeof object), checksumKept: true });

  // Coverage is judged by the ranges the keys name; the short body is a size finding of its own.
  expect(codes(await verify())).toEqual(['CHECKSUM_MISMATCH', 'CHECKSUM_MISSING', 'SIZE_MISMATCH']);
});

test('a file RDS lists without a ledger item: NOT_IN_LEDGER once RDS stopped writing it for the stale threshold', async () => {
  await backedUp();
  const unknown = FILE3;
  fakeRds.writeFile(INSTANCE, unknown, SMALL, Date.now() - 2 * STALE_MS);
  fakeRds.writeFile(INSTANCE, FILE4, SMALL, Date.now());

  const result = await verify();

  expect(codes(result)).toEqual(['NOT_IN_LEDGER']);
  expect(result.report.findings[0]).toMatchObject({ instance: INSTANCE, file: unknown });
});

test('bytes RDS has held for the stale threshold that are not stored: UNSTORED_BYTES; a shrunken source: SOURCE_SHRANK', async () => {
  await backedUp();
  fakeRds.appendFile(INSTANCE, FILE2, auditLines(2, 900), Date.now() - 2 * STALE_MS);
  fakeRds.writeFile(INSTANCE, FILE, LARGE.slice(0, 100), Date.now() - 2 * STALE_MS);

  const result = await verify();

  expect(codes(result)).toEqual(['SOURCE_SHRANK', 'UNSTORED_BYTES']);
  expect(result.report.findings.find((f) => f.code === 'UNSTORED_BYTES')?.file).toBe(FILE2);
});

test('LOST, FAILED, stale PENDING and stale IN_PROGRESS items are findings; the stuck ones need attention', async () => {
  await backedUp();
  const old = Date.now() - 2 * STALE_MS;
  seedItem('audit/lost', { Status: LedgerStatus.LOST, Size: 100, BackedUpBytes: 0, LastError: 'RDS no longer lists the file' });
  seedItem('audit/failed', { Status: LedgerStatus.FAILED, Attempts: 2, LastError: 'AccessDenied: no' });
  seedItem('audit/pending', { Status: LedgerStatus.PENDING, StatusChangedAt: old });
  seedItem('audit/claimed', { Status: LedgerStatus.IN_PROGRESS, StatusChangedAt: old, ClaimToken: 'dead' });
  seedItem('audit/fresh', { Status: LedgerStatus.PENDING });
  seedItem('audit/done-short', { Status: LedgerStatus.DONE, Size: 100, BackedUpBytes: 0 });

  const result = await verify({}, null);

  expect(codes(result)).toEqual(['DONE_INCOMPLETE', 'FAILED', 'LOST', 'STALE_IN_PROGRESS', 'STALE_PENDING']);
  expect(result.report.findings.find((f) => f.code === 'LOST')?.detail).toContain('RDS no longer lists the file');
  expect(result.report.findings.find((f) => f.code === 'FAILED')?.detail).toContain('AccessDenied: no');
  expect(result.attention.map((item) => item.LogFileName).sort()).toEqual(['audit/claimed', 'audit/failed', 'audit/pending']);
  expect(result.report.totals.rdsConsulted).toBe(false);
});

test('a leftover intent whose object was stored: LEFTOVER_INTENT and the UNRECORDED_OBJECT it explains', async () => {
  await backedUp();
  const content = auditLines(5, 700);
  const size = Buffer.byteLength(content);
  const file = FILE3;
  const intent = { Start: 0, End: size, Sha256: sha256Base64(content), Marker: `3:${size}` };
  fakeRds.writeFile(INSTANCE, file, content, Date.now());
  seedItem(file, { Status: LedgerStatus.FAILED, Size: size, StatusChangedAt: Date.now() - 2 * STALE_MS, PendingSegment: intent });
  bucket.seed(segmentObjectKey(INSTANCE, file, 0, size), content);

  const result = await verify();

  expect(codes(result)).toEqual(['FAILED', 'LEFTOVER_INTENT', 'UNRECORDED_OBJECT']);
  expect(result.report.findings.find((f) => f.code === 'UNRECORDED_OBJECT')?.detail).toContain('open intent');
});

test('the object a live claim holder is storing right now is not a finding', async () => {
  await backedUp();
  const content = auditLines(5, 700);
  const size = Buffer.byteLength(content);
  const file = FILE3;
  fakeRds.writeFile(INSTANCE, file, content, Date.now());
  seedItem(file, {
    Status: LedgerStatus.IN_PROGRESS,
    ClaimToken: 'alive',
    Size: size,
    PendingSegment: { Start: 0, End: size, Sha256: sha256Base64(content), Marker: `3:${size}` },
  });
  bucket.seed(segmentObjectKey(INSTANCE, file, 0, size), content);

  expect(codes(await verify())).toEqual([]);
});

test('a malformed ledger item is reported and its objects are not orphans', async () => {
  await backedUp();
  table.seed({ DBInstanceIdentifier: INSTANCE, LogFileName: 'audit/odd', Status: 'MAYBE', Size: 5 });
  bucket.seed(segmentObjectKey(INSTANCE, 'audit/odd', 0, 5), 'hello');

  const result = await verify();

  expect(codes(result)).toEqual(['LEDGER_MALFORMED']);
  expect(result.report.findings[0]).toMatchObject({ instance: INSTANCE, file: 'audit/odd' });
  expect(result.report.findings[0].detail).toContain('unknown ledger status MAYBE');
});

test('an item judged from a stale snapshot is judged again from its fresh state', async () => {
  await backedUp();
  const done = ledgerItem(FILE);
  // The Scan still sees the file as it was before the downloader finished it.
  const snapshot = { ...done, Status: LedgerStatus.PENDING, StatusChangedAt: Date.now() - 2 * STALE_MS, BackedUpBytes: 0, Segments: undefined };
  ledgerClient.on(ScanCommand).callsFake((input) => {
    const page = table.scan(input);
    return { ...page, Items: page.Items.map((item) => (item.LogFileName === FILE ? (snapshot as unknown as Item) : item)) };
  });

  const result = await verify();

  expect(codes(result)).toEqual([]);
  expect(result.report.totals.itemsByStatus.PENDING).toBe(1);
});

test('with a window, DONE items that changed long ago are not inspected; the full run still is', async () => {
  const keys = await backedUp();
  const item = ledgerItem(FILE);
  table.seed({ ...item, StatusChangedAt: Date.now() - 48 * HOUR, LastBackup: Date.now() - 48 * HOUR } as unknown as Item);
  bucket.tamper(keys[0], sameLengthOther(keys[0]));

  const windowed = await verify({ windowMs: 24 * HOUR });
  expect(codes(windowed)).toEqual([]);
  expect(windowed.report.totals.itemsInspected).toBe(1);

  expect(codes(await verify())).toEqual(['CHECKSUM_MISMATCH']);
});

test('with a sweep, a DONE item outside the window is inspected in its own slice only, so the sweep finds what the window misses', async () => {
  const keys = await backedUp();
  table.seed({ ...ledgerItem(FILE), StatusChangedAt: Date.now() - 48 * HOUR, LastBackup: Date.now() - 48 * HOUR } as unknown as Item);
  bucket.tamper(keys[0], sameLengthOther(keys[0]));
  const slices = 24;

  const runs = [];
  for (let slice = 0; slice < slices; slice++) runs.push(await verify({ windowMs: 24 * HOUR, sweep: { slice, slices } }));

  const own = sweepSliceOf(INSTANCE, FILE, slices);
  const found = runs.flatMap((run, slice) => (codes(run).includes('CHECKSUM_MISMATCH') ? [slice] : []));
  expect(found).toEqual([own]);
  // The other file changed within the window: every run inspects it; the old one only its own slice's.
  expect(runs.map((run) => run.report.totals.itemsInspected)).toEqual(runs.map((_, slice) => (slice === own ? 2 : 1)));
  expect(runs[own]?.report.options).toMatchObject({ windowMs: 24 * HOUR, sweep: { slice: own, slices } });
});

test("a sweep's slices share the items out evenly and keep each item's slice across calls", () => {
  const slices = 24;
  const counts = new Array<number>(slices).fill(0);
  for (let instance = 0; instance < 10; instance++) {
    for (let hour = 0; hour < 240; hour++) {
      const file = `audit/server_audit.log.${hour % 4}.2026-12-${String(1 + Math.floor(hour / 24)).padStart(2, '0')}-${String(hour % 24).padStart(2, '0')}-00.0`;
      const slice = sweepSliceOf(`aurora-${instance}`, file, slices);
      expect(sweepSliceOf(`aurora-${instance}`, file, slices)).toBe(slice);
      counts[slice] = (counts[slice] as number) + 1;
    }
  }
  // 2,400 items over 24 slices: 100 each on average; no slice carries a run's work twice over.
  expect(Math.min(...counts)).toBeGreaterThan(60);
  expect(Math.max(...counts)).toBeLessThan(140);
  expect(sweepSliceOf(INSTANCE, FILE, 1)).toBe(0);
});

test('out of time: the object inspection stops and the run says so', async () => {
  await backedUp();
  let polls = 0;

  const result = await verify({ shouldStop: () => ++polls > 1, concurrency: 1 });

  expect(codes(result)).toEqual(['VERIFY_INCOMPLETE']);
  expect(result.report.totals.itemsInspected).toBe(1);
});

test('an instance filter limits the ledger, the objects and RDS to those instances', async () => {
  await backedUp();
  table.seed({
    DBInstanceIdentifier: 'other-instance',
    LogFileName: 'audit/x',
    Size: 10,
    LastWritten: 1,
    Status: LedgerStatus.FAILED,
    StatusChangedAt: 1,
    BackedUpBytes: 0,
  });
  bucket.seed('logs/other-instance/junk', 'x');
  const listCalls = () => s3.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input.Prefix);

  const result = await verify({ instances: [INSTANCE] }, [INSTANCE, 'other-instance']);

  expect(codes(result)).toEqual([]);
  expect(result.report.totals.ledgerItems).toBe(2);
  expect(result.report.totals.instancesListed).toEqual([INSTANCE]);
  expect(listCalls().every((prefix) => prefix?.startsWith(`logs/${INSTANCE}/`))).toBe(true);
  expect(codes(await verify({}, null))).toEqual(['FAILED', 'UNKNOWN_OBJECT']);
});

test('an instance RDS no longer knows is reported as gone; its items are still verified', async () => {
  await backedUp();

  const result = await verify({}, [INSTANCE, 'deleted-instance']);

  expect(result.report.totals.instancesGone).toEqual(['deleted-instance']);
  expect(codes(result)).toEqual([]);
});

test('Segments that do not run contiguously to BackedUpBytes are inconsistent', () => {
  const policy = { now: Date.now(), staleMs: STALE_MS };
  const base = { ...ledgerKey(), Size: 30, LastWritten: 1, Status: LedgerStatus.DONE, StatusChangedAt: Date.now() } as unknown as LedgerItem;
  const gap = judgeItemState({ ...base, BackedUpBytes: 30, Segments: [{ Start: 0, End: 10, Sha256: 'a' }, { Start: 12, End: 30, Sha256: 'b' }] }, policy);
  const short = judgeItemState({ ...base, BackedUpBytes: 30, Segments: [{ Start: 0, End: 10, Sha256: 'a' }] }, policy);
  const none = judgeItemState({ ...base, Size: 0, BackedUpBytes: 0 }, policy);

  expect(gap.map((f) => f.detail)).toEqual(['segment 12-30 follows bytes 0-10']);
  expect(short.map((f) => f.detail)).toEqual(['Segments cover bytes 0-10 but BackedUpBytes is 30']);
  expect(none).toEqual([]);
});
