/**
 * What the Lambda service gives a handler in these tests: environment (set before the handler module
 * is loaded), a context with a remaining-time budget, real-shaped SQS and DynamoDB stream events, and
 * an S3 bucket fake that consumes each PUT's body stream and verifies its SHA-256 as S3 does.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  type GetObjectCommandInput,
  type HeadObjectCommandInput,
  type HeadObjectCommandOutput,
  type ListObjectsV2CommandInput,
  type ListObjectsV2CommandOutput,
  NoSuchKey,
  NotFound,
  type PutObjectCommandInput,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue as StreamAttributeValue, Context, DynamoDBRecord, DynamoDBStreamEvent, SQSEvent } from 'aws-lambda';
import { ENV, LEDGER_ATTR, LEDGER_KEY, type LedgerItem, LedgerStatus } from '../../../lambda/shared/contract';
import type { Change, FakeTable, Item } from './fake-dynamodb';

export const REGION = 'eu-west-1';
export const LEDGER_TABLE = 'ledger';
export const IDEMPOTENCY_TABLE = 'idempotency';
export const BUCKET = 'audit-backup';
export const QUEUE_URL = `https://sqs.${REGION}.amazonaws.com/123456789012/scan`;

/** Sets the variables the stack would set; call before requiring a handler module. */
/** A PENDING ledger item with nothing stored yet, as the tests' starting point; `fields` adjust it. */
export function pendingLedgerItem(instance: string, file: string, fields: Partial<LedgerItem> = {}): LedgerItem {
  return {
    DBInstanceIdentifier: instance,
    LogFileName: file,
    Size: 0,
    LastWritten: 0,
    Status: LedgerStatus.PENDING,
    StatusChangedAt: Date.now(),
    BackedUpBytes: 0,
    ...fields,
  };
}

export function setLambdaEnv(overrides: Record<string, string> = {}): void {
  Object.assign(process.env, {
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_LAMBDA_FUNCTION_NAME: 'test-function',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    // Metric tests enable metrics before anything loads a handler (support/enable-metrics.ts).
    POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
    [ENV.ledgerTable]: LEDGER_TABLE,
    [ENV.idempotencyTable]: IDEMPOTENCY_TABLE,
    [ENV.bucket]: BUCKET,
    [ENV.scanQueueUrl]: QUEUE_URL,
    ...overrides,
  });
}

