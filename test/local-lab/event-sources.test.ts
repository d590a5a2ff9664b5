import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  _Record as StreamSdkRecord,
} from '@aws-sdk/client-dynamodb-streams';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import type { DynamoDBStreamEvent, SQSEvent } from 'aws-lambda';
import { DOWNLOADER_STREAM_FILTERS, LedgerStatus } from '../../lambda/shared/contract';
import type { InvokeResult, LambdaFunction } from '../../scripts/local-lab/runner/lambda-function';
import { SqsEventSource } from '../../scripts/local-lab/runner/sqs-source';
import { DynamoDbStreamEventSource, emptyStreamPumpStats, StreamSourceSettings } from '../../scripts/local-lab/runner/stream-source';
import type { StreamFailureRecord } from '../../scripts/local-lab/runner/events';

const STREAM_ARN = 'arn:aws:dynamodb:us-east-1:123456789012:table/ledger/stream/x';
const FAILURE_QUEUE = 'http://127.0.0.1/123456789012/failures';

/** A function double: records every event and answers with `respond`. */
function fakeFunction<E>(respond: (event: E, call: number) => InvokeResult): { fn: LambdaFunction; events: E[] } {
  const events: E[] = [];
  const fn = {
    arn: 'arn:aws:lambda:us-east-1:123456789012:function:lab-downloader',
    invoke: async (event: unknown) => {
      events.push(event as E);
      return respond(event as E, events.length);
    },
  } as unknown as LambdaFunction;
  return { fn, events };
}

const ok = (value: unknown = null): InvokeResult => ({ ok: true, value, requestId: 'r', durationMs: 1 });
const crash: InvokeResult = { ok: false, requestId: 'r', durationMs: 1, timedOut: false, crashed: false, errorType: 'Error', errorMessage: 'boom' };

