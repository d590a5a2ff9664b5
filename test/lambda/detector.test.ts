import { DescribeDBLogFilesCommand, RDSClient } from '@aws-sdk/client-rds';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { AUDIT_LOG_FILENAME_FRAGMENT, LEDGER_KEY, LedgerStatus, type LedgerItem } from '../../lambda/shared/contract';
import { FakeTable, type Item } from './support/fake-dynamodb';
import { FakeRds, auditLines } from './support/fake-rds';
import { fakeContext, pendingLedgerItem, setLambdaEnv, sqsEvent } from './support/lambda-harness';

const MINUTE = 60_000;
setLambdaEnv({ STALE_CLAIM_MS: String(45 * MINUTE), FAILED_RETRY_BACKOFF_MS: String(5 * MINUTE) });
const { handler } = require('../../lambda/detector') as typeof import('../../lambda/detector');

const rds = mockClient(RDSClient);
const ledgerClient = mockClient(DynamoDBDocumentClient);
let fakeRds: FakeRds;
let table: FakeTable;

const INSTANCE = 'aurora-writer-1';
const scanBody = (instance = INSTANCE) => JSON.stringify({ DBInstanceIdentifier: instance, ScannedAt: Date.now() });

beforeEach(() => {
  rds.reset();
  ledgerClient.reset();
  fakeRds = new FakeRds({ describePageSize: 2 });
  // Two items per Query page, so the ledger read is paginated too.
  table = new FakeTable(LEDGER_KEY.partitionKey, LEDGER_KEY.sortKey, 2);
  rds.on(DescribeDBLogFilesCommand).callsFake((input) => fakeRds.describeDBLogFiles(input));
  table.serveDocumentClient(ledgerClient);
});

function item(file: string): LedgerItem {
  const found = table.item({ [LEDGER_KEY.partitionKey]: INSTANCE, [LEDGER_KEY.sortKey]: file });
  if (!found) throw new Error(`no ledger item for ${file}`);
  return found as unknown as LedgerItem;
}

function seed(file: string, fields: Partial<LedgerItem>): void {
  table.seed(pendingLedgerItem(INSTANCE, file, fields) as unknown as Item);
}

/** A file RDS lists with the given size (audit lines padded to exactly that many bytes). */
function listFile(file: string, size: number, lastWritten: number): void {
  const text = auditLines(Math.ceil(size / 50) + 1).slice(0, size);
  fakeRds.writeFile(INSTANCE, file, text, lastWritten);
}

test('new audit files become PENDING items; log files and ledger items are read across pages', async () => {
  listFile('audit/audit.log.0.2024-01-04-08-30.0', 300, 1000);
  listFile('audit/audit.log.1.2024-01-04-08-30.0', 200, 2000);
  listFile('audit/audit.log.2.2024-01-04-08-30.0', 100, 3000);
  seed('audit/audit.log.9.2024-01-03-08-30.0', { Status: LedgerStatus.DONE, Size: 10, BackedUpBytes: 10 });
  seed('audit/audit.log.8.2024-01-03-08-30.0', { Status: LedgerStatus.DONE, Size: 10, BackedUpBytes: 10 });
  seed('audit/audit.log.7.2024-01-03-08-30.0', { Status: LedgerStatus.DONE, Size: 10, BackedUpBytes: 10 });

  const response = await handler(sqsEvent([scanBody()]), fakeContext());

  expect(response.batchItemFailures).toEqual([]);
  expect(rds).toHaveReceivedCommandTimes(DescribeDBLogFilesCommand, 2);
  expect(rds).toHaveReceivedCommandWith(DescribeDBLogFilesCommand, {
    DBInstanceIdentifier: INSTANCE,
    FilenameContains: AUDIT_LOG_FILENAME_FRAGMENT,
  });
  expect(ledgerClient).toHaveReceivedCommandTimes(QueryCommand, 2);
  expect(item('audit/audit.log.0.2024-01-04-08-30.0')).toEqual({
    DBInstanceIdentifier: INSTANCE,
    LogFileName: 'audit/audit.log.0.2024-01-04-08-30.0',
    Size: 300,
    LastWritten: 1000,
    Status: LedgerStatus.PENDING,
    StatusChangedAt: expect.any(Number),
    BackedUpBytes: 0,
    Attempts: 0,
    // The first listing with unstored bytes dates them for the backup lag.
    SizeHistory: [{ Size: 300, LastWritten: 1000 }],
  });
  expect(item('audit/audit.log.2.2024-01-04-08-30.0')).toMatchObject({ Size: 100, Status: LedgerStatus.PENDING });
  // The old DONE files are no longer listed: DONE stays DONE, no write.
  expect(ledgerClient).toHaveReceivedCommandTimes(PutCommand, 3);
  expect(ledgerClient).not.toHaveReceivedCommand(UpdateCommand);
});

