import { existsSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DownloadDBLogFilePortionCommand } from '@aws-sdk/client-rds';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import 'aws-sdk-client-mock-jest';
import type { DynamoDBRecord } from 'aws-lambda';
import {
  FILE,
  INSTANCE,
  MAX_OBJECT_BYTES,
  SAFETY_MARGIN_MS,
  bucket,
  deliver,
  expectContiguousObjects,
  expectNoSpoolLeft,
  fakeRds,
  handler,
  hooks,
  idempotency,
  ledgerClient,
  ledgerItem,
  newFile,
  rds,
  resetDownloaderWorld,
  s3,
  spoolDir,
  table,
} from './support/downloader-world';
import { REFUSED_BUT_LISTED_RETRY_DELAYS_MS } from '../../lambda/shared/download';
import { ABANDONED_SPOOL_AGE_MS } from '../../lambda/shared/segment-writer';
import { Ledger } from '../../lambda/shared/ledger';
import { RdsLogReader } from '../../lambda/shared/rds-log-reader';
import {
  LedgerStatus,
  RDS_TRUNCATION_TEXT,
  logFilePrefix,
  segmentObjectKey,
} from '../../lambda/shared/contract';
import { type Item } from './support/fake-dynamodb';
import { auditLines } from './support/fake-rds';
import { BUCKET, fakeContext, LEDGER_TABLE, pendingTransitions, sha256Base64, streamEvent } from './support/lambda-harness';

beforeEach(resetDownloaderWorld);
afterEach(expectNoSpoolLeft);

test('backs up a new file as one checksummed object 000000000000-{size}, starting at Marker "0"', async () => {
  const content = auditLines(30);
  const size = Buffer.byteLength(content);
  expect(size).toBeLessThan(MAX_OBJECT_BYTES);
  newFile(content);

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(fakeRds.downloads[0]).toMatchObject({ DBInstanceIdentifier: INSTANCE, LogFileName: FILE, Marker: '0' });
  // Each call continues from the previous page's marker; the last page (AdditionalDataPending false,
  // with a non-empty Marker) ends the loop.
  const pages = fakeRds.servedRanges;
  expect(pages.length).toBeGreaterThan(2);
  expect(fakeRds.downloads).toHaveLength(pages.length);
  expect(pages[pages.length - 1].to).toBe(size);
  for (let i = 1; i < pages.length; i++) expect(pages[i].from).toBe(pages[i - 1].to);

  const key = segmentObjectKey(INSTANCE, FILE, 0, size);
  expect(key).toBe(`logs/${INSTANCE}/${FILE}/000000000000-${String(size).padStart(12, '0')}`);
  expect(bucket.keys()).toEqual([key]);
  expect(bucket.objects.get(key)?.body.toString()).toBe(content);
  expect(s3).toHaveReceivedCommandWith(PutObjectCommand, {
    Bucket: BUCKET,
    Key: key,
    ContentLength: size,
    ChecksumAlgorithm: 'SHA256',
    ChecksumSHA256: sha256Base64(content),
  });

  const item = ledgerItem();
  expect(item).toMatchObject({
    Status: LedgerStatus.DONE,
    BackedUpBytes: size,
    Attempts: 0,
    Segments: [{ Start: 0, End: size, Sha256: sha256Base64(content) }],
    LastBackup: expect.any(Number),
  });
  expect(item.Marker).toMatch(/^\d+:\d+$/);
  expect(item.ClaimToken).toBeUndefined();
});

test('a final page with a non-empty Marker and AdditionalDataPending false ends the loop', async () => {
  const content = auditLines(3);
  newFile(content);

  await deliver(0);

  expect(fakeRds.downloads).toHaveLength(1);
  expect(ledgerItem().Status).toBe(LedgerStatus.DONE);
});

test('a large file becomes contiguous objects of at most MAX_OBJECT_BYTES, each checkpointed', async () => {
  const content = auditLines(100);
  const size = Buffer.byteLength(content);
  newFile(content);

  await deliver(0);

  const keys = expectContiguousObjects(FILE, size);
  expect(keys.length).toBeGreaterThan(2);
  for (const key of keys) expect(bucket.objects.get(key)?.body.length).toBeLessThanOrEqual(MAX_OBJECT_BYTES);
  expect(bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString()).toBe(content);
  const segments = ledgerItem().Segments ?? [];
  expect(segments.map((s) => segmentObjectKey(INSTANCE, FILE, s.Start, s.End))).toEqual(keys);
  expect(segments.map((s) => s.Sha256)).toEqual(keys.map((key) => bucket.objects.get(key)?.checksumSha256));
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
});

