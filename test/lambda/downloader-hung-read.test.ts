/**
 * A page request that RDS never answers (a silent connection) must not hold the claim until Lambda
 * kills the invocation: the read is given up when only the time storing needs is left, what was read
 * is stored and checkpointed, and the file is handed back as PENDING. Real SDK stack over loopback
 * HTTP, as a mocked `send` could not hang.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { ENV, IDEMPOTENCY_KEY, LEDGER_KEY, LedgerStatus, segmentObjectKey } from '../../lambda/shared/contract';
import { FakeTable, type Item } from './support/fake-dynamodb';
import { auditLines } from './support/fake-rds';
import { FakeBucket, fakeContext, pendingLedgerItem, pendingTransitions, setLambdaEnv, streamEvent } from './support/lambda-harness';
import { NO_ANSWER, portionResponseXml, type QueryEndpoint, rdsErrorXml, startQueryEndpoint } from './support/query-endpoint';

const INSTANCE = 'aurora-writer-1';
const FILE = 'audit/audit.log.0.2024-01-04-08-30.0';
const FIRST_PAGE = auditLines(8);
const SAFETY_MARGIN_MS = 1000;
/** Time the invocation has beyond its safety margin: all the hung read may use. */
const READ_ALLOWANCE_MS = 500;

let endpoint: QueryEndpoint;
let handler: typeof import('../../lambda/downloader').handler;

beforeAll(async () => {
  endpoint = await startQueryEndpoint((params) => {
    if (params.get('Action') !== 'DownloadDBLogFilePortion') return { status: 400, body: rdsErrorXml('InvalidAction', 'unexpected action') };
    if (params.get('Marker') !== '0') return NO_ANSWER;
    return {
      status: 200,
      body: portionResponseXml(`<LogFileData>${FIRST_PAGE}</LogFileData>`, { additionalDataPending: true, marker: `7:${Buffer.byteLength(FIRST_PAGE)}` }),
    };
  });
  setLambdaEnv({ AWS_ENDPOINT_URL_RDS: endpoint.url, [ENV.safetyMarginMs]: String(SAFETY_MARGIN_MS) });
  handler = (require('../../lambda/downloader') as typeof import('../../lambda/downloader')).handler;
});

afterAll(async () => {
  await endpoint.close();
});

test('a page request that is never answered is given up in time: what was read is stored and the file handed off', async () => {
  const ledger = new FakeTable(LEDGER_KEY.partitionKey, LEDGER_KEY.sortKey);
  const bucket = new FakeBucket();
  ledger.serveDocumentClient(mockClient(DynamoDBDocumentClient));
  new FakeTable(IDEMPOTENCY_KEY.partitionKey).serveLowLevelClient(mockClient(DynamoDBClient));
  mockClient(S3Client)
    .on(PutObjectCommand)
    .callsFake((input) => bucket.putObject(input));
  const firstPageBytes = Buffer.byteLength(FIRST_PAGE);
  ledger.put({ TableName: 'ledger', Item: pendingLedgerItem(INSTANCE, FILE, { Size: 10 * firstPageBytes, LastWritten: 1 }) as unknown as Item });
  const endsAt = Date.now() + SAFETY_MARGIN_MS + READ_ALLOWANCE_MS;

  const response = await handler(streamEvent(pendingTransitions(ledger)), fakeContext(() => endsAt - Date.now()));

  // Given up inside the safety margin (an ordinary read may run into it), yet early enough that the
  // store and the hand-off finished before the invocation's time was up.
  const left = endsAt - Date.now();
  expect(left).toBeGreaterThan(0);
  expect(left).toBeLessThan(SAFETY_MARGIN_MS);
  expect(response.batchItemFailures).toEqual([]);
  expect(endpoint.requests.map((request) => request.get('Marker'))).toEqual(['0', `7:${firstPageBytes}`]);
  expect(bucket.objects.get(segmentObjectKey(INSTANCE, FILE, 0, firstPageBytes))?.body.toString()).toBe(FIRST_PAGE);
  expect(ledger.item({ DBInstanceIdentifier: INSTANCE, LogFileName: FILE })).toMatchObject({
    Status: LedgerStatus.PENDING,
    BackedUpBytes: firstPageBytes,
    Marker: `7:${firstPageBytes}`,
  });
});
