import type { Message } from '@aws-sdk/client-sqs';
import type { _Record as StreamSdkRecord } from '@aws-sdk/client-dynamodb-streams';
import type { Context, DynamoDBRecord, DynamoDBStreamEvent, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  buildContext,
  buildDynamoDbStreamEvent,
  buildSchedulerEvent,
  buildSqsEvent,
  buildStreamFailureRecord,
  functionArn,
  newInvocation,
  toDynamoDbRecord,
} from '../../scripts/local-lab/runner/events';
import type { InvokeResult } from '../../scripts/local-lab/runner/lambda-function';
import { failedMessageIds } from '../../scripts/local-lab/runner/sqs-source';
import { firstFailedIndex } from '../../scripts/local-lab/runner/stream-source';

const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:scan';
const STREAM_ARN = 'arn:aws:dynamodb:us-east-1:123456789012:table/ledger/stream/2026-11-25T13:00:00.000';
const identity = { functionName: 'lab-detector', region: 'us-east-1', memoryMb: 256 };

const sdkMessage: Message = {
  MessageId: '059f36b4-87a3-44ab-83d2-661975830a7d',
  ReceiptHandle: 'AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a',
  MD5OfBody: 'e4e68fb7bd0e697a0ae8f1bb342846b3',
  Body: '{"DBInstanceIdentifier":"lab-writer","ScannedAt":1}',
  Attributes: {
    ApproximateReceiveCount: '2',
    SentTimestamp: '1545082649183',
    SenderId: 'AIDAIENQZJOLO23YVJ4VO',
    ApproximateFirstReceiveTimestamp: '1545082649185',
  },
  MD5OfMessageAttributes: '00484c68...59e48f06',
  MessageAttributes: {
    Kind: { DataType: 'String', StringValue: 'scan' },
    Blob: { DataType: 'Binary', BinaryValue: Buffer.from('hi') },
  },
};

describe('SQS events', () => {
  it('builds records shaped like the Lambda SQS event', () => {
    const event: SQSEvent = buildSqsEvent([sdkMessage], QUEUE_ARN, 'us-east-1');
    const record: SQSRecord | undefined = event.Records[0];
    expect(record).toEqual({
      messageId: sdkMessage.MessageId,
      receiptHandle: sdkMessage.ReceiptHandle,
      body: sdkMessage.Body,
      attributes: {
        ApproximateReceiveCount: '2',
        SentTimestamp: '1545082649183',
        SenderId: 'AIDAIENQZJOLO23YVJ4VO',
        ApproximateFirstReceiveTimestamp: '1545082649185',
      },
      messageAttributes: {
        Kind: { dataType: 'String', stringValue: 'scan', stringListValues: [], binaryListValues: [] },
        Blob: { dataType: 'Binary', binaryValue: Buffer.from('hi').toString('base64'), stringListValues: [], binaryListValues: [] },
      },
      md5OfBody: sdkMessage.MD5OfBody,
      md5OfMessageAttributes: sdkMessage.MD5OfMessageAttributes,
      eventSource: 'aws:sqs',
      eventSourceARN: QUEUE_ARN,
      awsRegion: 'us-east-1',
    });
  });

  it('refuses a message without the system attributes Lambda always delivers', () => {
    expect(() => buildSqsEvent([{ ...sdkMessage, Attributes: {} }], QUEUE_ARN, 'us-east-1')).toThrow(/ApproximateReceiveCount/);
  });
});