test('every page is released once spooled, never before: a release that overwrites the page still stores the file intact', async () => {
  // A released page's buffer holds a later page (log-portion-decoder); here release scribbles over the
  // bytes at once, so any use of them after release would show in the stored objects.
  const released: number[] = [];
  const readPage = RdsLogReader.prototype.readPage;
  const spy = jest.spyOn(RdsLogReader.prototype, 'readPage').mockImplementation(async function (this: RdsLogReader, ...args) {
    const page = await readPage.apply(this, args);
    return {
      ...page,
      release: () => {
        released.push(page.data.length);
        page.data.fill(0x21);
      },
    };
  });
  try {
    const content = auditLines(100);
    const size = Buffer.byteLength(content);
    newFile(content);

    await deliver(0);

    expect(bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString()).toBe(content);
    expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
    expect(released).toHaveLength(spy.mock.calls.length);
    expect(released.reduce((sum, bytes) => sum + bytes, 0)).toBe(size);
  } finally {
    spy.mockRestore();
  }
});

test('a page ending in a truncated line is re-read with fewer lines; no truncation text is stored', async () => {
  fakeRds.cutStraddlingLine = true;
  const content = auditLines(5) + auditLines(1, 5, 700) + auditLines(30, 6);
  newFile(content);

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  const reReads = fakeRds.downloads.filter((call) => call.NumberOfLines !== undefined);
  expect(reReads.length).toBeGreaterThan(0);
  // The re-read asks for exactly the complete lines that preceded the cut.
  const first = fakeRds.downloads.findIndex((call) => call.NumberOfLines !== undefined);
  expect(fakeRds.downloads[first].Marker).toBe(fakeRds.downloads[first - 1].Marker);
  const stored = bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString();
  expect(stored).not.toContain(RDS_TRUNCATION_TEXT);
  expect(stored).toBe(content);
  expect(ledgerItem().Status).toBe(LedgerStatus.DONE);
});

test('a single line longer than a page is never stored cut: FAILED with a clear error', async () => {
  const content = auditLines(3) + auditLines(1, 3, 2000) + auditLines(3, 4);
  newFile(content);

  // The only record of the batch failed: Powertools fails the whole invocation, so Lambda retries it.
  await expect(handler(streamEvent(pendingTransitions(table, 0)), fakeContext())).rejects.toThrow(
    'All records failed processing',
  );

  const item = ledgerItem();
  expect(item.Status).toBe(LedgerStatus.FAILED);
  expect(item.LastError).toMatch(/LineTooLongError: .*exceeds the 1 MB page limit/);
  expect(item.ClaimToken).toBeUndefined();
  expect([...bucket.objects.values()].some((o) => o.body.toString().includes(RDS_TRUNCATION_TEXT))).toBe(false);
  expect(fakeRds.downloads.at(-1)?.NumberOfLines).toBe(1);
});

test('the complete lines before a line longer than a page are stored before the file is FAILED, and a retry starts at that line', async () => {
  const before = auditLines(3);
  newFile(before + auditLines(1, 3, 2000) + auditLines(3, 4));

  await expect(handler(streamEvent(pendingTransitions(table, 0)), fakeContext())).rejects.toThrow('All records failed processing');

  const failed = ledgerItem();
  expect(failed).toMatchObject({ Status: LedgerStatus.FAILED, BackedUpBytes: Buffer.byteLength(before) });
  expect(bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString()).toBe(before);
  expectContiguousObjects(FILE, Buffer.byteLength(before));
  expectNoSpoolLeft();

  // The detector's re-drive after its backoff: the retry reads from the long line, nothing before it.
  const from = table.changes.length;
  table.put({ TableName: 'ledger', Item: { ...failed, Status: LedgerStatus.PENDING, StatusChangedAt: Date.now() } as unknown as Item });
  const readsBefore = fakeRds.downloads.length;
  await expect(handler(streamEvent(pendingTransitions(table, from)), fakeContext())).rejects.toThrow('All records failed processing');

  const retryReads = fakeRds.downloads.slice(readsBefore);
  expect(retryReads.map((call) => call.Marker)).toEqual(retryReads.map(() => failed.Marker));
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.FAILED, BackedUpBytes: Buffer.byteLength(before) });
  expect(bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString()).toBe(before);
});

