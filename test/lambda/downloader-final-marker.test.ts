/**
 * RDS's last page (AdditionalDataPending false) normally carries a Marker; when one with data carries
 * none, its bytes are still stored and the checkpoint is the Marker before that page plus
 * MarkerSkipBytes. The next pass re-reads that page once, drops exactly the stored bytes and goes on:
 * across growth, hand-offs and object splits the objects concatenate to the source, with no byte twice
 * and none missing. A marker-less page with more data pending cannot be resumed from and still fails.
 */
import { DownloadDBLogFilePortionCommand, type DownloadDBLogFilePortionCommandInput } from '@aws-sdk/client-rds';
import 'aws-sdk-client-mock-jest';
import {
  FILE,
  INSTANCE,
  MAX_OBJECT_BYTES,
  SAFETY_MARGIN_MS,
  bucket,
  deliver,
  expectContiguousObjects,
  expectNoSpoolLeft,
  expectObjectsAreSegments,
  fakeRds,
  handler,
  ledgerItem,
  newFile,
  rds,
  resetDownloaderWorld,
  table,
} from './support/downloader-world';
import { runDetector } from './support/run-detector';
import { LedgerStatus, logFilePrefix, segmentObjectKey } from '../../lambda/shared/contract';
import { auditLines } from './support/fake-rds';
import { fakeContext, pendingTransitions, sha256Base64, streamEvent } from './support/lambda-harness';

const PLENTY_MS = 900_000;

beforeEach(() => {
  resetDownloaderWorld();
  fakeRds.nonEmptyFinalMarker = false;
});
afterEach(expectNoSpoolLeft);

function lastServed(): { from: number; to: number } {
  const range = fakeRds.servedRanges.at(-1);
  if (!range) throw new Error('nothing served');
  return range;
}

/** The source grows and the detector records it (DONE -> PENDING); returns where the stream resumes. */
async function grow(more: string, lastWritten: number): Promise<number> {
  fakeRds.appendFile(INSTANCE, FILE, more, lastWritten);
  const beforeDetector = table.changes.length;
  await runDetector();
  expect(ledgerItem().Status).toBe(LedgerStatus.PENDING);
  return beforeDetector;
}

/** Every byte stored once: contiguous objects equal to the source, exactly the ledger's Segments. */
function expectStoredExactly(content: string): void {
  const size = Buffer.byteLength(content);
  expectContiguousObjects(FILE, size);
  expect(bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString()).toBe(content);
  expectObjectsAreSegments();
  expect(bucket.overwrites).toEqual([]);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
  expect(ledgerItem().PendingSegment).toBeUndefined();
}

test('a last page with data but no Marker is stored; the checkpoint is the Marker before it plus its bytes', async () => {
  const content = auditLines(30);
  newFile(content);

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(fakeRds.downloads.length).toBeGreaterThan(2);
  const last = lastServed();
  expect(last.to).toBe(Buffer.byteLength(content));
  expectStoredExactly(content);
  const item = ledgerItem();
  // The Marker the last page was requested with, and that page's length.
  expect(item.Marker).toBe(fakeRds.downloads.at(-1)?.Marker);
  expect(item.Marker).toMatch(new RegExp(`:${last.from}$`));
  expect(item.MarkerSkipBytes).toBe(last.to - last.from);
});

test('a one-page file without a final Marker: the checkpoint is Marker "0" plus the whole file', async () => {
  const content = auditLines(5);
  newFile(content);

  await deliver(0);

  expect(fakeRds.downloads).toHaveLength(1);
  expectStoredExactly(content);
  expect(ledgerItem()).toMatchObject({ Marker: '0', MarkerSkipBytes: Buffer.byteLength(content) });
});

