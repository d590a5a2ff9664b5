/**
 * Reconciler: invoked on a schedule (the event carries nothing it needs). Verifies the backup against
 * the ledger and RDS's listing (lambda/shared/verify.ts), re-drives stuck items, publishes the number
 * of findings as VerifierFindings (0 for a clean run; per-code counts ride along as EMF metadata) and
 * returns the summary. The findings themselves are logged.
 *
 * Reads at module load (set them before importing): LEDGER_TABLE_NAME, BACKUP_BUCKET_NAME,
 * INCLUDE_INSTANCES, EXCLUDE_INSTANCES, STALE_CLAIM_MS, FAILED_RETRY_BACKOFF_MS, VERIFY_WINDOW_MS, plus
 * the standard AWS SDK and Powertools variables.
 */
import type { Context } from 'aws-lambda';
import { BackupObjects } from '../shared/backup-objects';
import { ledgerDocumentClient, rdsClient, rdsThrottleRetries, s3Client } from '../shared/clients';
import { readReconcilerConfig } from '../shared/config';
import { METRICS } from '../shared/contract';
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

export const handler = async (_event: unknown, context: Context): Promise<ReconcileSummary> => {
  logger.addContext(context);
  try {
    const { report, summary } = await reconcile(dependencies, config, {
      remainingMs: () => context.getRemainingTimeInMillis(),
    });
    countMetric(METRICS.verifierFindings, summary.findings);
    metrics.addMetadata('findingsByCode', JSON.stringify(summary.findingsByCode));
    for (const finding of report.findings.slice(0, MAX_FINDINGS_LOGGED)) logger.warn('verifier finding', { finding });
    const log = summary.findings > 0 ? logger.error.bind(logger) : logger.info.bind(logger);
    log('completeness verification', { summary, totals: report.totals, findingsNotLogged: Math.max(0, summary.findings - MAX_FINDINGS_LOGGED) });
    return summary;
  } finally {
    countMetric(METRICS.throttleRetries, rdsThrottleRetries.take());
    publishMetrics();
  }
};