test('an unchanged file causes no ledger write at all, whatever its status', async () => {
  const now = Date.now();
  const files = {
    'audit/a': LedgerStatus.DONE,
    'audit/b': LedgerStatus.PENDING,
    'audit/c': LedgerStatus.IN_PROGRESS,
    'audit/d': LedgerStatus.FAILED,
  };
  for (const [file, status] of Object.entries(files)) {
    listFile(file, 120, 5000);
    seed(file, {
      Size: 120,
      LastWritten: 5000,
      Status: status,
      StatusChangedAt: now - MINUTE,
      BackedUpBytes: status === LedgerStatus.DONE ? 120 : 0,
      Attempts: 1,
      ClaimToken: status === LedgerStatus.IN_PROGRESS ? 'token' : undefined,
    });
  }
  const before = JSON.stringify([...table.items.values()]);

  const response = await handler(sqsEvent([scanBody()]), fakeContext());

  expect(response.batchItemFailures).toEqual([]);
  expect(table.writeAttempts).toBe(0);
  expect(ledgerClient).not.toHaveReceivedCommand(PutCommand);
  expect(ledgerClient).not.toHaveReceivedCommand(UpdateCommand);
  expect(JSON.stringify([...table.items.values()])).toBe(before);
});

test('growth: a DONE file goes back to PENDING; an IN_PROGRESS file only learns its new size', async () => {
  const changedAt = Date.now() - MINUTE;
  listFile('audit/done', 500, 9000);
  seed('audit/done', { Size: 300, LastWritten: 8000, Status: LedgerStatus.DONE, BackedUpBytes: 300, StatusChangedAt: changedAt });
  listFile('audit/busy', 700, 9000);
  seed('audit/busy', {
    Size: 400,
    LastWritten: 8000,
    Status: LedgerStatus.IN_PROGRESS,
    ClaimToken: 'holder',
    BackedUpBytes: 100,
    StatusChangedAt: changedAt,
  });

  await handler(sqsEvent([scanBody()]), fakeContext());

  expect(item('audit/done')).toMatchObject({ Size: 500, LastWritten: 9000, Status: LedgerStatus.PENDING, BackedUpBytes: 300 });
  expect(item('audit/done').StatusChangedAt).toBeGreaterThan(changedAt);
  expect(item('audit/busy')).toMatchObject({
    Size: 700,
    LastWritten: 9000,
    Status: LedgerStatus.IN_PROGRESS,
    ClaimToken: 'holder',
    StatusChangedAt: changedAt,
  });
});

test('FAILED items are re-driven once their backoff (doubling per attempt) has passed', async () => {
  const sixMinutesAgo = Date.now() - 6 * MINUTE;
  listFile('audit/first-failure', 100, 1);
  seed('audit/first-failure', { Size: 100, LastWritten: 1, Status: LedgerStatus.FAILED, Attempts: 1, StatusChangedAt: sixMinutesAgo });
  listFile('audit/third-failure', 100, 1);
  seed('audit/third-failure', { Size: 100, LastWritten: 1, Status: LedgerStatus.FAILED, Attempts: 3, StatusChangedAt: sixMinutesAgo });

  await handler(sqsEvent([scanBody()]), fakeContext());

  expect(item('audit/first-failure').Status).toBe(LedgerStatus.PENDING);
  expect(item('audit/third-failure').Status).toBe(LedgerStatus.FAILED); // waits 20 minutes
  expect(table.writeAttempts).toBe(1);
});