test('time budget: stores and checkpoints what it read, hands off as PENDING; the next pass resumes without re-reading', async () => {
  const content = auditLines(60);
  const size = Buffer.byteLength(content);
  newFile(content);
  const plenty = 900_000;
  const afterInsert = table.changes.length;

  const first = await deliver(0, () => (fakeRds.downloads.length >= 3 ? SAFETY_MARGIN_MS - 1 : plenty));

  expect(first.response.batchItemFailures).toEqual([]);
  expect(fakeRds.downloads).toHaveLength(3);
  const handedOff = ledgerItem();
  const checkpointBytes = fakeRds.servedRanges[2].to;
  expect(handedOff).toMatchObject({
    Status: LedgerStatus.PENDING,
    BackedUpBytes: checkpointBytes,
    Segments: [{ Start: 0, End: checkpointBytes, Sha256: sha256Base64(content.slice(0, checkpointBytes)) }],
  });
  expect(handedOff.ClaimToken).toBeUndefined();
  expect(bucket.keys()).toEqual([segmentObjectKey(INSTANCE, FILE, 0, checkpointBytes)]);

  const resumeMarker = handedOff.Marker;
  const second = await deliver(afterInsert);

  expect(second.response.batchItemFailures).toEqual([]);
  expect(fakeRds.downloads[3].Marker).toBe(resumeMarker);
  // Every byte of the source was served exactly once across both passes.
  const ranges = fakeRds.servedRanges;
  for (let i = 1; i < ranges.length; i++) expect(ranges[i].from).toBe(ranges[i - 1].to);
  expect(ranges.at(-1)?.to).toBe(size);
  expectContiguousObjects(FILE, size);
  expect(bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString()).toBe(content);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
});

test('a hand-off that stored nothing takes back the attempt its claim counted; one that stored bytes leaves Attempts reset', async () => {
  const content = auditLines(30);
  // Two earlier failures: the FAILED backoff doubles with each attempt.
  newFile(content, FILE, { Attempts: 2 });
  const afterInsert = table.changes.length;

  await deliver(0, () => SAFETY_MARGIN_MS - 1);
  expect(fakeRds.downloads).toHaveLength(0);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.PENDING, Attempts: 2 });

  await deliver(afterInsert, () => (fakeRds.downloads.length >= 1 ? SAFETY_MARGIN_MS - 1 : 900_000));
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.PENDING, Attempts: 0, BackedUpBytes: fakeRds.servedRanges[0].to });
});

test('a resumed download continues from the stored checkpoint (Marker and offset) and re-reads nothing', async () => {
  const content = auditLines(20);
  const size = Buffer.byteLength(content);
  const checkpoint = content.indexOf('\n', 1000) + 1;
  newFile(content, FILE, {
    BackedUpBytes: checkpoint,
    Marker: `41:${checkpoint}`,
    Segments: [{ Start: 0, End: checkpoint, Sha256: sha256Base64(content.slice(0, checkpoint)) }],
  });

  await deliver(0);

  expect(fakeRds.downloads[0].Marker).toBe(`41:${checkpoint}`);
  expect(fakeRds.servedRanges[0].from).toBe(checkpoint);
  expect(bucket.keys()).toEqual([segmentObjectKey(INSTANCE, FILE, checkpoint, size)]);
  expect(bucket.objects.get(segmentObjectKey(INSTANCE, FILE, checkpoint, size))?.body.toString()).toBe(
    content.slice(checkpoint),
  );
  expect(ledgerItem().Segments?.map((s) => [s.Start, s.End])).toEqual([
    [0, checkpoint],
    [checkpoint, size],
  ]);
});

