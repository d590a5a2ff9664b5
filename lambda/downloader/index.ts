/**
 * Downloader: ledger stream records (filtered to transitions into PENDING) -> one backup pass per
 * record, each made idempotent on the logical work and reported as partial batch failures.
 *
 * Reads at module load (set them before importing): LEDGER_TABLE_NAME, IDEMPOTENCY_TABLE_NAME,
 * BACKUP_BUCKET_NAME, DOWNLOAD_SAFETY_MARGIN_MS, MAX_OBJECT_BYTES, SPOOL_DIR, plus the standard AWS SDK
 * and Powertools variables (POWERTOOLS_IDEMPOTENCY_DISABLED is read here too).
 */
import { randomUUID } from 'node:crypto';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { dynamoDbClient, ledgerDocumentClient, rdsClient, rdsThrottleRetries, s3Client } from '../shared/clients';
import { readDownloaderConfig } from '../shared/config';
import { LEDGER_ATTR, METRICS } from '../shared/contract';
import { type DownloadResult, backUpLogFile } from '../shared/download';
import { Ledger, type LedgerKey } from '../shared/ledger';
import { bytesMetric, countMetric, logger, publishMetrics } from '../shared/powertools';
import { RdsLogReader } from '../shared/rds-log-reader';
import { SegmentWriter } from '../shared/segment-writer';

const config = readDownloaderConfig(process.env);
const processor = new BatchProcessor(EventType.DynamoDBStreams);
const dependencies = {
  ledger: new Ledger(ledgerDocumentClient(), config.ledgerTableName),
  reader: new RdsLogReader(rdsClient()),
  segments: new SegmentWriter(s3Client(), config.bucketName, config.spoolDir),
  config,
  logger,
  now: Date.now,
};

/**
 * The logical work a record asks for: the file and the state it was handed over in. StatusChangedAt
 * changes on every transition into PENDING, so a hand-off is new work while a replayed stream record
 * is a duplicate.
 */
const IDEMPOTENCY_KEY_PATH = `[${[
  `dynamodb.Keys."${LEDGER_ATTR.instance}".S`,
  `dynamodb.Keys."${LEDGER_ATTR.file}".S`,
  ...[LEDGER_ATTR.size, LEDGER_ATTR.lastWritten, LEDGER_ATTR.backedUpBytes, LEDGER_ATTR.statusChangedAt].map(
    (attr) => `dynamodb.NewImage."${attr}".N`,
  ),
].join(', ')}]`;

/** Longer than the stream's 24 h retention, so any replay of a record still finds its key. */
const IDEMPOTENCY_EXPIRY_SECONDS = 48 * 60 * 60;

const idempotencyConfig = new IdempotencyConfig({
  eventKeyJmesPath: IDEMPOTENCY_KEY_PATH,
  expiresAfterSeconds: IDEMPOTENCY_EXPIRY_SECONDS,
  throwOnNoIdempotencyKey: true,
});

const persistenceStore = new DynamoDBPersistenceLayer({
  tableName: config.idempotencyTableName,
  awsSdkV3Client: dynamoDbClient(),
});

function workOf(record: DynamoDBRecord): LedgerKey {
  const instance = record.dynamodb?.Keys?.[LEDGER_ATTR.instance]?.S;
  const file = record.dynamodb?.Keys?.[LEDGER_ATTR.file]?.S;
  if (!instance || !file) throw new Error(`stream record ${record.eventID} carries no ledger key`);
  return { instance, file };
}

function recordMetrics(result: DownloadResult): void {
  // Adopted bytes were stored by a holder that died before it could count them.
  const bytesBackedUp = result.bytesStored + result.bytesAdopted;
  if (bytesBackedUp > 0) bytesMetric(METRICS.bytesBackedUp, bytesBackedUp);
  if (result.portionCalls > 0) countMetric(METRICS.portionCalls, result.portionCalls);
  if (result.outcome === 'DONE') countMetric(METRICS.filesBackedUp);
  if (result.outcome === 'LOST') countMetric(METRICS.lostLogFiles);
  if (result.outcome === 'FAILED') countMetric(METRICS.failedLogFiles);
}

const backUpRecord = async (record: DynamoDBRecord, context: Context): Promise<DownloadResult> => {
  const work = workOf(record);
  try {
    const result = await backUpLogFile(dependencies, work, `${context.awsRequestId}:${randomUUID()}`, {
      remainingMs: () => context.getRemainingTimeInMillis(),
    });
    recordMetrics(result);
    return result;
  } catch (error) {
    // Rethrown: the item is FAILED in the ledger and the batch reports the record as failed.
    countMetric(METRICS.failedLogFiles);
    logger.error('backup pass failed', { work, eventID: record.eventID, error });
    throw error;
  }
};

const backUpRecordOnce = makeIdempotent(backUpRecord, {
  persistenceStore,
  config: idempotencyConfig,
  keyPrefix: 'audit-log-downloader',
});

export const handler = async (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> => {
  logger.addContext(context);
  idempotencyConfig.registerLambdaContext(context);
  try {
    const abandoned = await dependencies.segments.removeAbandonedSpools(Date.now());
    if (abandoned.length > 0) logger.warn('removed spool files that dead invocations left behind', { abandoned });
    // One file at a time: each pass uses the invocation's remaining time and one page of memory.
    return await processPartialResponse(event, backUpRecordOnce, processor, { context, processInParallel: false });
  } finally {
    // Every invocation reports its throttle retries, 0 included, so a quiet series means "not run".
    countMetric(METRICS.throttleRetries, rdsThrottleRetries.take());
    publishMetrics();
  }
};