function streamRecord(sequence: number, newStatus: string, oldStatus?: string): StreamSdkRecord {
  const image = (status: string) => ({ DBInstanceIdentifier: { S: 'lab-writer' }, LogFileName: { S: `f${sequence}` }, Status: { S: status } });
  return {
    eventID: `e${sequence}`,
    eventName: oldStatus ? 'MODIFY' : 'INSERT',
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    dynamodb: {
      ApproximateCreationDateTime: new Date(),
      Keys: { DBInstanceIdentifier: { S: 'lab-writer' }, LogFileName: { S: `f${sequence}` } },
      NewImage: image(newStatus),
      ...(oldStatus ? { OldImage: image(oldStatus) } : {}),
      SequenceNumber: String(sequence),
      SizeBytes: 100,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  };
}

function streamSource(records: StreamSdkRecord[], fn: LambdaFunction, overrides: Partial<StreamSourceSettings> = {}) {
  const streams = mockClient(DynamoDBStreamsClient);
  const sqs = mockClient(SQSClient);
  streams.on(DescribeStreamCommand).resolves({ StreamDescription: { Shards: [{ ShardId: 'shard-1' }] } });
  streams.on(GetShardIteratorCommand).resolves({ ShardIterator: 'it-0' });
  streams.on(GetRecordsCommand, { ShardIterator: 'it-0' }).resolves({ Records: records, NextShardIterator: 'it-1' });
  streams.on(GetRecordsCommand, { ShardIterator: 'it-1' }).resolves({ Records: [], NextShardIterator: 'it-1' });
  sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
  const source = new DynamoDbStreamEventSource(streams as unknown as DynamoDBStreamsClient, sqs as unknown as SQSClient, fn, {
    streamArn: STREAM_ARN,
    batchSize: 5,
    retryAttempts: 2,
    bisectOnError: true,
    maxRecordAgeSeconds: -1,
    reportBatchItemFailures: true,
    startingPosition: 'TRIM_HORIZON',
    filters: DOWNLOADER_STREAM_FILTERS,
    onFailureQueueUrl: FAILURE_QUEUE,
    retryDelayMs: 0,
    ...overrides,
  });
  return { source, streams, sqs };
}

const sequences = (event: DynamoDBStreamEvent): string[] => event.Records.map((record) => record.dynamodb?.SequenceNumber ?? '?');

describe('DynamoDB stream event source', () => {
  afterEach(() => jest.restoreAllMocks());

  it('delivers only what the filter admits, in batches of the mapping size', async () => {
    const records = [
      streamRecord(1, LedgerStatus.PENDING),
      streamRecord(2, LedgerStatus.IN_PROGRESS, LedgerStatus.PENDING),
      ...[3, 4, 5, 6, 7, 8].map((sequence) => streamRecord(sequence, LedgerStatus.PENDING, LedgerStatus.DONE)),
    ];
    const { fn, events } = fakeFunction<DynamoDBStreamEvent>(() => ok());
    const { source } = streamSource(records, fn);
    // A poller's running tally: the pump counts on into it.
    const tally = { ...emptyStreamPumpStats(), recordsRead: 5, delivered: 5, invocations: 1 };
    const stats = await source.pump(tally);
    expect(stats).toBe(tally);
    expect(events.map(sequences)).toEqual([['1', '3', '4', '5', '6'], ['7', '8']]);
    expect(stats).toMatchObject({ recordsRead: 5 + 8, filteredOut: 1, delivered: 5 + 7, invocations: 1 + 2, discarded: 0 });
    // Caught up: the next pump reads from the saved iterator and finds nothing.
    expect((await source.pump()).recordsRead).toBe(0);
  });

  it('retries from the lowest reported failure and keeps the records before it', async () => {
    const records = [1, 2, 3, 4].map((sequence) => streamRecord(sequence, LedgerStatus.PENDING));
    const { fn, events } = fakeFunction<DynamoDBStreamEvent>((_event, call) =>
      call === 1 ? ok({ batchItemFailures: [{ itemIdentifier: '4' }, { itemIdentifier: '3' }] }) : ok({ batchItemFailures: [] }),
    );
    const { source, sqs } = streamSource(records, fn);
    const stats = await source.pump();
    expect(events.map(sequences)).toEqual([['1', '2', '3', '4'], ['3', '4']]);
    expect(stats).toMatchObject({ delivered: 4, retries: 1, discarded: 0 });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('bisects a batch on a function error until the poison record is alone, retries it, then sends its metadata to the on-failure queue', async () => {
    const records = [1, 2, 3, 4].map((sequence) => streamRecord(sequence, LedgerStatus.PENDING));
    const { fn, events } = fakeFunction<DynamoDBStreamEvent>((event) => (sequences(event).includes('3') ? crash : ok()));
    const { source, sqs } = streamSource(records, fn, { retryAttempts: 2 });
    const stats = await source.pump();
    expect(events.map(sequences)).toEqual([
      ['1', '2', '3', '4'],
      ['1', '2'],
      ['3', '4'],
      ['3'],
      ['3'],
      ['3'],
      ['4'],
    ]);
    expect(stats).toMatchObject({ delivered: 3, bisections: 2, retries: 2, discarded: 1 });
    const sent = sqs.commandCalls(SendMessageCommand);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.args[0].input.QueueUrl).toBe(FAILURE_QUEUE);
    const failure = JSON.parse(sent[0]?.args[0].input.MessageBody ?? '{}') as StreamFailureRecord;
    expect(failure.requestContext.condition).toBe('RetryAttemptsExhausted');
    expect(failure.requestContext.approximateInvokeCount).toBe(3);
    expect(failure.DDBStreamBatchInfo).toMatchObject({ startSequenceNumber: '3', endSequenceNumber: '3', batchSize: 1, streamArn: STREAM_ARN });
  });

  it('replaces an expired shard iterator and resumes after the last handled record', async () => {
    const { fn, events } = fakeFunction<DynamoDBStreamEvent>(() => ok());
    const { source, streams } = streamSource([1, 2].map((sequence) => streamRecord(sequence, LedgerStatus.PENDING)), fn);
    await source.pump();
    const expired = Object.assign(new Error('Iterator expired'), { name: 'ExpiredIteratorException' });
    streams.on(GetRecordsCommand, { ShardIterator: 'it-1' }).rejects(expired);
    streams.on(GetShardIteratorCommand, { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: '2' }).resolves({ ShardIterator: 'it-2' });
    streams.on(GetRecordsCommand, { ShardIterator: 'it-2' }).resolves({ Records: [streamRecord(3, LedgerStatus.PENDING)], NextShardIterator: 'it-3' });
    streams.on(GetRecordsCommand, { ShardIterator: 'it-3' }).resolves({ Records: [], NextShardIterator: 'it-3' });
    await source.pump();
    expect(events.map(sequences)).toEqual([['1', '2'], ['3']]);
  });

  it('refuses a second pump while one reads the stream (two readers of one iterator would deliver twice)', async () => {
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { fn, events } = fakeFunction<DynamoDBStreamEvent>(() => ok());
    const slow = { ...fn, arn: fn.arn, invoke: async (event: unknown) => (await held, fn.invoke(event)) } as unknown as LambdaFunction;
    const { source } = streamSource([1, 2].map((sequence) => streamRecord(sequence, LedgerStatus.PENDING)), slow);
    const first = source.pump();
    await expect(source.pump()).rejects.toThrow(/one pump at a time/);
    release();
    expect((await first).delivered).toBe(2);
    // Once the first pump is over, the next one may read (and finds nothing new).
    expect((await source.pump()).recordsRead).toBe(0);
    expect(events.map(sequences)).toEqual([['1', '2']]);
  });

  it('stops reading when asked, after delivering what it has read, and resumes there on the next pump', async () => {
    const { fn, events } = fakeFunction<DynamoDBStreamEvent>(() => ok());
    const { source, streams } = streamSource([streamRecord(1, LedgerStatus.PENDING)], fn);
    streams.on(GetRecordsCommand, { ShardIterator: 'it-1' }).resolves({ Records: [streamRecord(2, LedgerStatus.PENDING)], NextShardIterator: 'it-2' });
    streams.on(GetRecordsCommand, { ShardIterator: 'it-2' }).resolves({ Records: [], NextShardIterator: 'it-2' });
    let reads = 0;
    const stats = await source.pump(undefined, { stopRequested: () => reads++ >= 1 });
    expect(stats).toMatchObject({ recordsRead: 1, delivered: 1 });
    expect((await source.pump()).delivered).toBe(1);
    expect(events.map(sequences)).toEqual([['1'], ['2']]);
  });

  it('retries a whole batch without bisecting when bisect is off', async () => {
    const records = [1, 2].map((sequence) => streamRecord(sequence, LedgerStatus.PENDING));
    const { fn, events } = fakeFunction<DynamoDBStreamEvent>(() => crash);
    const { source } = streamSource(records, fn, { bisectOnError: false, retryAttempts: 1 });
    const stats = await source.pump();
    expect(events.map(sequences)).toEqual([['1', '2'], ['1', '2']]);
    expect(stats.discarded).toBe(2);
  });
});

describe('SQS event source', () => {
  it('deletes succeeded messages and makes reported failures visible again', async () => {
    const sqs = mockClient(SQSClient);
    const message = (id: string) => ({
      MessageId: id,
      ReceiptHandle: `rh-${id}`,
      MD5OfBody: 'x',
      Body: `{"id":"${id}"}`,
      Attributes: { ApproximateReceiveCount: '1', SentTimestamp: '1', SenderId: 's', ApproximateFirstReceiveTimestamp: '1' },
    });
    sqs.on(ReceiveMessageCommand).resolvesOnce({ Messages: [message('a'), message('b'), message('c')] }).resolves({ Messages: [] });
    sqs.on(DeleteMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [], Failed: [] });
    const { fn, events } = fakeFunction<SQSEvent>(() => ok({ batchItemFailures: [{ itemIdentifier: 'b' }] }));
    const source = new SqsEventSource(sqs as unknown as SQSClient, fn, {
      queueUrl: 'http://127.0.0.1/123456789012/scan',
      queueArn: 'arn:aws:sqs:us-east-1:123456789012:scan',
      region: 'us-east-1',
      batchSize: 10,
      reportBatchItemFailures: true,
      retryDelaySeconds: 3,
    });
    const stats = await source.pump();
    expect(events[0]?.Records.map((record) => record.messageId)).toEqual(['a', 'b', 'c']);
    expect(stats).toMatchObject({ batches: 1, messages: 3, succeeded: 2, failed: 1 });
    const deleted = sqs.commandCalls(DeleteMessageBatchCommand)[0]?.args[0].input.Entries?.map((entry) => entry.ReceiptHandle);
    expect(deleted).toEqual(['rh-a', 'rh-c']);
    const retried = sqs.commandCalls(ChangeMessageVisibilityBatchCommand)[0]?.args[0].input.Entries;
    expect(retried).toEqual([{ Id: '0', ReceiptHandle: 'rh-b', VisibilityTimeout: 3 }]);
  });
});