const sdkStreamRecord: StreamSdkRecord = {
  eventID: 'c4ca4238a0b923820dcc509a6f75849b',
  eventName: 'MODIFY',
  eventVersion: '1.1',
  eventSource: 'aws:dynamodb',
  awsRegion: 'us-east-1',
  dynamodb: {
    ApproximateCreationDateTime: new Date(1_764_075_600_500),
    Keys: { DBInstanceIdentifier: { S: 'lab-writer' }, LogFileName: { S: 'audit/a' } },
    NewImage: {
      DBInstanceIdentifier: { S: 'lab-writer' },
      Status: { S: 'PENDING' },
      Size: { N: '1024' },
      Segments: { L: [{ M: { Start: { N: '0' }, End: { N: '10' }, Sha256: { S: 'abc=' } } }] },
      Raw: { B: Uint8Array.from([1, 2, 3]) },
      Flag: { BOOL: true },
      Nothing: { NULL: true },
    },
    OldImage: { DBInstanceIdentifier: { S: 'lab-writer' }, Status: { S: 'DONE' } },
    SequenceNumber: '111',
    SizeBytes: 26,
    StreamViewType: 'NEW_AND_OLD_IMAGES',
  },
};

describe('DynamoDB stream events', () => {
  it('converts SDK records to the Lambda event shape (epoch seconds, base64 binaries, stream ARN)', () => {
    const record: DynamoDBRecord = toDynamoDbRecord(sdkStreamRecord, STREAM_ARN);
    expect(record.eventSourceARN).toBe(STREAM_ARN);
    expect(record.eventName).toBe('MODIFY');
    expect(record.dynamodb?.ApproximateCreationDateTime).toBe(1_764_075_600);
    expect(record.dynamodb?.NewImage?.Raw).toEqual({ B: Buffer.from([1, 2, 3]).toString('base64') });
    expect(record.dynamodb?.NewImage?.Segments).toEqual({ L: [{ M: { Start: { N: '0' }, End: { N: '10' }, Sha256: { S: 'abc=' } } }] });
    expect(record.dynamodb?.NewImage?.Flag).toEqual({ BOOL: true });
    expect(record.dynamodb?.OldImage?.Status).toEqual({ S: 'DONE' });
    expect(record.dynamodb?.SequenceNumber).toBe('111');
    // The whole event survives JSON (it crosses a process boundary, as Lambda's does).
    const event: DynamoDBStreamEvent = buildDynamoDbStreamEvent([record]);
    expect(JSON.parse(JSON.stringify(event))).toEqual(event);
  });

  it('describes a failed batch for the on-failure destination (metadata only)', () => {
    const records = [toDynamoDbRecord(sdkStreamRecord, STREAM_ARN), toDynamoDbRecord({ ...sdkStreamRecord, dynamodb: { ...sdkStreamRecord.dynamodb, SequenceNumber: '112' } }, STREAM_ARN)];
    const failure = buildStreamFailureRecord({
      records,
      shardId: 'shardId-1',
      streamArn: STREAM_ARN,
      functionArn: functionArn(identity),
      requestId: 'r-1',
      condition: 'RetryAttemptsExhausted',
      invokeCount: 6,
      functionError: 'Unhandled',
      now: new Date(0),
    });
    expect(failure.DDBStreamBatchInfo).toEqual({
      shardId: 'shardId-1',
      startSequenceNumber: '111',
      endSequenceNumber: '112',
      approximateArrivalOfFirstRecord: '2025-11-25T13:00:00.000Z',
      approximateArrivalOfLastRecord: '2025-11-25T13:00:00.000Z',
      batchSize: 2,
      streamArn: STREAM_ARN,
    });
    expect(failure.requestContext).toEqual({
      requestId: 'r-1',
      functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:lab-detector',
      condition: 'RetryAttemptsExhausted',
      approximateInvokeCount: 6,
    });
    expect(JSON.stringify(failure)).not.toContain('NewImage');
  });
});