test('a stale IN_PROGRESS claim returns to PENDING and the claim token is dropped', async () => {
  listFile('audit/stale', 100, 1);
  seed('audit/stale', {
    Size: 100,
    LastWritten: 1,
    Status: LedgerStatus.IN_PROGRESS,
    ClaimToken: 'dead-invocation',
    StatusChangedAt: Date.now() - 46 * MINUTE,
  });

  await handler(sqsEvent([scanBody()]), fakeContext());

  const reclaimed = item('audit/stale');
  expect(reclaimed.Status).toBe(LedgerStatus.PENDING);
  expect(reclaimed.ClaimToken).toBeUndefined();
});

test('an open intent (PendingSegment) survives the stale-claim reset for the next holder to settle', async () => {
  const intent = { Start: 40, End: 100, Sha256: 'c2hhMjU2', Marker: '7:100' };
  listFile('audit/died-mid-store', 150, 2);
  seed('audit/died-mid-store', {
    Size: 100,
    LastWritten: 1,
    Status: LedgerStatus.IN_PROGRESS,
    ClaimToken: 'dead-invocation',
    StatusChangedAt: Date.now() - 46 * MINUTE,
    BackedUpBytes: 40,
    PendingSegment: intent,
  });

  await handler(sqsEvent([scanBody()]), fakeContext());

  const reclaimed = item('audit/died-mid-store');
  expect(reclaimed).toMatchObject({ Status: LedgerStatus.PENDING, Size: 150, BackedUpBytes: 40, PendingSegment: intent });
  expect(reclaimed.ClaimToken).toBeUndefined();
});

test('a file RDS no longer lists with an open intent goes back to PENDING, never straight to DONE or LOST', async () => {
  const intent = { Start: 0, End: 900, Sha256: 'c2hhMjU2', Marker: '3:900' };
  const longAgo = Date.now() - 46 * MINUTE;
  // Only a downloader can tell whether the intended object is in S3: DONE or LOST now could leave an
  // object that no segment records.
  seed('audit/stale-claim', { Size: 900, Status: LedgerStatus.IN_PROGRESS, ClaimToken: 'dead', StatusChangedAt: longAgo, PendingSegment: intent });
  seed('audit/failed-due', { Size: 900, Status: LedgerStatus.FAILED, Attempts: 1, StatusChangedAt: longAgo, PendingSegment: intent });
  seed('audit/failed-waiting', { Size: 900, Status: LedgerStatus.FAILED, Attempts: 1, StatusChangedAt: Date.now() - MINUTE, PendingSegment: intent });
  seed('audit/pending', { Size: 900, Status: LedgerStatus.PENDING, StatusChangedAt: longAgo, PendingSegment: intent });
  fakeRds.addInstance(INSTANCE);

  const response = await handler(sqsEvent([scanBody()]), fakeContext());

  expect(response.batchItemFailures).toEqual([]);
  expect(item('audit/stale-claim')).toMatchObject({ Status: LedgerStatus.PENDING, PendingSegment: intent });
  expect(item('audit/stale-claim').ClaimToken).toBeUndefined();
  expect(item('audit/failed-due')).toMatchObject({ Status: LedgerStatus.PENDING, PendingSegment: intent });
  // The FAILED backoff still applies (a conflicting object would otherwise fail on every scan).
  expect(item('audit/failed-waiting').Status).toBe(LedgerStatus.FAILED);
  // Already waiting for the downloader: no write.
  expect(item('audit/pending').Status).toBe(LedgerStatus.PENDING);
  expect(table.writeAttempts).toBe(2);
});