test('a replayed stream record does not upload twice', async () => {
  newFile(auditLines(10));
  const records = pendingTransitions(table, 0);

  const first = await handler(streamEvent(records), fakeContext());
  const downloadsAfterFirst = fakeRds.downloads.length;
  const ledgerReadsAfterFirst = ledgerClient.commandCalls(GetCommand).length;
  const replay = await handler(streamEvent(records), fakeContext(undefined, 'request-2'));

  expect(first.batchItemFailures).toEqual([]);
  expect(replay.batchItemFailures).toEqual([]);
  expect(s3).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  expect(fakeRds.downloads).toHaveLength(downloadsAfterFirst);
  // The idempotency record answered the replay: the ledger was not even read again.
  expect(ledgerClient.commandCalls(GetCommand)).toHaveLength(ledgerReadsAfterFirst);
  const idempotencyRecords = [...idempotency.items.values()];
  expect(idempotencyRecords).toHaveLength(1);
  expect(idempotencyRecords[0]).toMatchObject({ status: 'COMPLETED', expiration: expect.any(Number) });
  expect(idempotencyRecords[0].expiration as number).toBeGreaterThan(Date.now() / 1000 + 24 * 3600);
});

test('a trigger for work already done elsewhere does nothing: the ledger, not the stream, decides', async () => {
  newFile(auditLines(10));
  const insert = pendingTransitions(table, 0);
  await handler(streamEvent(insert), fakeContext());
  // A different record for the same file (e.g. its idempotency record expired): the item is DONE.
  const stale: DynamoDBRecord = { ...insert[0], dynamodb: { ...insert[0].dynamodb, SequenceNumber: '999' } };
  const image = { ...stale.dynamodb?.NewImage, StatusChangedAt: { N: '1' } };
  stale.dynamodb = { ...stale.dynamodb, NewImage: image };

  const response = await handler(streamEvent([stale]), fakeContext(undefined, 'request-3'));

  expect(response.batchItemFailures).toEqual([]);
  expect(s3).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  expect(ledgerItem().Status).toBe(LedgerStatus.DONE);
});

test('a failure in one record does not fail its siblings', async () => {
  newFile(auditLines(10), 'audit/good');
  newFile(auditLines(10), 'audit/bad');
  hooks.beforeDownload = (input) => {
    if (input.LogFileName === 'audit/bad') {
      throw Object.assign(new Error('An internal error occurred'), { name: 'InternalFailure', $fault: 'server' });
    }
  };
  const records = pendingTransitions(table, 0);
  const badRecord = records.find((r) => r.dynamodb?.Keys?.LogFileName?.S === 'audit/bad');

  const response = await handler(streamEvent(records), fakeContext());

  expect(response.batchItemFailures).toEqual([{ itemIdentifier: badRecord?.dynamodb?.SequenceNumber }]);
  expect(ledgerItem('audit/good').Status).toBe(LedgerStatus.DONE);
  expect(ledgerItem('audit/bad')).toMatchObject({ Status: LedgerStatus.FAILED, Attempts: 1 });
  expect(ledgerItem('audit/bad').LastError).toMatch(/InternalFailure: An internal error occurred/);
  // The failed record's idempotency record is released, so Lambda's retry runs (and finds FAILED).
  const retry = await handler(streamEvent([badRecord as DynamoDBRecord]), fakeContext(undefined, 'retry'));
  expect(retry.batchItemFailures).toEqual([]);
  expect(ledgerItem('audit/bad').Status).toBe(LedgerStatus.FAILED);
});

test('a file that vanishes mid-download keeps what was read and becomes LOST once the listing confirms it', async () => {
  const content = auditLines(40);
  newFile(content);
  hooks.beforeDownload = () => {
    if (fakeRds.downloads.length === 2) fakeRds.deleteFile(INSTANCE, FILE);
  };

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  const kept = fakeRds.servedRanges[1].to;
  expect(bucket.keys()).toEqual([segmentObjectKey(INSTANCE, FILE, 0, kept)]);
  const item = ledgerItem();
  expect(item).toMatchObject({ Status: LedgerStatus.LOST, BackedUpBytes: kept });
  expect(item.LastError).toMatch(new RegExp(`DBLogFileNotFoundFault.*${kept}-${Buffer.byteLength(content)}`));
  expect(fakeRds.describeCalls).toBe(1);
});

test('a download refused while RDS still lists the file (a rotation) is read again in the same pass, never LOST', async () => {
  const content = auditLines(40);
  newFile(content);
  hooks.beforeDownload = () => {
    if (fakeRds.downloads.length === 2) {
      hooks.beforeDownload = undefined;
      throw Object.assign(new Error('DBLogFile audit.log not found'), { name: 'DBLogFileNotFoundFault', $fault: 'client' });
    }
  };

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(fakeRds.describeCalls).toBe(1);
  const size = Buffer.byteLength(content);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
  expectContiguousObjects(FILE, size);
});