export function fakeContext(remainingMs: () => number = () => 900_000, requestId = 'request-1'): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'test-function',
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:123456789012:function:test-function`,
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: '/aws/lambda/test-function',
    logStreamName: '2024/01/01/[$LATEST]abc',
    getRemainingTimeInMillis: remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

let sqsSequence = 0;

export function sqsEvent(bodies: string[]): SQSEvent {
  return {
    Records: bodies.map((body) => {
      const id = `message-${++sqsSequence}`;
      return {
        messageId: id,
        receiptHandle: `receipt-${id}`,
        body,
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: '1700000000000',
          SenderId: 'AIDAEXAMPLE',
          ApproximateFirstReceiveTimestamp: '1700000000001',
        },
        messageAttributes: {},
        md5OfBody: createHash('md5').update(body).digest('hex'),
        eventSource: 'aws:sqs',
        eventSourceARN: `arn:aws:sqs:${REGION}:123456789012:scan`,
        awsRegion: REGION,
      };
    }),
  };
}

let streamSequence = 0;

function image(item: Item | undefined): Record<string, StreamAttributeValue> | undefined {
  return item && (marshall(item, { removeUndefinedValues: true }) as Record<string, StreamAttributeValue>);
}

export function streamRecord(change: Change): DynamoDBRecord {
  const keySource = (change.newImage ?? change.oldImage) as Item;
  const sequence = String(++streamSequence).padStart(21, '0');
  return {
    eventID: `event-${sequence}`,
    eventName: change.eventName,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: REGION,
    dynamodb: {
      ApproximateCreationDateTime: 1_700_000_000,
      Keys: image({
        [LEDGER_KEY.partitionKey]: keySource[LEDGER_KEY.partitionKey],
        [LEDGER_KEY.sortKey]: keySource[LEDGER_KEY.sortKey],
      }),
      NewImage: image(change.newImage),
      OldImage: image(change.oldImage),
      SequenceNumber: sequence,
      SizeBytes: 256,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
    eventSourceARN: `arn:aws:dynamodb:${REGION}:123456789012:table/${LEDGER_TABLE}/stream/2024-01-01T00:00:00.000`,
  };
}

/**
 * Stream records the downloader's event source would deliver for the table's changes since `from`:
 * transitions into PENDING only (the semantics of DOWNLOADER_STREAM_FILTERS).
 */
export function pendingTransitions(table: FakeTable, from = 0): DynamoDBRecord[] {
  return table.changes
    .slice(from)
    .filter(
      (change) =>
        change.newImage?.[LEDGER_ATTR.status] === LedgerStatus.PENDING &&
        change.oldImage?.[LEDGER_ATTR.status] !== LedgerStatus.PENDING,
    )
    .map(streamRecord);
}

export function streamEvent(records: DynamoDBRecord[]): DynamoDBStreamEvent {
  return { Records: records };
}

export interface StoredObject {
  body: Buffer;
  checksumSha256: string;
  /** Whether the PUT named its checksum algorithm; only then does HEAD report the SHA-256 (as moto). */
  checksumKept: boolean;
}

/** What S3 (and moto) answer a conditional PUT (`If-None-Match: *`) whose key already holds an object. */
export function preconditionFailed(): S3ServiceException {
  return new S3ServiceException({
    name: 'PreconditionFailed',
    $fault: 'client',
    message: 'At least one of the pre-conditions you specified did not hold',
    $metadata: { httpStatusCode: 412 },
  });
}

/**
 * Consumes each PUT's body stream; rejects a body whose SHA-256 differs from the one sent, and a
 * conditional PUT (`IfNoneMatch: '*'`) to an existing key with 412 PreconditionFailed. Records every
 * PUT that replaced an object (the design never rewrites one), and answers HEAD and GET like S3 for a
 * caller with s3:ListBucket: 404 for a missing key, the stored SHA-256 only with ChecksumMode ENABLED
 * and, like moto, only when the PUT named the algorithm (ChecksumAlgorithm). ListObjectsV2 pages in
 * key order.
 */
export class FakeBucket {
  readonly objects = new Map<string, StoredObject>();
  puts = 0;
  /** Keys PUT while an object already existed under them (and replaced it). */
  readonly overwrites: string[] = [];
  /** Conditional PUTs refused because the key held an object. */
  readonly refusedPuts: string[] = [];
  /** Called with the body bytes consumed so far once a PUT's body is read: lets a test fail it there. */
  beforeCommit?: (key: string, body: Buffer) => void;
  /** Keys per ListObjectsV2 page (S3: at most 1000), small in tests to exercise pagination. */
  listPageSize = 1000;

  async putObject(input: PutObjectCommandInput): Promise<{ ChecksumSHA256: string }> {
    this.puts++;
    const chunks: Buffer[] = [];
    for await (const chunk of input.Body as Readable) chunks.push(Buffer.from(chunk as Buffer));
    const body = Buffer.concat(chunks);
    this.beforeCommit?.(input.Key ?? '', body);
    const digest = createHash('sha256').update(body).digest('base64');
    if (input.ContentLength !== body.length) {
      throw new Error(`ContentLength ${input.ContentLength} but body has ${body.length} bytes`);
    }
    if (input.ChecksumSHA256 !== digest) {
      const error = new Error('The SHA256 you specified did not match the calculated checksum.');
      error.name = 'BadDigest';
      throw error;
    }
    if (this.objects.has(input.Key ?? '')) {
      if (input.IfNoneMatch === '*') {
        this.refusedPuts.push(input.Key ?? '');
        throw preconditionFailed();
      }
      this.overwrites.push(input.Key ?? '');
    }
    this.objects.set(input.Key ?? '', { body, checksumSha256: digest, checksumKept: input.ChecksumAlgorithm === 'SHA256' });
    return { ChecksumSHA256: digest };
  }

  /** An object that is in the bucket before the test starts (not counted as a PUT). */
  seed(key: string, body: Buffer | string): void {
    const bytes = Buffer.from(body);
    const checksumSha256 = createHash('sha256').update(bytes).digest('base64');
    this.objects.set(key, { body: bytes, checksumSha256, checksumKept: true });
  }

  headObject(input: HeadObjectCommandInput): Partial<HeadObjectCommandOutput> {
    const object = this.objects.get(input.Key ?? '');
    if (!object) throw new NotFound({ message: 'Not Found', $metadata: { httpStatusCode: 404 } });
    return {
      ContentLength: object.body.length,
      ...(input.ChecksumMode === 'ENABLED' && object.checksumKept ? { ChecksumSHA256: object.checksumSha256 } : {}),
    };
  }

  /**
   * Someone replaced the object's bytes (on a versioned bucket: a new current version). S3 computes
   * the new version's checksum itself, so the checksum it reports matches the new bytes.
   */
  tamper(key: string, body: Buffer | string): void {
    if (!this.objects.has(key)) throw new Error(`no object ${key} to tamper with`);
    this.seed(key, body);
  }

  remove(key: string): void {
    if (!this.objects.delete(key)) throw new Error(`no object ${key} to remove`);
  }

  getObject(input: GetObjectCommandInput): { Body: Readable; ContentLength: number; ChecksumSHA256?: string } {
    const object = this.objects.get(input.Key ?? '');
    if (!object) throw new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } });
    return {
      Body: Readable.from([object.body]),
      ContentLength: object.body.length,
      ...(input.ChecksumMode === 'ENABLED' && object.checksumKept ? { ChecksumSHA256: object.checksumSha256 } : {}),
    };
  }

  listObjectsV2(input: ListObjectsV2CommandInput): Partial<ListObjectsV2CommandOutput> {
    const keys = this.keys(input.Prefix ?? '');
    const from = input.ContinuationToken ? Number(input.ContinuationToken) : 0;
    const pageSize = Math.min(input.MaxKeys ?? 1000, this.listPageSize);
    const page = keys.slice(from, from + pageSize);
    const more = from + page.length < keys.length;
    return {
      Contents: page.map((key) => ({ Key: key, Size: this.objects.get(key)?.body.length })),
      KeyCount: page.length,
      IsTruncated: more,
      NextContinuationToken: more ? String(from + page.length) : undefined,
    };
  }

  /** Objects under a prefix in key order, i.e. a file's segments in offset order. */
  keys(prefix = ''): string[] {
    return [...this.objects.keys()].filter((key) => key.startsWith(prefix)).sort();
  }

  concatenated(prefix: string): Buffer {
    return Buffer.concat(this.keys(prefix).map((key) => this.objects.get(key)?.body ?? Buffer.alloc(0)));
  }
}

export function sha256Base64(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('base64');
}
