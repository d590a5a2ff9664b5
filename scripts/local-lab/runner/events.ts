/**
 * Builders for the events and the context Lambda hands to a function, from what the local services
 * return. Shapes follow @types/aws-lambda and the examples in the Lambda developer guide, so the
 * handlers see here exactly what they see in AWS.
 */
import { randomUUID } from 'node:crypto';
import type { Message } from '@aws-sdk/client-sqs';
import type { AttributeValue as StreamAttributeValue, _Record as StreamSdkRecord } from '@aws-sdk/client-dynamodb-streams';
import type {
  AttributeValue,
  Context,
  DynamoDBRecord,
  DynamoDBStreamEvent,
  SQSEvent,
  SQSMessageAttributes,
  SQSRecord,
  SQSRecordAttributes,
} from 'aws-lambda';

/** Moto's (and the docs') default account. */
export const LAB_ACCOUNT_ID = '123456789012';

/**
 * Carries an environment's own /tmp to its runtime process, which makes it the handler's TMPDIR before
 * importing the handler. The process starts with the function's shared folder as TMPDIR, so that the
 * lab's TypeScript loader keeps its compile cache there, outside what counts as the environment's /tmp.
 */
export const ENVIRONMENT_TMPDIR_VARIABLE = 'LAB_ENVIRONMENT_TMPDIR';

/**
 * The runtime's end of its control pipe. Once it has sent an invocation's result, the runtime blocks
 * its JavaScript thread reading one byte from it: no timer, callback or promise the handler left runs,
 * as when Lambda freezes an environment whose handler has returned. (File I/O already handed to
 * libuv's thread pool may still complete, and a result too large for one socket write, 256 KiB or
 * so, is sent before the freeze begins; the pipeline's handlers return small batch responses.) The
 * service writes the byte just before the next invocation; if the service dies, the pipe closes and
 * the runtime exits, so no frozen environment outlives the lab.
 */
export const FREEZE_FD = 4;

export interface FunctionIdentity {
  functionName: string;
  region: string;
  memoryMb: number;
}

/** What the runner sends to a function runtime per invocation (a Context cannot cross a process boundary). */
export interface InvocationMeta {
  awsRequestId: string;
  identity: FunctionIdentity;
  /** Epoch ms at which the invocation times out. */
  deadlineMs: number;
}

export function functionArn({ functionName, region }: FunctionIdentity): string {
  return `arn:aws:lambda:${region}:${LAB_ACCOUNT_ID}:function:${functionName}`;
}

export function newInvocation(identity: FunctionIdentity, timeoutMs: number, now = Date.now()): InvocationMeta {
  return { awsRequestId: randomUUID(), identity, deadlineMs: now + timeoutMs };
}

