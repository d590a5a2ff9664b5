/**
 * The downloader under test and its world: the handler module loaded with the test environment, and
 * every SDK client it uses answered by in-memory fakes (RDS log APIs, the ledger, the idempotency
 * table, the bucket). Other code under test (the verifier, the reconciler) reaches the same fakes
 * through its own clients of the same SDK classes. A test file imports this before anything else that loads the handler, calls
 * `resetDownloaderWorld()` in beforeEach and `expectNoSpoolLeft()` in afterEach.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeDBLogFilesCommand,
  DownloadDBLogFilePortionCommand,
  type DownloadDBLogFilePortionCommandInput,
  RDSClient,
} from '@aws-sdk/client-rds';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import {
  IDEMPOTENCY_KEY,
  LEDGER_KEY,
  type LedgerItem,
  logFilePrefix,
  parseSegmentObjectKey,
  segmentObjectKey,
} from '../../../lambda/shared/contract';
import { FakeTable, type Item } from './fake-dynamodb';
import { FakeRds } from './fake-rds';
import { FakeBucket, fakeContext, pendingLedgerItem, pendingTransitions, setLambdaEnv, streamEvent } from './lambda-harness';

export const MAX_OBJECT_BYTES = 4096;
export const SAFETY_MARGIN_MS = 10_000;
export const INSTANCE = 'aurora-reader-1';
export const FILE = 'audit/audit.log.2.2024-01-04-08-30.0';
export const spoolDir = mkdtempSync(join(tmpdir(), 'downloader-spool-'));

setLambdaEnv({
  MAX_OBJECT_BYTES: String(MAX_OBJECT_BYTES),
  DOWNLOAD_SAFETY_MARGIN_MS: String(SAFETY_MARGIN_MS),
  SPOOL_DIR: spoolDir,
});
export const { handler } = require('../../../lambda/downloader') as typeof import('../../../lambda/downloader');

export const rds = mockClient(RDSClient);
export const s3 = mockClient(S3Client);
export const ledgerClient = mockClient(DynamoDBDocumentClient);
export const idempotencyClient = mockClient(DynamoDBClient);

export let fakeRds: FakeRds;
export let table: FakeTable;
export let idempotency: FakeTable;
export let bucket: FakeBucket;
export const hooks: {
  /** Runs before each DownloadDBLogFilePortion is answered: lets a test change the world mid-download. */
  beforeDownload?: (input: DownloadDBLogFilePortionCommandInput) => void;
} = {};

export function resetDownloaderWorld(): void {
  for (const mock of [rds, s3, ledgerClient, idempotencyClient]) mock.reset();
  fakeRds = new FakeRds({ pageLimit: 1024 });
  table = new FakeTable(LEDGER_KEY.partitionKey, LEDGER_KEY.sortKey);
  idempotency = new FakeTable(IDEMPOTENCY_KEY.partitionKey);
  bucket = new FakeBucket();
  hooks.beforeDownload = undefined;
  rds.on(DownloadDBLogFilePortionCommand).callsFake((input) => {
    hooks.beforeDownload?.(input);
    return fakeRds.downloadDBLogFilePortion(input);
  });
  rds.on(DescribeDBLogFilesCommand).callsFake((input) => fakeRds.describeDBLogFiles(input));
  s3.on(PutObjectCommand).callsFake((input) => bucket.putObject(input));
  s3.on(HeadObjectCommand).callsFake((input) => bucket.headObject(input));
  s3.on(GetObjectCommand).callsFake((input) => bucket.getObject(input));
  s3.on(ListObjectsV2Command).callsFake((input) => bucket.listObjectsV2(input));
  table.serveDocumentClient(ledgerClient);
  idempotency.serveLowLevelClient(idempotencyClient);
}

/** Every pass removes its spool file, whatever happened. */
export function expectNoSpoolLeft(): void {
  expect(readdirSync(spoolDir)).toEqual([]);
}

export function ledgerKey(file = FILE): Item {
  return { [LEDGER_KEY.partitionKey]: INSTANCE, [LEDGER_KEY.sortKey]: file };
}

export function ledgerItem(file = FILE): LedgerItem {
  const found = table.item(ledgerKey(file));
  if (!found) throw new Error(`no ledger item for ${file}`);
  return found as unknown as LedgerItem;
}

/** What the detector does for a new file: RDS has it, the ledger gets a PENDING item (a stream INSERT). */
export function newFile(content: string, file = FILE, overrides: Partial<LedgerItem> = {}): void {
  fakeRds.writeFile(INSTANCE, file, content, 1_700_000_000_000);
  const item = pendingLedgerItem(INSTANCE, file, { Size: Buffer.byteLength(content), LastWritten: 1_700_000_000_000, Attempts: 0, ...overrides });
  table.put({ TableName: 'ledger', Item: item as unknown as Item });
}

/** Invokes the downloader with the stream records for the ledger's transitions into PENDING since `from`. */
export async function deliver(from: number, remainingMs?: () => number, requestId?: string) {
  const records = pendingTransitions(table, from);
  expect(records.length).toBeGreaterThan(0);
  const response = await handler(streamEvent(records), fakeContext(remainingMs, requestId));
  return { response, records };
}

/** The objects under the file's prefix run from 0 to `size` without gap or overlap; returns their keys. */
export function expectContiguousObjects(file: string, size: number): string[] {
  const keys = bucket.keys(logFilePrefix(INSTANCE, file));
  let expectedStart = 0;
  for (const key of keys) {
    const parsed = parseSegmentObjectKey(key);
    expect(parsed?.start).toBe(expectedStart);
    expectedStart = parsed?.end ?? -1;
  }
  expect(expectedStart).toBe(size);
  return keys;
}

/** The verifier's rule: the objects under the file's prefix are exactly the ledger's Segments. */
export function expectObjectsAreSegments(file = FILE): void {
  const segments = ledgerItem(file).Segments ?? [];
  expect(bucket.keys(logFilePrefix(INSTANCE, file))).toEqual(
    segments.map((s) => segmentObjectKey(INSTANCE, file, s.Start, s.End)),
  );
  expect(segments.map((s) => s.Sha256)).toEqual(
    segments.map((s) => bucket.objects.get(segmentObjectKey(INSTANCE, file, s.Start, s.End))?.checksumSha256),
  );
}