test('the file grows: the next pass re-reads that page once, drops exactly the stored bytes, and goes on', async () => {
  const content = auditLines(30);
  newFile(content);
  await deliver(0);
  const first = ledgerItem();
  const lastPage = lastServed();
  const servedBefore = fakeRds.servedRanges.length;
  const downloadsBefore = fakeRds.downloads.length;

  // 60 more lines (~6 KB): several pages and more than one object.
  const grown = content + auditLines(60, 30);
  const from = await grow(auditLines(60, 30), 1_700_000_100_000);
  await deliver(from, () => PLENTY_MS, 'grown');

  expect(fakeRds.downloads[downloadsBefore].Marker).toBe(first.Marker);
  const passTwo = fakeRds.servedRanges.slice(servedBefore);
  expect(passTwo[0].from).toBe(lastPage.from);
  for (let i = 1; i < passTwo.length; i++) expect(passTwo[i].from).toBe(passTwo[i - 1].to);
  expect(passTwo.at(-1)?.to).toBe(Buffer.byteLength(grown));
  // The marker-less page was served twice in all: when first read and once again, never more.
  expect(fakeRds.servedRanges.filter((range) => range.from === lastPage.from)).toHaveLength(2);
  // The first new object starts right after the stored bytes, and the pass split at MAX_OBJECT_BYTES.
  const newSegments = (ledgerItem().Segments ?? []).slice(first.Segments?.length);
  expect(newSegments[0].Start).toBe(first.BackedUpBytes);
  expect(newSegments.length).toBeGreaterThan(1);
  for (const s of newSegments) expect(s.End - s.Start).toBeLessThanOrEqual(MAX_OBJECT_BYTES);
  expectStoredExactly(grown);
  // The fault is still on: the new last page again left a skip.
  const afterGrowth = lastServed();
  expect(ledgerItem()).toMatchObject({ Marker: fakeRds.downloads.at(-1)?.Marker, MarkerSkipBytes: afterGrowth.to - afterGrowth.from });

  // RDS puts Markers on final pages again: the checkpoint becomes a plain Marker, the skip is removed.
  fakeRds.nonEmptyFinalMarker = true;
  const all = grown + auditLines(10, 90);
  await deliver(await grow(auditLines(10, 90), 1_700_000_200_000), () => PLENTY_MS, 'markers-back');

  expectStoredExactly(all);
  expect(ledgerItem().MarkerSkipBytes).toBeUndefined();
  expect(ledgerItem().Marker).toMatch(new RegExp(`:${Buffer.byteLength(all)}$`));
});

test('a hand-off in the pass that started with a skip checkpoints a plain Marker; the next pass completes', async () => {
  const content = auditLines(30);
  newFile(content);
  await deliver(0);
  const servedBefore = fakeRds.servedRanges.length;
  const downloadsBefore = fakeRds.downloads.length;
  const grown = content + auditLines(60, 30);
  const from = await grow(auditLines(60, 30), 1_700_000_100_000);

  // Two pages (the re-read one and the next), then the budget says stop.
  const handOffFrom = table.changes.length;
  await deliver(from, () => (fakeRds.downloads.length >= downloadsBefore + 2 ? SAFETY_MARGIN_MS - 1 : PLENTY_MS), 'short');

  const handedOff = ledgerItem();
  const readTo = lastServed().to;
  expect(handedOff).toMatchObject({ Status: LedgerStatus.PENDING, BackedUpBytes: readTo });
  expect(handedOff.Marker).toMatch(new RegExp(`:${readTo}$`));
  expect(handedOff.MarkerSkipBytes).toBeUndefined();

  await deliver(handOffFrom, () => PLENTY_MS, 'rest');

  const rest = fakeRds.servedRanges.slice(servedBefore);
  for (let i = 1; i < rest.length; i++) expect(rest[i].from).toBe(rest[i - 1].to);
  expectStoredExactly(grown);
});

test('an empty last page without a Marker: nothing to store, DONE with the checkpoint unchanged', async () => {
  const content = auditLines(20);
  const size = Buffer.byteLength(content);
  newFile(content, FILE, {
    BackedUpBytes: size,
    Marker: `41:${size}`,
    Segments: [{ Start: 0, End: size, Sha256: sha256Base64(content) }],
  });

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(fakeRds.downloads).toHaveLength(1);
  expect(bucket.puts).toBe(0);
  const item = ledgerItem();
  expect(item).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size, Marker: `41:${size}` });
  expect(item.MarkerSkipBytes).toBeUndefined();
});

