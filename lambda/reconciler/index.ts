/**
 * Reconciler: invoked on a schedule, whose event carries the time the run was scheduled for
 * (RECONCILE_EVENT_FIELDS). Verifies the backup against the ledger and RDS's listing
 * (lambda/shared/verify.ts): a scheduled run the recent items and its share of a rolling sweep over the
 * older ones, a run invoked any other way everything (reconcile.ts, verifyScope). Re-drives stuck
 * items, publishes the number of findings as VerifierFindings (0 for a clean run; per-code counts ride
 * along as EMF metadata) and returns the summary. The findings themselves are logged.
 *
 * Reads at module load (set them before importing): LEDGER_TABLE_NAME, BACKUP_BUCKET_NAME,
 * INCLUDE_INSTANCES, EXCLUDE_INSTANCES, STALE_CLAIM_MS, FAILED_RETRY_BACKOFF_MS, VERIFY_WINDOW_MS,
 * VERIFY_SWEEP_MS, RECONCILE_RATE_MS, plus the standard AWS SDK and Powertools variables.
 */
import type { Context } from 'aws-lambda';
import { BackupObjects } from '../shared/backup-objects';
import { ledgerDocumentClient, rdsClient, rdsThrottleRetries, s3Client } from '../shared/clients';
import { readReconcilerConfig } from '../shared/config';
import { METRICS, RECONCILE_EVENT_FIELDS } from '../shared/contract';
import { Ledger } from '../shared/ledger';
import { countMetric, logger, metrics, publishMetrics } from '../shared/powertools';
import { RdsLogReader } from '../shared/rds-log-reader';
import { type ReconcileSummary, reconcile } from '../shared/reconcile';
import { discoverAuditEnabledInstances } from '../shared/scan';

const config = readReconcilerConfig(process.env);
const dependencies = {
  ledger: new Ledger(ledgerDocumentClient(), config.ledgerTableName),
  objects: new BackupObjects(s3Client(), config.bucketName),
  rds: {
    reader: new RdsLogReader(rdsClient()),
    instances: async () =>
      (await discoverAuditEnabledInstances(rdsClient(), config, logger)).sources.map((source) => source.DBInstanceIdentifier),
  },
  logger,
  now: Date.now,
};

/** Findings logged one by one per run; the rest are counted (the CLI prints them all). */
const MAX_FINDINGS_LOGGED = 200;

/**
 * The time the schedule meant the run for, or undefined for an event without one (a run started by
 * hand). A scheduled time that is not a time is refused rather than taken as "verify everything".
 */
export function scheduledTimeOf(event: unknown): number | undefined {
  if (typeof event !== 'object' || event === null || !(RECONCILE_EVENT_FIELDS.scheduledTime in event)) return undefined;
  const raw = (event as Record<string, unknown>)[RECONCILE_EVENT_FIELDS.scheduledTime];
  const time = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(time)) {
    throw new Error(`the reconciler's event has a ${RECONCILE_EVENT_FIELDS.scheduledTime} that is not an ISO 8601 time: ${JSON.stringify(raw)}`);
  }
  return time;
}

export const handler = async (event: unknown, context: Context): Promise<ReconcileSummary> => {
  logger.addContext(context);
  try {
    const scheduledTime = scheduledTimeOf(event);
    const { report, summary } = await reconcile(
      dependencies,
      config,
      { remainingMs: () => context.getRemainingTimeInMillis() },
      scheduledTime,
    );
    countMetric(METRICS.verifierFindings, summary.findings);
    metrics.addMetadata('findingsByCode', JSON.stringify(summary.findingsByCode));
    for (const finding of report.findings.slice(0, MAX_FINDINGS_LOGGED)) logger.warn('verifier finding', { finding });
    const log = summary.findings > 0 ? logger.error.bind(logger) : logger.info.bind(logger);
    log('completeness verification', { summary, scope: report.options, totals: report.totals, findingsNotLogged: Math.max(0, summary.findings - MAX_FINDINGS_LOGGED) });
    return summary;
  } finally {
    countMetric(METRICS.throttleRetries, rdsThrottleRetries.take());
    publishMetrics();
  }
};
