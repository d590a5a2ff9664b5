/**
 * Exactly-once storage when the downloader dies (timeout, crash, OOM) at any point of storing an
 * object: before its intent is recorded, after the intent, during the PUT, after the PUT, after the
 * checkpoint; for each way a spool gets stored (MAX_OBJECT_BYTES reached mid-download, time nearly up,
 * end of data). A crash is simulated by failing the step and then putting the ledger item back as the
 * dying process left it (so no error handling of the dead invocation counts); the detector's real
 * stale-claim logic hands the item on, the file grows meanwhile, and the next invocation must finish
 * with objects that are contiguous, non-overlapping, equal to the source, exactly the ledger's Segments,
 * never rewritten, and with no byte re-read from RDS that a checkpoint or a stored object covered.
 */
import { DownloadDBLogFilePortionCommand } from '@aws-sdk/client-rds';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import 'aws-sdk-client-mock-jest';
import {
  FILE,
  INSTANCE,
  SAFETY_MARGIN_MS,
  bucket,
  deliver,
  expectContiguousObjects,
  expectNoSpoolLeft,
  expectObjectsAreSegments,
  fakeRds,
  idempotency,
  ledgerClient,
  ledgerItem,
  ledgerKey,
  newFile,
  rds,
  resetDownloaderWorld,
  s3,
  table,
} from './support/downloader-world';
import { runDetector } from './support/run-detector';
import { CONFIG_DEFAULTS } from '../../lambda/shared/config';
import {
  LEDGER_ATTR,
  LedgerStatus,
  type LedgerItem,
  type PendingSegment,
  logFilePrefix,
  segmentObjectKey,
} from '../../lambda/shared/contract';
import type { DownloadResult } from '../../lambda/shared/download';
import type { Item } from './support/fake-dynamodb';
import { auditLines } from './support/fake-rds';
import { sha256Base64 } from './support/lambda-harness';

const PLENTY_MS = 900_000;
const GROWTH = auditLines(15, 1000);

class SimulatedCrash extends Error {
  constructor(point: string) {
    super(`simulated crash ${point}`);
    this.name = 'SimulatedCrash';
  }
}

type CrashPoint = 'before intent' | 'after intent' | 'during PUT' | 'after PUT' | 'after checkpoint';
type StoreTrigger = 'MAX_OBJECT_BYTES' | 'time nearly up' | 'end of data' | 'end of data, last page without a Marker';

/** Which ledger write an UpdateCommand is, told apart by its expression (test-only classification). */
function ledgerWrite(input: UpdateCommandInput): 'intent' | 'checkpoint' | 'other' {
  const expression = input.UpdateExpression ?? '';
  if (expression.startsWith(`SET #${LEDGER_ATTR.pendingSegment} =`)) return 'intent';
  if (expression.includes(`#${LEDGER_ATTR.segments} = list_append(`)) return 'checkpoint';
  return 'other';
}

/** Arms one crash at `point` of the first object stored, and remembers what the process left behind. */
class CrashInjector {
  private armed = true;
  /** The ledger item and bucket keys at the moment of death. */
  left: { item: LedgerItem; keys: string[]; servedRanges: number } | undefined;

  constructor(private readonly point: CrashPoint) {
    ledgerClient.on(UpdateCommand).callsFake((input: UpdateCommandInput) => {
      const write = ledgerWrite(input);
      if (write === 'intent') this.at('before intent');
      const result = table.update(input);
      if (write === 'intent') this.at('after intent');
      if (write === 'checkpoint') this.at('after checkpoint');
      return result;
    });
    bucket.beforeCommit = () => this.at('during PUT');
    s3.on(PutObjectCommand).callsFake(async (input) => {
      const result = await bucket.putObject(input);
      this.at('after PUT');
      return result;
    });
  }

  private at(point: CrashPoint): void {
    if (!this.armed || point !== this.point) return;
    this.armed = false;
    this.left = {
      item: table.item(ledgerKey()) as unknown as LedgerItem,
      keys: bucket.keys(),
      servedRanges: fakeRds.servedRanges.length,
    };
    throw new SimulatedCrash(point);
  }

