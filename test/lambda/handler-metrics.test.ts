/**
 * The metrics each handler publishes, read from the Embedded Metric Format lines Powertools prints:
 * names from the contract, units, the namespace, and `service` (POWERTOOLS_SERVICE_NAME) as the only
 * dimension, because the alarms and the dashboard read exactly those series. Every invocation flushes
 * what it recorded, also when it fails.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeDBClusterParametersCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBLogFilesCommand,
  DownloadDBLogFilePortionCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { IDEMPOTENCY_KEY, LEDGER_KEY, LedgerStatus, METRICS, type LedgerItem } from '../../lambda/shared/contract';
import { EmfCapture } from './support/emf';
import { FakeTable, type Item } from './support/fake-dynamodb';
import { FakeRds, auditLines } from './support/fake-rds';
import { FakeBucket, fakeContext, pendingLedgerItem, pendingTransitions, setLambdaEnv, sqsEvent, streamEvent } from './support/lambda-harness';

const SERVICE = 'audit-log-under-test';
setLambdaEnv({
  POWERTOOLS_METRICS_DISABLED: 'false',
  POWERTOOLS_SERVICE_NAME: SERVICE,
  SPOOL_DIR: mkdtempSync(join(tmpdir(), 'metrics-spool-')),
});
const scanner = require('../../lambda/scanner') as typeof import('../../lambda/scanner');
const detector = require('../../lambda/detector') as typeof import('../../lambda/detector');
const downloader = require('../../lambda/downloader') as typeof import('../../lambda/downloader');

const INSTANCE = 'aurora-writer-1';
const FILE = 'audit/audit.log.0.2024-01-04-08-30.0';
const MINUTE = 60_000;

const rds = mockClient(RDSClient);
const sqs = mockClient(SQSClient);
const s3 = mockClient(S3Client);
const ledgerClient = mockClient(DynamoDBDocumentClient);
const idempotencyClient = mockClient(DynamoDBClient);
let fakeRds: FakeRds;
let table: FakeTable;
let idempotency: FakeTable;
let bucket: FakeBucket;
let emf: EmfCapture;

beforeEach(() => {
  for (const mock of [rds, sqs, s3, ledgerClient, idempotencyClient]) mock.reset();
  fakeRds = new FakeRds();
  table = new FakeTable(LEDGER_KEY.partitionKey, LEDGER_KEY.sortKey);
  idempotency = new FakeTable(IDEMPOTENCY_KEY.partitionKey);
  bucket = new FakeBucket();
  rds.on(DescribeDBLogFilesCommand).callsFake((input) => fakeRds.describeDBLogFiles(input));
  rds.on(DownloadDBLogFilePortionCommand).callsFake((input) => fakeRds.downloadDBLogFilePortion(input));
  s3.on(PutObjectCommand).callsFake((input) => bucket.putObject(input));
  s3.on(HeadObjectCommand).callsFake((input) => bucket.headObject(input));
  table.serveDocumentClient(ledgerClient);
  idempotency.serveLowLevelClient(idempotencyClient);
  emf = new EmfCapture();
});

afterEach(() => {
  emf.restore();
  jest.restoreAllMocks();
});

function seed(fields: Partial<LedgerItem>, file = FILE): void {
  table.put({ TableName: 'ledger', Item: pendingLedgerItem(INSTANCE, file, fields) as unknown as Item });
}

/** Every metric of the flush is in the contract's namespace with `service` as its only dimension. */
function expectPublishedAs(name: string, unit: string): void {
  const definitions = emf.definitions(name);
  expect(definitions.length).toBeGreaterThan(0);
  for (const definition of definitions) {
    expect(definition).toEqual({
      unit,
      namespace: METRICS.namespace,
      dimensions: [['service']],
      dimensionValues: { service: SERVICE },
    });
  }
}

describe('downloader', () => {
  test('a file backed up: BytesBackedUp, FilesBackedUp, PortionCalls and ThrottleRetries, one flush', async () => {
    const content = auditLines(40);
    fakeRds.writeFile(INSTANCE, FILE, content);
    seed({ Size: Buffer.byteLength(content) });

    await downloader.handler(streamEvent(pendingTransitions(table)), fakeContext());

    expect(emf.blobs).toHaveLength(1);
    expect(emf.values(METRICS.bytesBackedUp)).toEqual([Buffer.byteLength(content)]);
    expectPublishedAs(METRICS.bytesBackedUp, 'Bytes');
    expect(emf.values(METRICS.filesBackedUp)).toEqual([1]);
    expectPublishedAs(METRICS.filesBackedUp, 'Count');
    expect(emf.values(METRICS.portionCalls)).toEqual([fakeRds.downloads.length]);
    expectPublishedAs(METRICS.portionCalls, 'Count');
    expect(emf.values(METRICS.throttleRetries)).toEqual([0]);
    expectPublishedAs(METRICS.throttleRetries, 'Count');
    expect(emf.values(METRICS.lostLogFiles)).toEqual([]);
  });

  test('a file RDS no longer has: LostLogFiles', async () => {
    seed({ Size: 500 });

    await downloader.handler(streamEvent(pendingTransitions(table)), fakeContext());

    expect(emf.values(METRICS.lostLogFiles)).toEqual([1]);
    expectPublishedAs(METRICS.lostLogFiles, 'Count');
    expect(emf.values(METRICS.filesBackedUp)).toEqual([]);
  });

  test('a failing pass: FailedLogFiles is flushed although the invocation fails', async () => {
    const content = auditLines(10);
    fakeRds.writeFile(INSTANCE, FILE, content);
    seed({ Size: Buffer.byteLength(content) });
    s3.on(PutObjectCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));

    await expect(downloader.handler(streamEvent(pendingTransitions(table)), fakeContext())).rejects.toThrow();

    expect(emf.values(METRICS.failedLogFiles)).toEqual([1]);
    expectPublishedAs(METRICS.failedLogFiles, 'Count');
    expect(emf.values(METRICS.throttleRetries)).toEqual([0]);
  });
});

