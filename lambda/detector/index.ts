/**
 * Detector: SQS batch of ScanMessages -> one detection per instance, partial batch failures reported
 * (a malformed body fails only its own record, which ends in the DLQ after maxReceiveCount).
 *
 * Reads at module load (set them before importing): LEDGER_TABLE_NAME, STALE_CLAIM_MS,
 * FAILED_RETRY_BACKOFF_MS, plus the standard AWS SDK and Powertools variables.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ledgerDocumentClient, rdsClient, rdsThrottleRetries } from '../shared/clients';
import { readDetectorConfig } from '../shared/config';
import { METRICS } from '../shared/contract';
import { type DetectSummary, detectChanges, parseScanMessage } from '../shared/detect';
import { Ledger } from '../shared/ledger';
import { countMetric, logger, publishMetrics, secondsMetric } from '../shared/powertools';
import { RdsLogReader } from '../shared/rds-log-reader';

const config = readDetectorConfig(process.env);
const processor = new BatchProcessor(EventType.SQS);
const dependencies = {
  reader: new RdsLogReader(rdsClient()),
  ledger: new Ledger(ledgerDocumentClient(), config.ledgerTableName),
  config,
  logger,
  now: Date.now,
};

const recordHandler = async (record: SQSRecord): Promise<DetectSummary> => {
  try {
    const message = parseScanMessage(record.body);
    const summary = await detectChanges(dependencies, message);
    if (summary.lost.length > 0) countMetric(METRICS.lostLogFiles, summary.lost.length);
    // One value per instance and scan; the alarm reads the Maximum over all of them.
    secondsMetric(METRICS.backupLagSeconds, summary.backupLagSeconds);
    return summary;
  } catch (error) {
    // Rethrown: the batch reports the record as failed; logged here because the processor does not.
    logger.error('scan message failed', { messageId: record.messageId, error });
    throw error;
  }
};

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  logger.addContext(context);
  try {
    // One instance at a time: the RDS API budget is account-wide.
    return await processPartialResponse(event, recordHandler, processor, { context, processInParallel: false });
  } finally {
    // Every invocation reports its throttle retries, 0 included, so a quiet series means "not run".
    countMetric(METRICS.throttleRetries, rdsThrottleRetries.take());
    publishMetrics();
  }
};
