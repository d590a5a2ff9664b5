/**
 * Throttling goes through the real SDK stack: RDS is a local HTTP endpoint speaking the Query
 * protocol, reached only through the standard AWS_ENDPOINT_URL_RDS setting, that answers the first
 * DownloadDBLogFilePortion with `Throttling: Rate exceeded`. The client's adaptive retry must carry the
 * backup through. (aws-sdk-client-mock replaces `send` and so bypasses retries: not usable here.)
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { IDEMPOTENCY_KEY, LEDGER_KEY, LedgerStatus, segmentObjectKey } from '../../lambda/shared/contract';
import { FakeTable, type Item } from './support/fake-dynamodb';
import { auditLines } from './support/fake-rds';
import { FakeBucket, fakeContext, pendingLedgerItem, pendingTransitions, setLambdaEnv, streamEvent } from './support/lambda-harness';
import { portionResponseXml, type QueryAnswer, type QueryEndpoint, rdsErrorXml, startQueryEndpoint, THROTTLING_XML } from './support/query-endpoint';

const INSTANCE = 'aurora-writer-1';
const FILE = 'audit/audit.log.0.2024-01-04-08-30.0';
const CONTENT = auditLines(8);

const xml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

let endpoint: QueryEndpoint;
let handler: typeof import('../../lambda/downloader').handler;

function answer(params: URLSearchParams): QueryAnswer {
  if (params.get('Action') !== 'DownloadDBLogFilePortion') return { status: 400, body: rdsErrorXml('InvalidAction', 'unexpected action') };
  if (endpoint.requests.length === 1) return { status: 400, body: THROTTLING_XML };
  return {
    status: 200,
    body: portionResponseXml(`<LogFileData>${xml(CONTENT)}</LogFileData>`, {
      additionalDataPending: false,
      marker: `7:${Buffer.byteLength(CONTENT)}`,
    }),
  };
}

beforeAll(async () => {
  endpoint = await startQueryEndpoint(answer);
  setLambdaEnv({ AWS_ENDPOINT_URL_RDS: endpoint.url });
  handler = (require('../../lambda/downloader') as typeof import('../../lambda/downloader')).handler;
});

afterAll(async () => {
  await endpoint.close();
});

test('a Throttling answer is retried by the SDK and the backup completes', async () => {
  const ledger = new FakeTable(LEDGER_KEY.partitionKey, LEDGER_KEY.sortKey);
  const idempotency = new FakeTable(IDEMPOTENCY_KEY.partitionKey);
  const bucket = new FakeBucket();
  const ledgerClient = mockClient(DynamoDBDocumentClient);
  ledger.serveDocumentClient(ledgerClient);
  idempotency.serveLowLevelClient(mockClient(DynamoDBClient));
  mockClient(S3Client)
    .on(PutObjectCommand)
    .callsFake((input) => bucket.putObject(input));
  const size = Buffer.byteLength(CONTENT);
  ledger.put({ TableName: 'ledger', Item: pendingLedgerItem(INSTANCE, FILE, { Size: size, LastWritten: 1 }) as unknown as Item });

  const response = await handler(streamEvent(pendingTransitions(ledger)), fakeContext());

  expect(response.batchItemFailures).toEqual([]);
  expect(endpoint.requests).toHaveLength(2);
  for (const request of endpoint.requests) {
    expect(request.get('DBInstanceIdentifier')).toBe(INSTANCE);
    expect(request.get('LogFileName')).toBe(FILE);
    expect(request.get('Marker')).toBe('0');
  }
  expect(bucket.objects.get(segmentObjectKey(INSTANCE, FILE, 0, size))?.body.toString()).toBe(CONTENT);
  expect(ledger.item({ DBInstanceIdentifier: INSTANCE, LogFileName: FILE })).toMatchObject({
    Status: LedgerStatus.DONE,
    BackedUpBytes: size,
    Marker: `7:${size}`,
  });
});