  /** A dead process runs no error handling: put the ledger item back as it was at the crash. */
  buryTheDead(): LedgerItem {
    if (!this.left) throw new Error(`the crash ${this.point} never happened`);
    expect(bucket.keys()).toEqual(this.left.keys);
    table.seed(this.left.item as unknown as Item);
    return this.left.item;
  }
}

/** Delivers every new transition into PENDING with plenty of time until the item settles. */
async function resumeUntilSettled(fromChange: number): Promise<void> {
  let from = fromChange;
  for (let invocation = 1; ledgerItem().Status === LedgerStatus.PENDING; invocation++) {
    if (invocation > 5) throw new Error('the item did not settle in 5 invocations');
    const next = table.changes.length;
    const { response } = await deliver(from, () => PLENTY_MS, `resume-${invocation}`);
    expect(response.batchItemFailures).toEqual([]);
    from = next;
  }
}

/** Exactly-once storage: contiguous, non-overlapping, byte-identical, recorded, never rewritten. */
function expectExactlyOnce(content: string): void {
  const size = Buffer.byteLength(content);
  const item = ledgerItem();
  expect(item).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
  expect(item.PendingSegment).toBeUndefined();
  expect(item.ClaimToken).toBeUndefined();
  expectContiguousObjects(FILE, size);
  expect(bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString()).toBe(content);
  expectObjectsAreSegments();
  expect(bucket.overwrites).toEqual([]);
}

interface Scenario {
  content: string;
  remainingMs: () => number;
  check: () => void;
  /** RDS omits the Marker on the last page: the object's checkpoint is the Marker before it plus a skip. */
  noFinalMarker?: boolean;
}

const SCENARIOS: Record<StoreTrigger, Scenario> = {
  // 100 lines are ~10 KB: the first object is stored mid-download when the spool would pass 4 KB.
  'MAX_OBJECT_BYTES': { content: auditLines(100), remainingMs: () => PLENTY_MS, check: () => undefined },
  // Three 1 KB pages, then the budget says stop: the spool is stored by the hand-off.
  'time nearly up': {
    content: auditLines(60),
    remainingMs: () => (fakeRds.downloads.length >= 3 ? SAFETY_MARGIN_MS - 1 : PLENTY_MS),
    check: () => expect(fakeRds.downloads).toHaveLength(3),
  },
  // ~3 KB: the whole file is one object, stored when RDS has no more data.
  'end of data': {
    content: auditLines(30),
    remainingMs: () => PLENTY_MS,
    check: () => expect(fakeRds.downloads.at(-1)?.Marker).toBeDefined(),
  },
  // The same, but the last page comes without a Marker (every pass, the resumed ones too).
  'end of data, last page without a Marker': {
    content: auditLines(30),
    remainingMs: () => PLENTY_MS,
    check: () => expect(fakeRds.downloads.length).toBeGreaterThan(1),
    noFinalMarker: true,
  },
};

const CRASH_POINTS: CrashPoint[] = ['before intent', 'after intent', 'during PUT', 'after PUT', 'after checkpoint'];

beforeEach(resetDownloaderWorld);
afterEach(expectNoSpoolLeft);

test('every PUT is announced on the ledger first (its key, size and SHA-256) and closed by its checkpoint', async () => {
  const content = auditLines(100);
  newFile(content);
  const announced: PendingSegment[] = [];
  s3.on(PutObjectCommand).callsFake((input) => {
    const intent = ledgerItem().PendingSegment;
    expect(intent).toBeDefined();
    if (!intent) throw new Error('PUT without an intent');
    expect(input.Key).toBe(segmentObjectKey(INSTANCE, FILE, intent.Start, intent.End));
    expect(input.ContentLength).toBe(intent.End - intent.Start);
    expect(input.ChecksumSHA256).toBe(intent.Sha256);
    announced.push(intent);
    return bucket.putObject(input);
  });

  await deliver(0);

  const item = ledgerItem();
  expect(announced.length).toBeGreaterThan(2);
  // Each intent became exactly its segment, with the marker the next object resumed from.
  expect(item.Segments).toEqual(announced.map(({ Start, End, Sha256 }) => ({ Start, End, Sha256 })));
  expect(item.Marker).toBe(announced.at(-1)?.Marker);
  expect(item.PendingSegment).toBeUndefined();
  expect(s3).not.toHaveReceivedCommand(HeadObjectCommand);
  expectExactlyOnce(content);
});