test('files RDS no longer lists become LOST unless fully backed up; never silently', async () => {
  listFile('audit/still-there', 100, 1);
  seed('audit/still-there', { Size: 100, LastWritten: 1, Status: LedgerStatus.DONE, BackedUpBytes: 100 });
  seed('audit/vanished-pending', { Size: 900, Status: LedgerStatus.PENDING, BackedUpBytes: 400 });
  seed('audit/vanished-failed-complete', { Size: 900, Status: LedgerStatus.FAILED, BackedUpBytes: 900 });
  seed('audit/vanished-done', { Size: 900, Status: LedgerStatus.DONE, BackedUpBytes: 900 });
  seed('audit/vanished-busy', { Size: 900, Status: LedgerStatus.IN_PROGRESS, ClaimToken: 'live', BackedUpBytes: 10 });

  const response = await handler(sqsEvent([scanBody()]), fakeContext());

  expect(response.batchItemFailures).toEqual([]);
  const lost = item('audit/vanished-pending');
  expect(lost.Status).toBe(LedgerStatus.LOST);
  expect(lost.LastError).toMatch(/no longer lists.*400-900/);
  expect(item('audit/vanished-failed-complete').Status).toBe(LedgerStatus.DONE);
  expect(item('audit/vanished-done').Status).toBe(LedgerStatus.DONE);
  // A live claim holder meets the missing file itself.
  expect(item('audit/vanished-busy').Status).toBe(LedgerStatus.IN_PROGRESS);
  expect(table.writeAttempts).toBe(2);
});

test('a LOST file that RDS lists again is backed up again', async () => {
  listFile('audit/back', 300, 7);
  seed('audit/back', { Size: 300, LastWritten: 7, Status: LedgerStatus.LOST, BackedUpBytes: 100, LastError: 'gone' });

  await handler(sqsEvent([scanBody()]), fakeContext());

  expect(item('audit/back').Status).toBe(LedgerStatus.PENDING);
});

test('DBInstanceNotFound: the instance is gone, its unfinished files are LOST and the record succeeds', async () => {
  seed('audit/partial', { Size: 500, Status: LedgerStatus.FAILED, BackedUpBytes: 200 });
  seed('audit/complete', { Size: 500, Status: LedgerStatus.DONE, BackedUpBytes: 500 });

  const response = await handler(sqsEvent([scanBody()]), fakeContext());

  expect(response.batchItemFailures).toEqual([]);
  expect(item('audit/partial').Status).toBe(LedgerStatus.LOST);
  expect(item('audit/partial').LastError).toMatch(/instance no longer exists/);
  expect(item('audit/complete').Status).toBe(LedgerStatus.DONE);
});

test('a malformed SQS body fails only its own record', async () => {
  listFile('audit/a', 100, 1);
  const event = sqsEvent(['not json', scanBody(), JSON.stringify({ DBInstanceIdentifier: 42, ScannedAt: 1 })]);

  const response = await handler(event, fakeContext());

  expect(response.batchItemFailures).toEqual([
    { itemIdentifier: event.Records[0].messageId },
    { itemIdentifier: event.Records[2].messageId },
  ]);
  expect(item('audit/a').Status).toBe(LedgerStatus.PENDING);
});

test('a concurrent claim between read and write is re-read and re-evaluated, not overwritten', async () => {
  const changedAt = Date.now() - MINUTE;
  listFile('audit/raced', 800, 20);
  seed('audit/raced', { Size: 500, LastWritten: 10, Status: LedgerStatus.PENDING, StatusChangedAt: changedAt });
  let raced = false;
  table.beforeWrite = () => {
    if (raced) return;
    raced = true;
    // The downloader claims the item after the detector read it.
    seed('audit/raced', {
      Size: 500,
      LastWritten: 10,
      Status: LedgerStatus.IN_PROGRESS,
      ClaimToken: 'downloader',
      StatusChangedAt: changedAt + 1,
      Attempts: 1,
    });
  };

  const response = await handler(sqsEvent([scanBody()]), fakeContext());

  expect(response.batchItemFailures).toEqual([]);
  expect(ledgerClient).toHaveReceivedCommandTimes(GetCommand, 1);
  expect(item('audit/raced')).toMatchObject({
    Size: 800,
    LastWritten: 20,
    Status: LedgerStatus.IN_PROGRESS,
    ClaimToken: 'downloader',
    Attempts: 1,
  });
});

test('two detectors creating the same item: the loser re-reads and records only growth', async () => {
  listFile('audit/new', 640, 30);
  let raced = false;
  table.beforeWrite = () => {
    if (raced) return;
    raced = true;
    seed('audit/new', { Size: 600, LastWritten: 29, Status: LedgerStatus.PENDING, StatusChangedAt: Date.now() - 1 });
  };

  await handler(sqsEvent([scanBody()]), fakeContext());

  expect(item('audit/new')).toMatchObject({ Size: 640, LastWritten: 30, Status: LedgerStatus.PENDING });
});