describe('detector', () => {
  test('BackupLagSeconds per instance, dated by the listing that first showed the oldest unstored byte', async () => {
    const now = Date.now();
    const old = auditLines(10);
    // Stored up to 300 bytes; RDS first listed bytes beyond them 40 minutes ago, and more since.
    fakeRds.writeFile(INSTANCE, FILE, old, now - 5 * MINUTE);
    seed({
      Size: 400,
      LastWritten: now - 10 * MINUTE,
      BackedUpBytes: 300,
      Status: LedgerStatus.PENDING,
      SizeHistory: [
        { Size: 200, LastWritten: now - 60 * MINUTE },
        { Size: 350, LastWritten: now - 40 * MINUTE },
        { Size: 400, LastWritten: now - 10 * MINUTE },
      ],
    });
    // An idle file, all stored, that just grew: its new bytes are minutes old, not hours.
    const idle = 'audit/audit.log.1.2024-01-04-08-30.0';
    fakeRds.writeFile(INSTANCE, idle, auditLines(3), now - 2 * MINUTE);
    seed({ Size: 100, LastWritten: now - 300 * MINUTE, BackedUpBytes: 100, Status: LedgerStatus.DONE }, idle);

    await detector.handler(sqsEvent([JSON.stringify({ DBInstanceIdentifier: INSTANCE, ScannedAt: now })]), fakeContext());

    const [lag] = emf.values(METRICS.backupLagSeconds);
    expect(emf.values(METRICS.backupLagSeconds)).toHaveLength(1);
    // 40 minutes, plus the second or so the test took.
    expect(lag).toBeGreaterThanOrEqual(40 * 60);
    expect(lag).toBeLessThan(40 * 60 + 5);
    expectPublishedAs(METRICS.backupLagSeconds, 'Seconds');
    expect(emf.values(METRICS.throttleRetries)).toEqual([0]);
    expect(emf.values(METRICS.lostLogFiles)).toEqual([]);
  });

  test('everything stored: BackupLagSeconds 0; a file gone before it was stored: LostLogFiles', async () => {
    const content = auditLines(5);
    fakeRds.writeFile(INSTANCE, FILE, content);
    seed({ Size: Buffer.byteLength(content), LastWritten: 1_700_000_000_000, BackedUpBytes: Buffer.byteLength(content), Status: LedgerStatus.DONE });
    seed({ Size: 900, Status: LedgerStatus.FAILED, StatusChangedAt: 0 }, 'audit/audit.log.3.2024-01-03-08-30.0');

    await detector.handler(sqsEvent([JSON.stringify({ DBInstanceIdentifier: INSTANCE, ScannedAt: Date.now() })]), fakeContext());

    expect(emf.values(METRICS.backupLagSeconds)).toEqual([0]);
    expect(emf.values(METRICS.lostLogFiles)).toEqual([1]);
    expectPublishedAs(METRICS.lostLogFiles, 'Count');
  });
});

describe('scanner', () => {
  test('InstancesScanned and ThrottleRetries', async () => {
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        { DBInstanceIdentifier: 'writer', DBClusterIdentifier: 'cluster', Engine: 'aurora-mysql' },
        { DBInstanceIdentifier: 'reader', DBClusterIdentifier: 'cluster', Engine: 'aurora-mysql' },
      ],
    });
    rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [{ DBClusterIdentifier: 'cluster', DBClusterParameterGroup: 'audit' }] });
    rds.on(DescribeDBClusterParametersCommand).resolves({ Parameters: [{ ParameterName: 'server_audit_logging', ParameterValue: '1' }] });
    sqs.on(SendMessageBatchCommand).callsFake((input) => ({
      Successful: (input.Entries ?? []).map((entry: { Id: string }) => ({ Id: entry.Id, MessageId: entry.Id, MD5OfMessageBody: 'x' })),
      Failed: [],
    }));

    await scanner.handler({}, fakeContext());

    expect(emf.values(METRICS.instancesScanned)).toEqual([2]);
    expectPublishedAs(METRICS.instancesScanned, 'Count');
    expect(emf.values(METRICS.throttleRetries)).toEqual([0]);
    expectPublishedAs(METRICS.throttleRetries, 'Count');
  });
});
