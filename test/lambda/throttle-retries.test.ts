/**
 * ThrottleRetries through the real SDK stack: RDS is a local HTTP endpoint speaking the Query
 * protocol (reached through AWS_ENDPOINT_URL_RDS), answering with scripted statuses. Only retries
 * caused by throttling count; a throttled attempt the SDK gave up on is not a retry.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { METRICS } from '../../lambda/shared/contract';
import { ThrottleRetryCounter, isThrottlingError } from '../../lambda/shared/throttle-retries';
import { EmfCapture } from './support/emf';
import { fakeContext, REGION, setLambdaEnv } from './support/lambda-harness';

type Answer = 'throttle' | 'server-error' | 'ok';

const THROTTLE_BODY =
  '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type>' +
  '<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r1</RequestId></ErrorResponse>';
const SERVER_ERROR_BODY =
  '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Receiver</Type>' +
  '<Code>InternalFailure</Code><Message>oops</Message></Error><RequestId>r2</RequestId></ErrorResponse>';
const EMPTY_INSTANCES_BODY =
  '<DescribeDBInstancesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><DescribeDBInstancesResult>' +
  '<DBInstances></DBInstances></DescribeDBInstancesResult><ResponseMetadata><RequestId>r3</RequestId>' +
  '</ResponseMetadata></DescribeDBInstancesResponse>';

let script: Answer[] = [];
let server: Server;
let endpoint: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const answer = script.shift() ?? 'ok';
      const [status, body] =
        answer === 'throttle' ? [400, THROTTLE_BODY] : answer === 'server-error' ? [500, SERVER_ERROR_BODY] : [200, EMPTY_INSTANCES_BODY];
      response.writeHead(status, { 'content-type': 'text/xml' });
      response.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  setLambdaEnv({ AWS_ENDPOINT_URL_RDS: endpoint, POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_SERVICE_NAME: 'audit-log-scanner' });
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function countedClient(maxAttempts: number): { client: RDSClient; counter: ThrottleRetryCounter } {
  const client = new RDSClient({
    region: REGION,
    endpoint,
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