describe.each(Object.keys(SCENARIOS) as StoreTrigger[])('spool stored at %s', (trigger) => {
  test.each(CRASH_POINTS)('a crash %s loses, duplicates and re-reads nothing; the next invocation completes', async (point) => {
    const { content, remainingMs, check, noFinalMarker } = SCENARIOS[trigger];
    if (noFinalMarker) fakeRds.nonEmptyFinalMarker = false;
    newFile(content);
    const crash = new CrashInjector(point);

    await expect(deliver(0, remainingMs)).rejects.toThrow();
    check();
    const left = crash.buryTheDead();
    const served = crash.left?.servedRanges ?? 0;
    expect(left.Status).toBe(LedgerStatus.IN_PROGRESS);
    const intent = left.PendingSegment;
    const intentOpen = point === 'after intent' || point === 'during PUT' || point === 'after PUT';
    expect(intent !== undefined).toBe(intentOpen);
    // The object ends with the marker-less page: its intent (and checkpoint) carry the skip.
    if (noFinalMarker && intent) expect(intent.MarkerSkipBytes).toBe(intent.End - (fakeRds.servedRanges.at(-1)?.from ?? -1));
    if (noFinalMarker && point === 'after checkpoint') expect(left.MarkerSkipBytes).toBeGreaterThan(0);

    // The file grows while the item waits, so a naive resume would store a longer, overlapping object.
    fakeRds.appendFile(INSTANCE, FILE, GROWTH, 1_700_000_200_000);
    const beforeDetector = table.changes.length;
    await runDetector(CONFIG_DEFAULTS.staleClaimMs + 1);
    const handedOn = ledgerItem();
    expect(handedOn).toMatchObject({ Status: LedgerStatus.PENDING, Size: Buffer.byteLength(content + GROWTH) });
    expect(handedOn.ClaimToken).toBeUndefined();
    expect(handedOn.PendingSegment).toEqual(intent);
    const headsBefore = s3.commandCalls(HeadObjectCommand).length;
    const downloadsBefore = fakeRds.downloads.length;

    await resumeUntilSettled(beforeDetector);

    expectExactlyOnce(content + GROWTH);
    // Where the next invocation started reading: after the stored object when it was adopted,
    // otherwise at the checkpoint the dead one left (less a skip: the marker-less page is read again,
    // its stored bytes dropped). Nothing before that is read again.
    const adopted = point === 'after PUT';
    const resumeAt = adopted
      ? (intent?.End ?? -1) - (intent?.MarkerSkipBytes ?? 0)
      : left.BackedUpBytes - (left.MarkerSkipBytes ?? 0);
    const reRead = fakeRds.servedRanges.slice(served);
    expect(reRead[0].from).toBe(resumeAt);
    for (let i = 1; i < reRead.length; i++) expect(reRead[i].from).toBe(reRead[i - 1].to);
    expect(reRead.at(-1)?.to).toBe(Buffer.byteLength(content + GROWTH));
    if (adopted) {
      // The first call of the new invocation already continues from the adopted object's marker.
      expect(fakeRds.downloads[downloadsBefore].Marker).toBe(intent?.Marker);
      expect(ledgerItem().Segments?.[left.Segments?.length ?? 0]).toEqual({
        Start: intent?.Start,
        End: intent?.End,
        Sha256: intent?.Sha256,
      });
    }
    // Only an open intent needs a look into the bucket, and it is one HEAD with the stored checksum.
    const heads = s3.commandCalls(HeadObjectCommand).slice(headsBefore);
    expect(heads).toHaveLength(intentOpen ? 1 : 0);
    if (intent) {
      expect(heads[0].args[0].input).toMatchObject({
        Key: segmentObjectKey(INSTANCE, FILE, intent.Start, intent.End),
        ChecksumMode: 'ENABLED',
      });
    }
  });
});

