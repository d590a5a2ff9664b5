/**
 * Lambda's DynamoDB Streams event source mapping: read each shard in order (parents before children),
 * drop records the filter criteria do not admit, invoke the function with batches of real
 * DynamoDBStreamEvent records, and on failure do what the mapping is configured to: report-batch-item-
 * failures checkpoints, bisect on function error, a finite number of retries, then the failed batch's
 * metadata to the on-failure destination and move on. A shard blocks while its batch is retried.
 */
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  Shard,
  ShardIteratorType,
  _Record as StreamSdkRecord,
} from '@aws-sdk/client-dynamodb-streams';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { sleep } from '../net';
import { buildDynamoDbStreamEvent, buildStreamFailureRecord, toDynamoDbRecord } from './events';
import { compileFilters, FilterPattern } from './filter-matcher';
import type { InvokeResult, LambdaFunction } from './lambda-function';

export interface StreamSourceSettings {
  streamArn: string;
  batchSize: number;
  /** -1: until the record expires. */
  retryAttempts: number;
  bisectOnError: boolean;
  /** -1: no limit. */
  maxRecordAgeSeconds: number;
  reportBatchItemFailures: boolean;
  startingPosition: string;
  filters: readonly FilterPattern[];
  onFailureQueueUrl?: string;
  /** Pause before retrying a failed batch (Lambda backs off too). */
  retryDelayMs: number;
}

export interface StreamPumpStats {
  recordsRead: number;
  filteredOut: number;
  delivered: number;
  invocations: number;
  retries: number;
  bisections: number;
  /** Records given up on (their batch's metadata went to the on-failure destination). */
  discarded: number;
  functionErrors: string[];
}

/** Stats of a pump that has done nothing yet. */
export function emptyStreamPumpStats(): StreamPumpStats {
  return { recordsRead: 0, filteredOut: 0, delivered: 0, invocations: 0, retries: 0, bisections: 0, discarded: 0, functionErrors: [] };
}

interface ShardState {
  shardId: string;
  parentShardId?: string;
  iterator?: string;
  /** Last record handled: where a fresh iterator resumes when the current one expired. */
  lastSequenceNumber?: string;
  /** No more records will ever come (the shard is closed and fully read). */
  finished: boolean;
}

/**
 * Index of the first record to retry, or -1 when the batch succeeded, by Lambda's rules: a function
 * error fails the whole batch; reported failures checkpoint before the lowest failed sequence number;
 * an invalid report (unknown or empty identifier) fails the whole batch.
 */
export function firstFailedIndex(
  records: readonly DynamoDBRecord[],
  result: InvokeResult,
  reportBatchItemFailures: boolean,
): number {
  if (!result.ok) return 0;
  if (!reportBatchItemFailures || result.value === null || typeof result.value !== 'object') return -1;
  const failures = (result.value as Partial<DynamoDBBatchResponse>).batchItemFailures;
  if (failures === undefined || failures === null) return -1;
  if (!Array.isArray(failures)) return 0;
  let first = -1;
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    const index = typeof id === 'string' && id !== '' ? records.findIndex((record) => record.dynamodb?.SequenceNumber === id) : -1;
    if (index === -1) return 0;
    first = first === -1 ? index : Math.min(first, index);
  }
  return first;
}

export class DynamoDbStreamEventSource {
  private readonly shards = new Map<string, ShardState>();
  private readonly admits: (record: unknown) => boolean;
  private pumping = false;

  constructor(
    private readonly streams: DynamoDBStreamsClient,
    private readonly sqs: SQSClient,
    private readonly fn: LambdaFunction,
    readonly settings: StreamSourceSettings,
  ) {
    this.admits = compileFilters(settings.filters);
  }

  /**
   * Reads every shard up to its current end, delivering what the filters admit. Counts into `stats` as
   * it goes (a poller's running tally shows a long backlog's progress before the pump returns).
   */
  async pump(stats: StreamPumpStats = emptyStreamPumpStats(), options: { stopRequested?: () => boolean } = {}): Promise<StreamPumpStats> {
    // Two readers of one shard iterator would deliver the same records twice: Lambda runs one per shard.
    if (this.pumping) throw new Error('the stream is already being read: one pump at a time (are the pollers running?)');
    this.pumping = true;
    try {
      await this.refreshShards();
      for (const shard of this.readableShards()) {
        await this.readShard(shard, stats, options.stopRequested ?? (() => false));
      }
      return stats;
    } finally {
      this.pumping = false;
    }
  }

  private async refreshShards(): Promise<void> {
    let exclusiveStart: string | undefined;
    do {
      const { StreamDescription } = await this.streams.send(
        new DescribeStreamCommand({ StreamArn: this.settings.streamArn, ExclusiveStartShardId: exclusiveStart }),
      );
      for (const shard of StreamDescription?.Shards ?? ([] as Shard[])) {
        if (shard.ShardId && !this.shards.has(shard.ShardId)) {
          this.shards.set(shard.ShardId, {
            shardId: shard.ShardId,
            ...(shard.ParentShardId ? { parentShardId: shard.ParentShardId } : {}),
            finished: false,
          });
        }
      }
      exclusiveStart = StreamDescription?.LastEvaluatedShardId;
    } while (exclusiveStart);
  }

  /** Shards in processing order: a child only once its parent (if still listed) is finished. */
  private readableShards(): ShardState[] {
    return [...this.shards.values()].filter((shard) => {
      if (shard.finished) return false;
      const parent = shard.parentShardId ? this.shards.get(shard.parentShardId) : undefined;
      return !parent || parent.finished;
    });
  }

