/**
 * ThrottleRetries through the real SDK stack: RDS is a local HTTP endpoint speaking the Query
 * protocol (reached through AWS_ENDPOINT_URL_RDS), answering with scripted statuses. Only retries
 * caused by throttling count; a throttled attempt the SDK gave up on is not a retry.
 */
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { METRICS } from '../../lambda/shared/contract';
import { ThrottleRetryCounter, isThrottlingError } from '../../lambda/shared/throttle-retries';
import { EmfCapture } from './support/emf';
import { fakeContext, REGION, setLambdaEnv } from './support/lambda-harness';
import { type QueryAnswer, type QueryEndpoint, RDS_XMLNS, rdsErrorXml, startQueryEndpoint, THROTTLING_XML } from './support/query-endpoint';

type Answer = 'throttle' | 'server-error' | 'ok';

const EMPTY_INSTANCES_BODY =
  `<DescribeDBInstancesResponse xmlns="${RDS_XMLNS}"><DescribeDBInstancesResult>` +
  '<DBInstances></DBInstances></DescribeDBInstancesResult><ResponseMetadata><RequestId>r3</RequestId>' +
  '</ResponseMetadata></DescribeDBInstancesResponse>';

const ANSWERS: Record<Answer, QueryAnswer> = {
  throttle: { status: 400, body: THROTTLING_XML },
  'server-error': { status: 500, body: rdsErrorXml('InternalFailure', 'oops', 'Receiver') },
  ok: { status: 200, body: EMPTY_INSTANCES_BODY },
};

let script: Answer[] = [];
let endpoint: QueryEndpoint;

beforeAll(async () => {
  endpoint = await startQueryEndpoint(() => ANSWERS[script.shift() ?? 'ok']);
  setLambdaEnv({ AWS_ENDPOINT_URL_RDS: endpoint.url, POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_SERVICE_NAME: 'audit-log-scanner' });
});

afterAll(async () => {
  await endpoint.close();
});

function countedClient(maxAttempts: number): { client: RDSClient; counter: ThrottleRetryCounter } {
  const client = new RDSClient({
    region: REGION,
    endpoint: endpoint.url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts,
  });
  const counter = new ThrottleRetryCounter();
  counter.attach(client);
  return { client, counter };
}

test('a throttled call retried to success counts once per throttled attempt', async () => {
  const { client, counter } = countedClient(4);
  script = ['throttle', 'throttle', 'ok'];

  await client.send(new DescribeDBInstancesCommand({}));

  expect(counter.take()).toBe(2);
  expect(counter.take()).toBe(0);
});

test('retries after server errors are not throttle retries', async () => {
  const { client, counter } = countedClient(3);
  script = ['server-error', 'ok'];

  await client.send(new DescribeDBInstancesCommand({}));

  expect(counter.take()).toBe(0);
});

test('a call the SDK gives up on while throttled: its last attempt was not retried', async () => {
  const { client, counter } = countedClient(2);
  script = ['throttle', 'throttle'];

  await expect(client.send(new DescribeDBInstancesCommand({}))).rejects.toMatchObject({ name: 'Throttling' });

  expect(counter.take()).toBe(1);
});

test('the SDK classification: names, 429 and the retryable-throttling flag', () => {
  expect(isThrottlingError(Object.assign(new Error('x'), { name: 'Throttling' }))).toBe(true);
  expect(isThrottlingError(Object.assign(new Error('x'), { name: 'Other', $metadata: { httpStatusCode: 429 } }))).toBe(true);
  expect(isThrottlingError(Object.assign(new Error('x'), { name: 'Other', $retryable: { throttling: true } }))).toBe(true);
  expect(isThrottlingError(Object.assign(new Error('x'), { name: 'InternalFailure', $metadata: { httpStatusCode: 500 } }))).toBe(false);
  expect(isThrottlingError('Throttling')).toBe(false);
});

test("the scanner's invocation publishes the throttle retries of its RDS client", async () => {
  const { handler } = require('../../lambda/scanner') as typeof import('../../lambda/scanner');
  const emf = new EmfCapture();
  try {
    script = ['throttle', 'ok'];
    await handler({}, fakeContext());
    script = ['ok'];
    await handler({}, fakeContext());
  } finally {
    emf.restore();
  }
  expect(emf.values(METRICS.throttleRetries)).toEqual([1, 0]);
});