test('adopting issues no DownloadDBLogFilePortion for the adopted range and counts its bytes', async () => {
  const content = auditLines(30);
  newFile(content);
  const crash = new CrashInjector('after PUT');
  await expect(deliver(0)).rejects.toThrow();
  const intent = crash.buryTheDead().PendingSegment;
  if (!intent) throw new Error('no intent left');
  const beforeDetector = table.changes.length;
  await runDetector(CONFIG_DEFAULTS.staleClaimMs + 1);
  rds.resetHistory();
  const putsBefore = bucket.puts;

  await deliver(beforeDetector);

  // The file did not grow: the only call is the one that learns there is nothing after the object.
  expect(rds).toHaveReceivedCommandTimes(DownloadDBLogFilePortionCommand, 1);
  expect(rds).toHaveReceivedCommandWith(DownloadDBLogFilePortionCommand, { Marker: intent.Marker });
  expect(fakeRds.servedRanges.at(-1)).toEqual({ file: FILE, from: intent.End, to: intent.End });
  expect(bucket.puts).toBe(putsBefore);
  expectExactlyOnce(content);
  // The pass's result (kept by the idempotency layer) counts the adopted bytes, not as stored by it.
  const results = [...idempotency.items.values()]
    .filter((record) => record.status === 'COMPLETED')
    .map((record) => record.data as DownloadResult);
  expect(results).toEqual([
    expect.objectContaining({ outcome: 'DONE', bytesStored: 0, objectsStored: 0, bytesAdopted: intent.End - intent.Start }),
  ]);
});

test('adopting an object whose checkpoint carries a skip restores it: the page is re-read, its bytes dropped', async () => {
  fakeRds.nonEmptyFinalMarker = false;
  const content = auditLines(30);
  newFile(content);
  const crash = new CrashInjector('after PUT');
  await expect(deliver(0)).rejects.toThrow();
  const intent = crash.buryTheDead().PendingSegment;
  if (!intent?.MarkerSkipBytes) throw new Error('no intent with a skip left');
  const beforeDetector = table.changes.length;
  await runDetector(CONFIG_DEFAULTS.staleClaimMs + 1);
  rds.resetHistory();
  const putsBefore = bucket.puts;

  await deliver(beforeDetector);

  // One call, from the Marker before the marker-less page; all of its bytes were already stored.
  expect(rds).toHaveReceivedCommandTimes(DownloadDBLogFilePortionCommand, 1);
  expect(rds).toHaveReceivedCommandWith(DownloadDBLogFilePortionCommand, { Marker: intent.Marker });
  expect(fakeRds.servedRanges.at(-1)).toEqual({ file: FILE, from: intent.End - intent.MarkerSkipBytes, to: intent.End });
  expect(bucket.puts).toBe(putsBefore);
  expect(ledgerItem()).toMatchObject({ Marker: intent.Marker, MarkerSkipBytes: intent.MarkerSkipBytes });
  expectExactlyOnce(content);
});

test('a PUT that S3 stored but answered with an error: FAILED keeps the intent, the re-drive adopts the object', async () => {
  const content = auditLines(30);
  newFile(content);
  s3.on(PutObjectCommand).callsFake(async (input) => {
    await bucket.putObject(input);
    throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
  });

  await expect(deliver(0)).rejects.toThrow('All records failed processing');

  const failed = ledgerItem();
  expect(failed).toMatchObject({ Status: LedgerStatus.FAILED, BackedUpBytes: 0 });
  expect(failed.LastError).toMatch(/TimeoutError: socket hang up/);
  expect(failed.PendingSegment).toMatchObject({ Start: 0, End: Buffer.byteLength(content), Sha256: sha256Base64(content) });
  s3.on(PutObjectCommand).callsFake((input) => bucket.putObject(input));
  const beforeDetector = table.changes.length;
  await runDetector(CONFIG_DEFAULTS.failedRetryBackoffMs + 1);
  const downloadsBefore = fakeRds.downloads.length;

  await resumeUntilSettled(beforeDetector);

  expect(bucket.puts).toBe(1);
  expect(fakeRds.downloads.slice(downloadsBefore)).toHaveLength(1);
  expectExactlyOnce(content);
});

