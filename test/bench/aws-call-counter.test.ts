import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AwsCallCounter, classifyAwsRequest, startAwsCallCounter } from '../../scripts/bench/aws-call-counter';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const sigv4 = (service: string): string =>
  `AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=00`;

interface Received {
  method: string;
  url: string;
  sha256: string;
  bytes: number;
}

describe('AWS call counter', () => {
  let upstream: Server;
  let received: Received[];
  let counter: AwsCallCounter;

  beforeAll(async () => {
    received = [];
    // A stand-in for moto: records what arrives and answers 400 to one path, 200 with an empty JSON body otherwise.
    upstream = createServer((req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      req.on('end', () => {
        received.push({ method: req.method ?? '', url: req.url ?? '', sha256: hash.digest('hex'), bytes });
        if (req.url === '/refuse') {
          res.writeHead(400, { 'content-type': 'text/plain', 'x-upstream': 'yes' });
          res.end('refused by upstream');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    counter = await startAwsCallCounter(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
  });

  afterAll(async () => {
    await counter.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  beforeEach(() => {
    counter.reset();
    received.length = 0;
  });

  test('classifies by signing service, X-Amz-Target and S3 REST shape; names the caller from the User-Agent', () => {
    expect(classifyAwsRequest('POST', '/', { authorization: sigv4('dynamodb'), 'x-amz-target': 'DynamoDB_20120810.UpdateItem' })).toEqual({
      caller: 'lab',
      service: 'dynamodb',
      action: 'UpdateItem',
    });
    expect(
      classifyAwsRequest('POST', '/', {
        authorization: sigv4('sqs'),
        'x-amz-target': 'AmazonSQS.SendMessageBatch',
        'user-agent': 'aws-sdk-js/3.1 ua/2.1 lang/js api/sqs#3.1 exec-env/AWS_Lambda_nodejs22.x',
      }),
    ).toEqual({ caller: 'function', service: 'sqs', action: 'SendMessageBatch' });
    const s3 = (method: string, url: string): string => classifyAwsRequest(method, url, { authorization: sigv4('s3') }).action;
    expect(s3('PUT', '/bucket/logs/i/f/000000000000-000000000010')).toBe('PutObject');
    expect(s3('HEAD', '/bucket/logs/i/f/000000000000-000000000010?x-id=HeadObject')).toBe('HeadObject');
    expect(s3('GET', '/bucket?list-type=2&prefix=logs%2F')).toBe('ListObjectsV2');
    expect(s3('POST', '/bucket/key?uploads')).toBe('CreateMultipartUpload');
    expect(s3('PUT', '/bucket/key?partNumber=1&uploadId=u')).toBe('UploadPart');
    expect(s3('PUT', '/bucket')).toBe('CreateBucket');
    expect(classifyAwsRequest('GET', '/', {}).service).toBe('unsigned');
  });

  test('counts real SDK calls by caller, action and table, and forwards them', async () => {
    const dynamodb = new DynamoDBClient({ region: 'us-east-1', endpoint: counter.url, credentials, userAgentAppId: 'lab-detector', maxAttempts: 1 });
    const plain = new DynamoDBClient({ region: 'us-east-1', endpoint: counter.url, credentials, maxAttempts: 1 });
    try {
      await dynamodb.send(new PutItemCommand({ TableName: 'ledger', Item: { DBInstanceIdentifier: { S: 'i' }, LogFileName: { S: 'f' } } }));
      await dynamodb.send(new PutItemCommand({ TableName: 'ledger', Item: { DBInstanceIdentifier: { S: 'i' }, LogFileName: { S: 'g' } } }));
      await dynamodb.send(new QueryCommand({ TableName: 'other', KeyConditionExpression: 'k = :k', ExpressionAttributeValues: { ':k': { S: 'x' } } }));
      await plain.send(new QueryCommand({ TableName: 'ledger', KeyConditionExpression: 'k = :k', ExpressionAttributeValues: { ':k': { S: 'x' } } }));
    } finally {
      dynamodb.destroy();
      plain.destroy();
    }
    const calls = counter.calls();
    expect(calls.map(({ caller, service, action, table, count }) => [caller.split('-PT')[0], service, action, table, count])).toEqual(
      expect.arrayContaining([
        ['lab-detector', 'dynamodb', 'PutItem', 'ledger', 2],
        ['lab-detector', 'dynamodb', 'Query', 'other', 1],
        ['lab', 'dynamodb', 'Query', 'ledger', 1],
      ]),
    );
    expect(calls.reduce((sum, call) => sum + call.count, 0)).toBe(4);
    expect(received).toHaveLength(4);
  });

  test('streams a large S3 body through unchanged', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const s3 = new S3Client({
      region: 'us-east-1',
      endpoint: counter.url,
      forcePathStyle: true,
      credentials,
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    try {
      await s3.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'logs/a/b', Body: body }));
    } finally {
      s3.destroy();
    }
    expect(received).toEqual([
      { method: 'PUT', url: expect.stringMatching(/^\/bucket\/logs\/a\/b/), bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') },
    ]);
    expect(counter.calls()).toEqual([{ caller: 'lab', service: 's3', action: 'PutObject', count: 1 }]);
  });

  test('passes the upstream status, headers and body back; reset forgets the counts', async () => {
    const answer = await new Promise<{ status: number; header: string | undefined; body: string }>((resolve, reject) => {
      const req = request(`${counter.url}/refuse`, { method: 'POST', headers: { authorization: sigv4('sqs'), 'x-amz-target': 'AmazonSQS.SendMessage' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, header: res.headers['x-upstream'] as string | undefined, body: text }));
      });
      req.on('error', reject);
      req.end('{}');
    });
    expect(answer).toEqual({ status: 400, header: 'yes', body: 'refused by upstream' });
    expect(counter.calls()).toEqual([{ caller: 'lab', service: 'sqs', action: 'SendMessage', count: 1 }]);
    counter.reset();
    expect(counter.calls()).toEqual([]);
    expect(counter.forwardFailures()).toBe(0);
  });
});