test('a file RDS keeps refusing but still lists is FAILED after the retries (re-driven later), not LOST', async () => {
  const content = auditLines(40);
  newFile(content);
  let refusals = 0;
  hooks.beforeDownload = () => {
    if (fakeRds.downloads.length >= 2) {
      refusals++;
      throw Object.assign(new Error('DBLogFile audit.log not found'), { name: 'DBLogFileNotFoundFault', $fault: 'client' });
    }
  };

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(refusals).toBe(REFUSED_BUT_LISTED_RETRY_DELAYS_MS.length + 1);
  const kept = fakeRds.servedRanges[1].to;
  const item = ledgerItem();
  expect(item).toMatchObject({ Status: LedgerStatus.FAILED, BackedUpBytes: kept });
  expect(item.LastError).toMatch(/DBLogFileNotFoundFault: .*still lists the file/);

  // The re-drive (FAILED -> PENDING once the backoff has passed) finishes the file.
  hooks.beforeDownload = undefined;
  const failedAt = table.changes.length;
  const ledger = new Ledger(DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })), LEDGER_TABLE);
  expect(await ledger.redrive(item, 'test re-drive', () => Date.now())).toBe(true);
  await deliver(failedAt);
  const size = Buffer.byteLength(content);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
  expectContiguousObjects(FILE, size);
});

test('bytes that appear while downloading send the item back to PENDING, and the next pass takes them', async () => {
  const content = auditLines(12);
  const more = auditLines(8, 12);
  newFile(content);
  let grown = false;
  rds.on(DownloadDBLogFilePortionCommand).callsFake((input) => {
    const page = fakeRds.downloadDBLogFilePortion(input);
    if (!page.AdditionalDataPending && !grown) {
      grown = true;
      // The file grows right after the last page and the detector records the new size.
      fakeRds.appendFile(INSTANCE, FILE, more, 1_700_000_100_000);
      const item = ledgerItem();
      table.seed({ ...item, Size: Buffer.byteLength(content + more) } as unknown as Item);
    }
    return page;
  });

  const afterInsert = table.changes.length;
  await deliver(0);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.PENDING, BackedUpBytes: Buffer.byteLength(content) });

  await deliver(afterInsert);

  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: Buffer.byteLength(content + more) });
  expectContiguousObjects(FILE, Buffer.byteLength(content + more));
  expect(bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString()).toBe(content + more);
});

test('RDS returning fewer bytes than it lists, with no progress, ends FAILED instead of looping', async () => {
  const content = auditLines(5);
  newFile(content, FILE, { Size: Buffer.byteLength(content) + 100 });
  const afterInsert = table.changes.length;

  await deliver(0);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.PENDING, BackedUpBytes: Buffer.byteLength(content) });
  const changesAfterFirst = table.changes.length;
  const second = await deliver(afterInsert);

  expect(second.response.batchItemFailures).toEqual([]);
  const item = ledgerItem();
  expect(item.Status).toBe(LedgerStatus.FAILED);
  expect(item.LastError).toMatch(/lists \d+ bytes but returns only \d+/);
  expect(pendingTransitions(table, changesAfterFirst)).toEqual([]);
});

test('spool files that dead invocations left behind are removed; recent ones (maybe a living pass) are kept', async () => {
  const abandoned = join(spoolDir, 'segment-0b5e7a1c-0000-4000-8000-000000000001.spool');
  const recent = join(spoolDir, 'segment-0b5e7a1c-0000-4000-8000-000000000002.spool');
  const unrelated = join(spoolDir, 'notes.txt');
  for (const path of [abandoned, recent, unrelated]) writeFileSync(path, 'spooled bytes');
  const old = (Date.now() - ABANDONED_SPOOL_AGE_MS - 60_000) / 1000;
  utimesSync(abandoned, old, old);
  utimesSync(unrelated, old, old);
  newFile(auditLines(5));

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(existsSync(abandoned)).toBe(false);
  expect(existsSync(recent)).toBe(true);
  expect(existsSync(unrelated)).toBe(true);
  for (const path of [recent, unrelated]) rmSync(path);
});