export function buildContext(meta: InvocationMeta, clock: () => number = Date.now): Context {
  const { identity } = meta;
  const day = new Date(clock()).toISOString().slice(0, 10).replace(/-/g, '/');
  const unsupported = (name: string) => (): never => {
    throw new Error(`context.${name}() is the legacy callback API; return a value from the async handler instead`);
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: identity.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: functionArn(identity),
    memoryLimitInMB: String(identity.memoryMb),
    awsRequestId: meta.awsRequestId,
    logGroupName: `/aws/lambda/${identity.functionName}`,
    logStreamName: `${day}/[$LATEST]${meta.awsRequestId.replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, meta.deadlineMs - clock()),
    done: unsupported('done'),
    fail: unsupported('fail'),
    succeed: unsupported('succeed'),
  };
}

/**
 * EventBridge Scheduler invokes a Lambda target with the schedule's Input (context attributes such as
 * `<aws.scheduler.scheduled-time>` substituted), or with an empty JSON object when it has none.
 */
export function buildSchedulerEvent(
  input: string | undefined,
  schedule: { arn: string; scheduledTime: Date; executionId?: string; attemptNumber?: number },
): unknown {
  if (input === undefined) return {};
  const attributes: Record<string, string> = {
    '<aws.scheduler.schedule-arn>': schedule.arn,
    '<aws.scheduler.scheduled-time>': schedule.scheduledTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    '<aws.scheduler.execution-id>': schedule.executionId ?? randomUUID(),
    '<aws.scheduler.attempt-number>': String(schedule.attemptNumber ?? 1),
  };
  const substituted = input.replace(/<aws\.scheduler\.[a-z-]+>/g, (attribute) => attributes[attribute] ?? attribute);
  try {
    return JSON.parse(substituted) as unknown;
  } catch {
    return substituted;
  }
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`SQS message without ${what}`);
  return value;
}

export function toSqsRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  const recordAttributes: SQSRecordAttributes = {
    ApproximateReceiveCount: required(attributes.ApproximateReceiveCount, 'ApproximateReceiveCount'),
    SentTimestamp: required(attributes.SentTimestamp, 'SentTimestamp'),
    SenderId: required(attributes.SenderId, 'SenderId'),
    ApproximateFirstReceiveTimestamp: required(
      attributes.ApproximateFirstReceiveTimestamp,
      'ApproximateFirstReceiveTimestamp',
    ),
  };
  for (const optional of ['AWSTraceHeader', 'SequenceNumber', 'MessageGroupId', 'MessageDeduplicationId', 'DeadLetterQueueSourceArn'] as const) {
    const value = attributes[optional];
    if (value !== undefined) recordAttributes[optional] = value;
  }
  const messageAttributes: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: required(value.DataType, `DataType of attribute ${name}`),
      ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined ? { binaryValue: Buffer.from(value.BinaryValue).toString('base64') } : {}),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map((item) => Buffer.from(item).toString('base64')),
    };
  }
  return {
    messageId: required(message.MessageId, 'MessageId'),
    receiptHandle: required(message.ReceiptHandle, 'ReceiptHandle'),
    body: message.Body ?? '',
    attributes: recordAttributes,
    messageAttributes,
    md5OfBody: required(message.MD5OfBody, 'MD5OfBody'),
    ...(message.MD5OfMessageAttributes !== undefined ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

export function buildSqsEvent(messages: readonly Message[], queueArn: string, region: string): SQSEvent {
  return { Records: messages.map((message) => toSqsRecord(message, queueArn, region)) };
}

/** SDK attribute values carry binaries as bytes; Lambda's JSON event carries them base64-encoded. */
export function toLambdaAttributeValue(value: StreamAttributeValue): AttributeValue {
  if (value.S !== undefined) return { S: value.S };
  if (value.N !== undefined) return { N: value.N };
  if (value.B !== undefined) return { B: Buffer.from(value.B).toString('base64') };
  if (value.SS !== undefined) return { SS: value.SS };
  if (value.NS !== undefined) return { NS: value.NS };
  if (value.BS !== undefined) return { BS: value.BS.map((item) => Buffer.from(item).toString('base64')) };
  if (value.M !== undefined) return { M: toLambdaImage(value.M) };
  if (value.L !== undefined) return { L: value.L.map(toLambdaAttributeValue) };
  if (value.NULL !== undefined) return { NULL: value.NULL };
  if (value.BOOL !== undefined) return { BOOL: value.BOOL };
  throw new Error(`unsupported attribute value ${JSON.stringify(value)}`);
}

function toLambdaImage(image: Record<string, StreamAttributeValue>): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(image).map(([name, value]) => [name, toLambdaAttributeValue(value)]));
}

export function toDynamoDbRecord(record: StreamSdkRecord, streamArn: string): DynamoDBRecord {
  const stream = record.dynamodb;
  if (!stream) throw new Error(`stream record ${record.eventID} has no dynamodb section`);
  const created = stream.ApproximateCreationDateTime;
  return {
    eventID: record.eventID,
    eventName: record.eventName,
    eventVersion: record.eventVersion ?? '1.1',
    eventSource: record.eventSource ?? 'aws:dynamodb',
    awsRegion: record.awsRegion,
    dynamodb: {
      // Lambda delivers epoch seconds (a number), the SDK a Date.
      ...(created !== undefined ? { ApproximateCreationDateTime: Math.floor(created.getTime() / 1000) } : {}),
      ...(stream.Keys ? { Keys: toLambdaImage(stream.Keys) } : {}),
      ...(stream.NewImage ? { NewImage: toLambdaImage(stream.NewImage) } : {}),
      ...(stream.OldImage ? { OldImage: toLambdaImage(stream.OldImage) } : {}),
      SequenceNumber: stream.SequenceNumber,
      SizeBytes: stream.SizeBytes,
      StreamViewType: stream.StreamViewType,
    },
    eventSourceARN: streamArn,
    ...(record.userIdentity ? { userIdentity: record.userIdentity } : {}),
  };
}

export function buildDynamoDbStreamEvent(records: readonly DynamoDBRecord[]): DynamoDBStreamEvent {
  return { Records: [...records] };
}

/**
 * What Lambda sends to a stream event source's on-failure destination (metadata only, never the
 * records): the batch's shard and sequence-number range.
 */
export interface StreamFailureRecord {
  requestContext: { requestId: string; functionArn: string; condition: string; approximateInvokeCount: number };
  responseContext: { statusCode: number; executedVersion: string; functionError: string };
  version: '1.0';
  timestamp: string;
  DDBStreamBatchInfo: {
    shardId: string;
    startSequenceNumber: string;
    endSequenceNumber: string;
    approximateArrivalOfFirstRecord: string;
    approximateArrivalOfLastRecord: string;
    batchSize: number;
    streamArn: string;
  };
}

export function buildStreamFailureRecord(options: {
  records: readonly DynamoDBRecord[];
  shardId: string;
  streamArn: string;
  functionArn: string;
  requestId: string;
  condition: 'RetryAttemptsExhausted' | 'RecordAgeExceeded';
  invokeCount: number;
  functionError: string;
  now?: Date;
}): StreamFailureRecord {
  const { records } = options;
  const first = records[0];
  const last = records[records.length - 1];
  if (!first || !last) throw new Error('a failure record describes at least one stream record');
  const arrival = (record: DynamoDBRecord): string =>
    new Date((record.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000).toISOString();
  return {
    requestContext: {
      requestId: options.requestId,
      functionArn: options.functionArn,
      condition: options.condition,
      approximateInvokeCount: options.invokeCount,
    },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: options.functionError },
    version: '1.0',
    timestamp: (options.now ?? new Date()).toISOString(),
    DDBStreamBatchInfo: {
      shardId: options.shardId,
      startSequenceNumber: first.dynamodb?.SequenceNumber ?? '',
      endSequenceNumber: last.dynamodb?.SequenceNumber ?? '',
      approximateArrivalOfFirstRecord: arrival(first),
      approximateArrivalOfLastRecord: arrival(last),
      batchSize: records.length,
      streamArn: options.streamArn,
    },
  };
}
