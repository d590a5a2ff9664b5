/**
 * Scanner: invoked by EventBridge Scheduler (the event carries nothing it needs). Queues one
 * ScanMessage per audit-enabled Aurora MySQL instance.
 *
 * Reads at module load (set them before importing): SCAN_QUEUE_URL, INCLUDE_INSTANCES,
 * EXCLUDE_INSTANCES, plus the standard AWS SDK and Powertools variables.
 */
import type { Context } from 'aws-lambda';
import { rdsClient, rdsThrottleRetries, sqsClient } from '../shared/clients';
import { readScannerConfig } from '../shared/config';
import { METRICS } from '../shared/contract';
import { countMetric, logger, publishMetrics } from '../shared/powertools';
import { type ScanSummary, scanAuditEnabledInstances } from '../shared/scan';

const config = readScannerConfig(process.env);

export const handler = async (_event: unknown, context: Context): Promise<ScanSummary> => {
  logger.addContext(context);
  try {
    const summary = await scanAuditEnabledInstances({
      rds: rdsClient(),
      sqs: sqsClient(),
      config,
      logger,
      now: Date.now,
    });
    countMetric(METRICS.instancesScanned, summary.queued.length);
    return summary;
  } finally {
    // Every invocation reports its throttle retries, 0 included, so a quiet series means "not run".
    countMetric(METRICS.throttleRetries, rdsThrottleRetries.take());
    publishMetrics();
  }
};