test('a page with data but no Marker while more data is pending cannot be resumed from: FAILED, nothing stored', async () => {
  fakeRds.nonEmptyFinalMarker = true;
  newFile(auditLines(30));
  rds.on(DownloadDBLogFilePortionCommand).callsFake((input: DownloadDBLogFilePortionCommandInput) => {
    const page = fakeRds.downloadDBLogFilePortion(input);
    return fakeRds.downloads.length === 2 ? { ...page, Marker: undefined } : page;
  });

  await expect(handler(streamEvent(pendingTransitions(table, 0)), fakeContext())).rejects.toThrow(
    'All records failed processing',
  );

  expect(fakeRds.downloads).toHaveLength(2);
  const item = ledgerItem();
  expect(item).toMatchObject({ Status: LedgerStatus.FAILED, BackedUpBytes: 0 });
  expect(item.LastError).toMatch(/bytes without a Marker after marker \d+:\d+ with more data pending; cannot continue/);
  expect(bucket.puts).toBe(0);
});

test('a re-read that returns fewer bytes than the skip is an error, never silently accepted', async () => {
  const content = auditLines(5);
  const size = Buffer.byteLength(content);
  // The ledger stored more from Marker "0" than RDS now returns from it.
  const stored = size + 50;
  newFile(content, FILE, { Size: stored + 100, BackedUpBytes: stored, Marker: '0', MarkerSkipBytes: stored });

  await expect(handler(streamEvent(pendingTransitions(table, 0)), fakeContext())).rejects.toThrow(
    'All records failed processing',
  );

  const item = ledgerItem();
  expect(item).toMatchObject({ Status: LedgerStatus.FAILED, BackedUpBytes: stored, MarkerSkipBytes: stored });
  expect(item.LastError).toBe(
    `Error: re-reading from marker 0 + ${stored} bytes RDS returned only ${size} bytes, ` +
      `fewer than the ${stored} already stored from that Marker; the file changed under its Marker`,
  );
  expect(bucket.puts).toBe(0);
});

test('a re-read page shorter than the skip (cut back at a truncated line) moves the skip to the next Marker', async () => {
  const lines = ['aaaaaaaaa\n', 'bbbbbbbbb\n', 'ccccccccc\n', 'ddddddddd\n'];
  const source = lines.join('');
  // Three lines stored from Marker A; RDS now answers from A with one line only, then the rest.
  newFile(source, FILE, {
    BackedUpBytes: 30,
    Marker: 'A',
    MarkerSkipBytes: 30,
    Segments: [{ Start: 0, End: 30, Sha256: sha256Base64(lines.slice(0, 3).join('')) }],
  });
  const answers: Record<string, { LogFileData: string; Marker: string; AdditionalDataPending: boolean }> = {
    A: { LogFileData: lines[0], Marker: 'B', AdditionalDataPending: true },
    B: { LogFileData: lines.slice(1).join(''), Marker: 'C', AdditionalDataPending: false },
  };
  rds.on(DownloadDBLogFilePortionCommand).callsFake((input: DownloadDBLogFilePortionCommandInput) => answers[input.Marker ?? '']);

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(rds.commandCalls(DownloadDBLogFilePortionCommand).map((call) => call.args[0].input.Marker)).toEqual(['A', 'B']);
  expect(bucket.keys()).toEqual([segmentObjectKey(INSTANCE, FILE, 30, 40)]);
  expect(bucket.objects.get(segmentObjectKey(INSTANCE, FILE, 30, 40))?.body.toString()).toBe(lines[3]);
  const item = ledgerItem();
  expect(item).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: 40, Marker: 'C' });
  expect(item.MarkerSkipBytes).toBeUndefined();
});