  /** Reads one shard up to its current end; a stop request is honoured between reads (what was read is delivered). */
  private async readShard(shard: ShardState, stats: StreamPumpStats, stopRequested: () => boolean): Promise<void> {
    if (!shard.iterator) {
      const type = this.settings.startingPosition === 'LATEST' ? ShardIteratorType.LATEST : ShardIteratorType.TRIM_HORIZON;
      const { ShardIterator } = await this.streams.send(
        new GetShardIteratorCommand({ StreamArn: this.settings.streamArn, ShardId: shard.shardId, ShardIteratorType: type }),
      );
      shard.iterator = ShardIterator;
    }
    while (shard.iterator && !stopRequested()) {
      const { Records = [], NextShardIterator } = await this.getRecords(shard);
      if (Records.length === 0) {
        if (!NextShardIterator) shard.finished = true;
        else shard.iterator = NextShardIterator;
        return;
      }
      stats.recordsRead += Records.length;
      const records = Records.map((record) => toDynamoDbRecord(record, this.settings.streamArn));
      const admitted = records.filter((record) => this.admits(record));
      stats.filteredOut += records.length - admitted.length;
      for (let index = 0; index < admitted.length; index += this.settings.batchSize) {
        await this.deliver(admitted.slice(index, index + this.settings.batchSize), shard.shardId, stats);
      }
      // Checkpoint only once the records are handled (delivered, or given up on by the rules).
      shard.lastSequenceNumber = Records[Records.length - 1]?.dynamodb?.SequenceNumber ?? shard.lastSequenceNumber;
      shard.iterator = NextShardIterator;
      if (!NextShardIterator) shard.finished = true;
    }
  }

  /** Shard iterators expire after 15 minutes: an expired one is replaced, resuming after the checkpoint. */
  private async getRecords(shard: ShardState): Promise<{ Records?: StreamSdkRecord[]; NextShardIterator?: string }> {
    try {
      return await this.streams.send(new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: 1000 }));
    } catch (error) {
      if ((error as Error).name !== 'ExpiredIteratorException') throw error;
      const { ShardIterator } = await this.streams.send(
        new GetShardIteratorCommand({
          StreamArn: this.settings.streamArn,
          ShardId: shard.shardId,
          ...(shard.lastSequenceNumber
            ? { ShardIteratorType: ShardIteratorType.AFTER_SEQUENCE_NUMBER, SequenceNumber: shard.lastSequenceNumber }
            : { ShardIteratorType: ShardIteratorType.TRIM_HORIZON }),
        }),
      );
      shard.iterator = ShardIterator;
      return this.streams.send(new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: 1000 }));
    }
  }

  private expired(record: DynamoDBRecord, now: number): boolean {
    const { maxRecordAgeSeconds } = this.settings;
    const created = record.dynamodb?.ApproximateCreationDateTime;
    return maxRecordAgeSeconds >= 0 && created !== undefined && now / 1000 - created > maxRecordAgeSeconds;
  }

  private async deliver(batch: DynamoDBRecord[], shardId: string, stats: StreamPumpStats): Promise<void> {
    const { settings } = this;
    const work: Array<{ records: DynamoDBRecord[]; retries: number }> = [{ records: batch, retries: 0 }];
    while (work.length > 0) {
      const item = work.shift();
      if (!item) break;
      const now = Date.now();
      const expired = item.records.filter((record) => this.expired(record, now));
      if (expired.length > 0) {
        await this.giveUp(expired, shardId, 'RecordAgeExceeded', item.retries + 1, 'RecordAgeExceeded', stats);
      }
      const records = item.records.filter((record) => !this.expired(record, now));
      if (records.length === 0) continue;

      const result = await this.fn.invoke(buildDynamoDbStreamEvent(records));
      stats.invocations += 1;
      const failedFrom = firstFailedIndex(records, result, settings.reportBatchItemFailures);
      if (failedFrom === -1) {
        stats.delivered += records.length;
        continue;
      }
      stats.delivered += failedFrom;
      if (!result.ok) stats.functionErrors.push(`${result.errorType}: ${result.errorMessage}`);
      const remaining = records.slice(failedFrom);
      // Splitting on a function error does not use up a retry; a single failing record does.
      if (!result.ok && settings.bisectOnError && remaining.length > 1) {
        const half = Math.ceil(remaining.length / 2);
        stats.bisections += 1;
        work.unshift({ records: remaining.slice(0, half), retries: item.retries }, { records: remaining.slice(half), retries: item.retries });
        continue;
      }
      if (settings.retryAttempts >= 0 && item.retries >= settings.retryAttempts) {
        const error = result.ok ? 'BatchItemFailure' : result.errorType;
        await this.giveUp(remaining, shardId, 'RetryAttemptsExhausted', item.retries + 1, error, stats, result.requestId);
        continue;
      }
      stats.retries += 1;
      if (settings.retryDelayMs > 0) await sleep(settings.retryDelayMs);
      work.unshift({ records: remaining, retries: item.retries + 1 });
    }
  }

  private async giveUp(
    records: DynamoDBRecord[],
    shardId: string,
    condition: 'RetryAttemptsExhausted' | 'RecordAgeExceeded',
    invokeCount: number,
    functionError: string,
    stats: StreamPumpStats,
    requestId = '',
  ): Promise<void> {
    stats.discarded += records.length;
    const { onFailureQueueUrl, streamArn } = this.settings;
    if (!onFailureQueueUrl) return;
    const failure = buildStreamFailureRecord({
      records,
      shardId,
      streamArn,
      functionArn: this.fn.arn,
      requestId,
      condition,
      invokeCount,
      functionError,
    });
    await this.sqs.send(new SendMessageCommand({ QueueUrl: onFailureQueueUrl, MessageBody: JSON.stringify(failure) }));
  }
}
