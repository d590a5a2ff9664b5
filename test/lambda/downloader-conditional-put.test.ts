/**
 * Conditional PUTs (If-None-Match: *): an object is never replaced, not even when a holder judged dead
 * lands its PUT after the next holder dropped that holder's intent (HEAD found nothing yet) and is
 * storing the same range itself. S3 refuses the second PUT with 412; the object found there is settled
 * like an intent: the same bytes are adopted, other bytes make the file FAILED, untouched.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import 'aws-sdk-client-mock-jest';
import {
  FILE,
  INSTANCE,
  bucket,
  deliver,
  expectContiguousObjects,
  expectNoSpoolLeft,
  expectObjectsAreSegments,
  ledgerItem,
  newFile,
  resetDownloaderWorld,
  s3,
} from './support/downloader-world';
import { LedgerStatus, segmentObjectKey } from '../../lambda/shared/contract';
import { auditLines } from './support/fake-rds';
import { sha256Base64 } from './support/lambda-harness';

beforeEach(() => resetDownloaderWorld());
afterEach(() => expectNoSpoolLeft());

/** A dead holder's PUT of `body` to `key` lands just before this pass's own PUT of that key. */
function latePutLandsFirst(key: string, body: string): void {
  bucket.beforeCommit = (putKey) => {
    if (putKey !== key || bucket.objects.has(key)) return;
    bucket.seed(key, body);
  };
}

test('every segment PUT is conditional: If-None-Match * with the SHA-256 S3 verifies', async () => {
  const content = auditLines(30);
  newFile(content);

  await deliver(0);

  expect(s3).toHaveReceivedCommandWith(PutObjectCommand, {
    IfNoneMatch: '*',
    ChecksumAlgorithm: 'SHA256',
    ChecksumSHA256: sha256Base64(content),
  });
});

test('a late PUT of the same bytes: S3 refuses ours (412), the object is adopted and the file is DONE', async () => {
  const content = auditLines(30);
  const size = Buffer.byteLength(content);
  const key = segmentObjectKey(INSTANCE, FILE, 0, size);
  newFile(content);
  latePutLandsFirst(key, content);

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(bucket.refusedPuts).toEqual([key]);
  expect(bucket.overwrites).toEqual([]);
  expect(ledgerItem()).toMatchObject({
    Status: LedgerStatus.DONE,
    BackedUpBytes: size,
    Segments: [{ Start: 0, End: size, Sha256: sha256Base64(content) }],
  });
  expect(ledgerItem().PendingSegment).toBeUndefined();
  expectObjectsAreSegments();
  expect(bucket.concatenated(`logs/${INSTANCE}/${FILE}/`).toString()).toBe(content);
});

test('a late PUT in the middle of a multi-object file is adopted and the pass goes on', async () => {
  const content = auditLines(200);
  const size = Buffer.byteLength(content);
  newFile(content);
  // A clean run shows how the pass cuts the file (whole pages up to MAX_OBJECT_BYTES per object).
  await deliver(0);
  const firstPass = expectContiguousObjects(FILE, size);
  expect(firstPass.length).toBeGreaterThan(2);
  const second = firstPass[1];
  const secondBody = bucket.objects.get(second)?.body.toString() ?? '';

  resetDownloaderWorld();
  newFile(content);
  latePutLandsFirst(second, secondBody);
  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(bucket.refusedPuts).toEqual([second]);
  expect(bucket.overwrites).toEqual([]);
  expect(expectContiguousObjects(FILE, size)).toEqual(firstPass);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
  expectObjectsAreSegments();
  expect(bucket.concatenated(`logs/${INSTANCE}/${FILE}/`).toString()).toBe(content);
});

test('a late PUT of other bytes: FAILED with the evidence, the object untouched, the intent kept', async () => {
  const content = auditLines(30);
  const size = Buffer.byteLength(content);
  const key = segmentObjectKey(INSTANCE, FILE, 0, size);
  const other = content.replace('SELECT', 'DELETE');
  newFile(content);
  latePutLandsFirst(key, other);

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  const item = ledgerItem();
  expect(item.Status).toBe(LedgerStatus.FAILED);
  expect(item.LastError).toContain(`object ${key} exists but is not the one the ledger intended to store`);
  expect(item.LastError).toContain(`S3: ${size} bytes, SHA-256 ${sha256Base64(other)}`);
  expect(item.PendingSegment).toMatchObject({ Start: 0, End: size, Sha256: sha256Base64(content) });
  expect(item.BackedUpBytes).toBe(0);
  expect(bucket.refusedPuts).toEqual([key]);
  expect(bucket.overwrites).toEqual([]);
  expect(bucket.objects.get(key)?.body.toString()).toBe(other);
});