describe('Lambda context', () => {
  it('counts the remaining time down to the deadline and never below 0', () => {
    let now = 1_000_000;
    const meta = newInvocation(identity, 5000, now);
    const context: Context = buildContext(meta, () => now);
    expect(context.getRemainingTimeInMillis()).toBe(5000);
    now += 1200;
    expect(context.getRemainingTimeInMillis()).toBe(3800);
    now += 10_000;
    expect(context.getRemainingTimeInMillis()).toBe(0);
    expect(context).toMatchObject({
      functionName: 'lab-detector',
      functionVersion: '$LATEST',
      memoryLimitInMB: '256',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:lab-detector',
      awsRequestId: meta.awsRequestId,
      logGroupName: '/aws/lambda/lab-detector',
    });
    expect(context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('rejects the legacy callback API instead of silently ignoring it', () => {
    const context = buildContext(newInvocation(identity, 1000));
    expect(() => context.succeed('x')).toThrow(/legacy/);
  });
});

describe('Scheduler events', () => {
  it('sends an empty object when the schedule has no input', () => {
    expect(buildSchedulerEvent(undefined, { arn: 'arn', scheduledTime: new Date(0) })).toEqual({});
  });

  it('substitutes context attributes in the input', () => {
    const event = buildSchedulerEvent('{"at":"<aws.scheduler.scheduled-time>","by":"<aws.scheduler.schedule-arn>"}', {
      arn: 'arn:aws:scheduler:us-east-1:123456789012:schedule/default/lab-scan',
      scheduledTime: new Date('2026-11-25T13:00:00.000Z'),
    });
    expect(event).toEqual({ at: '2026-11-25T13:00:00Z', by: 'arn:aws:scheduler:us-east-1:123456789012:schedule/default/lab-scan' });
  });
});

const ok = (value: unknown): InvokeResult => ({ ok: true, value, requestId: 'r', durationMs: 1 });
const failed: InvokeResult = { ok: false, requestId: 'r', durationMs: 1, timedOut: false, crashed: false, errorType: 'Error', errorMessage: 'boom' };

describe('partial batch responses (SQS)', () => {
  const ids = ['m1', 'm2', 'm3'];
  it('fails nothing on success, with or without an empty report', () => {
    expect([...failedMessageIds(ids, ok(null), true)]).toEqual([]);
    expect([...failedMessageIds(ids, ok({ batchItemFailures: [] }), true)]).toEqual([]);
  });
  it('fails exactly the reported messages', () => {
    expect([...failedMessageIds(ids, ok({ batchItemFailures: [{ itemIdentifier: 'm2' }] }), true)]).toEqual(['m2']);
  });
  it('fails the whole batch on a function error or an invalid report', () => {
    expect(failedMessageIds(ids, failed, true).size).toBe(3);
    expect(failedMessageIds(ids, ok({ batchItemFailures: [{ itemIdentifier: 'unknown' }] }), true).size).toBe(3);
    expect(failedMessageIds(ids, ok({ batchItemFailures: [{}] }), true).size).toBe(3);
  });
  it('ignores a report when the mapping does not enable ReportBatchItemFailures', () => {
    expect(failedMessageIds(ids, ok({ batchItemFailures: [{ itemIdentifier: 'm2' }] }), false).size).toBe(0);
  });
});

describe('partial batch responses (DynamoDB stream)', () => {
  const records = ['101', '102', '103', '104'].map((sequence) =>
    toDynamoDbRecord({ ...sdkStreamRecord, dynamodb: { ...sdkStreamRecord.dynamodb, SequenceNumber: sequence } }, STREAM_ARN),
  );
  it('checkpoints before the lowest reported sequence number', () => {
    expect(firstFailedIndex(records, ok({ batchItemFailures: [{ itemIdentifier: '104' }, { itemIdentifier: '102' }] }), true)).toBe(1);
  });
  it('succeeds without a report', () => {
    expect(firstFailedIndex(records, ok(undefined), true)).toBe(-1);
    expect(firstFailedIndex(records, ok({ batchItemFailures: [] }), true)).toBe(-1);
  });
  it('retries the whole batch on a function error or an invalid identifier', () => {
    expect(firstFailedIndex(records, failed, true)).toBe(0);
    expect(firstFailedIndex(records, ok({ batchItemFailures: [{ itemIdentifier: '' }] }), true)).toBe(0);
    expect(firstFailedIndex(records, ok({ batchItemFailures: [{ itemIdentifier: '999' }] }), true)).toBe(0);
  });
});
