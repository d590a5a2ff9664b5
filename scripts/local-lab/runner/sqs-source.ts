/**
 * Lambda's SQS event source mapping: receive a batch, invoke the function with a real SQSEvent, delete
 * what succeeded; what failed stays in the queue and becomes visible again, and SQS itself (moto honours
 * the redrive policy) moves a message to the dead-letter queue after maxReceiveCount receives.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { buildSqsEvent } from './events';
import type { InvokeResult, LambdaFunction } from './lambda-function';

export interface SqsSourceSettings {
  queueUrl: string;
  queueArn: string;
  region: string;
  batchSize: number;
  reportBatchItemFailures: boolean;
  /**
   * Lab-time stand-in for the queue's visibility timeout after a failure: how long a failed message
   * stays invisible before it is received again.
   */
  retryDelaySeconds: number;
}

export interface SqsPumpStats {
  batches: number;
  messages: number;
  succeeded: number;
  failed: number;
  functionErrors: string[];
}

/** Stats of a pump that has done nothing yet. */
export function emptySqsPumpStats(): SqsPumpStats {
  return { batches: 0, messages: 0, succeeded: 0, failed: 0, functionErrors: [] };
}

const SQS_BATCH_LIMIT = 10;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let index = 0; index < items.length; index += size) result.push(items.slice(index, index + size));
  return result;
}

/**
 * Which messages of a batch failed, by Lambda's rules: a function error fails the whole batch; with
 * ReportBatchItemFailures, the listed message ids fail; an invalid response (unknown or missing id)
 * fails the whole batch.
 */
export function failedMessageIds(
  messageIds: readonly string[],
  result: InvokeResult,
  reportBatchItemFailures: boolean,
): Set<string> {
  const all = new Set(messageIds);
  if (!result.ok) return all;
  if (!reportBatchItemFailures || result.value === null || typeof result.value !== 'object') return new Set();
  const failures = (result.value as Partial<SQSBatchResponse>).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) return all;
  const failed = new Set<string>();
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || !all.has(id)) return all;
    failed.add(id);
  }
  return failed;
}

export class SqsEventSource {
  constructor(
    private readonly sqs: SQSClient,
    private readonly fn: LambdaFunction,
    readonly settings: SqsSourceSettings,
  ) {}

  /**
   * Delivers batches until the queue has no visible message left (or `maxBatches`). Counts into `stats`
   * as it goes, so a poller's tally keeps a delivery's function error even when a later step of the
   * pump fails.
   */
  async pump(maxBatches = 1000, stats: SqsPumpStats = emptySqsPumpStats()): Promise<SqsPumpStats> {
    const { settings } = this;
    for (let batch = 0; batch < maxBatches; batch += 1) {
      const { Messages = [] } = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: settings.queueUrl,
          MaxNumberOfMessages: Math.min(settings.batchSize, SQS_BATCH_LIMIT),
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      if (Messages.length === 0) break;
      stats.batches += 1;
      stats.messages += Messages.length;
      await this.deliver(Messages, stats);
    }
    return stats;
  }

  private async deliver(messages: Message[], stats: SqsPumpStats): Promise<void> {
    const { settings } = this;
    const event = buildSqsEvent(messages, settings.queueArn, settings.region);
    const result = await this.fn.invoke(event);
    if (!result.ok) stats.functionErrors.push(`${result.errorType}: ${result.errorMessage}`);
    const failed = failedMessageIds(
      event.Records.map((record) => record.messageId),
      result,
      settings.reportBatchItemFailures,
    );
    const succeededMessages = messages.filter((message) => !failed.has(message.MessageId ?? ''));
    const failedMessages = messages.filter((message) => failed.has(message.MessageId ?? ''));
    stats.succeeded += succeededMessages.length;
    stats.failed += failedMessages.length;
    for (const group of chunks(succeededMessages, SQS_BATCH_LIMIT)) {
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: settings.queueUrl,
          Entries: group.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
        }),
      );
    }
    for (const group of chunks(failedMessages, SQS_BATCH_LIMIT)) {
      await this.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: settings.queueUrl,
          Entries: group.map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle,
            VisibilityTimeout: settings.retryDelaySeconds,
          })),
        }),
      );
    }
  }
}