describe('an object under the intended key that is not the intended one is never overwritten', () => {
  const content = auditLines(30);
  const size = Buffer.byteLength(content);
  const intent: PendingSegment = { Start: 0, End: size, Sha256: sha256Base64(content), Marker: `9:${size}` };
  const key = segmentObjectKey(INSTANCE, FILE, 0, size);

  test.each([
    ['same length, other bytes', content.replace('SELECT', 'DELETE')],
    ['other length', content.slice(0, size - 10)],
  ])('%s: FAILED with the evidence in LastError, nothing read or written', async (_case, other) => {
    newFile(content, FILE, { PendingSegment: intent });
    bucket.seed(key, other);

    const { response } = await deliver(0);

    expect(response.batchItemFailures).toEqual([]);
    const item = ledgerItem();
    expect(item.Status).toBe(LedgerStatus.FAILED);
    expect(item.LastError).toContain(`object ${key} exists but is not the one the ledger intended to store`);
    expect(item.LastError).toContain(`ledger: ${size} bytes, SHA-256 ${intent.Sha256}`);
    expect(item.LastError).toContain(`S3: ${Buffer.byteLength(other)} bytes, SHA-256 ${sha256Base64(other)}`);
    expect(item.LastError).toMatch(/never overwritten$/);
    expect(item.PendingSegment).toEqual(intent);
    expect(item).toMatchObject({ BackedUpBytes: 0 });
    expect(item.Segments).toBeUndefined();
    expect(bucket.puts).toBe(0);
    expect(bucket.objects.get(key)?.body.toString()).toBe(other);
    expect(fakeRds.downloads).toEqual([]);
  });
});

test('a HEAD answered 403 (no s3:ListBucket, or denied) is an error, never taken as "no object"', async () => {
  const content = auditLines(30);
  const size = Buffer.byteLength(content);
  const intent: PendingSegment = { Start: 0, End: size, Sha256: sha256Base64(content), Marker: `9:${size}` };
  newFile(content, FILE, { PendingSegment: intent });
  s3.on(HeadObjectCommand).rejects(
    Object.assign(new Error('Forbidden'), { name: '403', $fault: 'client', $metadata: { httpStatusCode: 403 } }),
  );

  await expect(deliver(0)).rejects.toThrow('All records failed processing');

  const item = ledgerItem();
  expect(item.Status).toBe(LedgerStatus.FAILED);
  expect(item.LastError).toMatch(/403: Forbidden/);
  expect(item.PendingSegment).toEqual(intent);
  expect(fakeRds.downloads).toEqual([]);
  expect(bucket.puts).toBe(0);
});

test('a file that vanishes while an intent is open: the intent is settled first, then LOST with the object recorded', async () => {
  const content = auditLines(100);
  newFile(content);
  const crash = new CrashInjector('after PUT');
  await expect(deliver(0)).rejects.toThrow();
  const intent = crash.buryTheDead().PendingSegment;
  if (!intent) throw new Error('no intent left');
  fakeRds.deleteFile(INSTANCE, FILE);
  const beforeDetector = table.changes.length;

  // Not LOST yet: only a downloader can tell whether the intended object exists.
  await runDetector(CONFIG_DEFAULTS.staleClaimMs + 1);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.PENDING, PendingSegment: intent });
  const { response } = await deliver(beforeDetector);

  expect(response.batchItemFailures).toEqual([]);
  const item = ledgerItem();
  expect(item).toMatchObject({ Status: LedgerStatus.LOST, BackedUpBytes: intent.End });
  expect(item.LastError).toMatch(new RegExp(`bytes ${intent.End}-${Buffer.byteLength(content)} were never stored`));
  expect(item.PendingSegment).toBeUndefined();
  expectObjectsAreSegments();
  expect(bucket.keys()).toEqual([segmentObjectKey(INSTANCE, FILE, intent.Start, intent.End)]);
});
