import * as path from 'node:path';
import { Arn, ArnFormat, Duration, RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CONFIG_DEFAULTS } from '../../lambda/shared/config';
import {
  DOWNLOADER_STREAM_FILTERS,
  ENV,
  IDEMPOTENCY_KEY,
  LEDGER_KEY,
  LEDGER_STREAM_VIEW_TYPE,
  LOG_OBJECT_PREFIX,
  METRICS,
  RECONCILE_EVENT_FIELDS,
} from '../../lambda/shared/contract';
import { EvidenceBucket, EvidenceRetentionOptions } from './evidence-bucket';
import { HouseFunction } from './house-function';
import { MetricSources, PipelineMonitoring } from './pipeline-monitoring';

export interface BackupPipelineProps extends EvidenceRetentionOptions {
  /** How often the scanner looks for audit-enabled instances. @default Duration.minutes(15) */
  readonly scheduleRate?: Duration;
  /** Back up only these DB instance identifiers. @default - every audit-enabled Aurora MySQL instance */
  readonly includeInstances?: string[];
  /** Never back up these DB instance identifiers (applied after includeInstances). @default - none */
  readonly excludeInstances?: string[];
  /**
   * Keep the ledger, the bucket, their key and the logs when the stack is deleted. `false` is for a
   * throw-away lab: everything is destroyed, buckets emptied first.
   * @default true
   */
  readonly retainData?: boolean;
  /**
   * Cap on concurrent downloader invocations: the RDS API budget is account-wide and shared with the
   * console and IaC, so the downloader must not take all of it.
   * @default - unreserved (bounded only by the number of stream shards, parallelization factor 1)
   */
  readonly downloaderReservedConcurrency?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Lag (age of the oldest audit log byte not yet stored) above which the backup-lag alarm fires; at
   * least a minute and under 24 h, and meant to exceed the schedule rate.
   * @default Duration.hours(2)
   */
  readonly backupLagAlarmThreshold?: Duration;
  /** Email address subscribed to the alarm topic (it must confirm the subscription). @default - none */
  readonly alarmEmail?: string;
}

const LAMBDA_ROOT = path.join(__dirname, '..', '..', 'lambda');

/** Powertools service names: the `service` key in every log line and the `service` metric dimension. */
export const PIPELINE_SERVICE_NAMES = {
  scanner: 'audit-log-scanner',
  detector: 'audit-log-detector',
  downloader: 'audit-log-downloader',
  /** The scheduled completeness verifier, which also re-drives stuck items. */
  reconciler: 'audit-log-reconciler',
} as const;

/**
 * Which handler publishes which custom metric (by Powertools service, the metric's only dimension).
 * Alarms and graphs read exactly these series: a handler publishing a metric must be listed here.
 */
export const METRIC_SOURCES: MetricSources = {
  lostLogFiles: [PIPELINE_SERVICE_NAMES.detector, PIPELINE_SERVICE_NAMES.downloader],
  failedLogFiles: [PIPELINE_SERVICE_NAMES.downloader],
  bytesBackedUp: [PIPELINE_SERVICE_NAMES.downloader],
  filesBackedUp: [PIPELINE_SERVICE_NAMES.downloader],
  portionCalls: [PIPELINE_SERVICE_NAMES.downloader],
  instancesScanned: [PIPELINE_SERVICE_NAMES.scanner],
  backupLagSeconds: [PIPELINE_SERVICE_NAMES.detector],
  throttleRetries: [
    PIPELINE_SERVICE_NAMES.scanner,
    PIPELINE_SERVICE_NAMES.detector,
    PIPELINE_SERVICE_NAMES.downloader,
    PIPELINE_SERVICE_NAMES.reconciler,
  ],
  verifierFindings: [PIPELINE_SERVICE_NAMES.reconciler],
};

/**
 * How often the reconciler verifies the backup and re-drives stuck items. Each run checks what changed
 * within VERIFY_SWEEP and its share of the older objects (a HEAD each), so it runs far less often than
 * the scan.
 */
export const DEFAULT_RECONCILE_RATE = Duration.millis(CONFIG_DEFAULTS.reconcileRateMs);

/** Every stored object's checksum is compared with the ledger's at least once in this period. */
export const VERIFY_SWEEP = Duration.millis(CONFIG_DEFAULTS.verifySweepMs);

/** Default of BackupPipelineProps.backupLagAlarmThreshold. */
export const DEFAULT_BACKUP_LAG_ALARM_THRESHOLD = Duration.hours(2);
/**
 * Stream records waiting this long mean the downloader is stuck or far behind; the event source drops
 * records at `maxRecordAge` (6 h), so this leaves hours to react before anything reaches the failure queue.
 */
const STREAM_ITERATOR_AGE_ALARM_THRESHOLD = Duration.hours(1);

/** Lambda polls SQS with the queue's visibility timeout: it must exceed every retry of a batch in flight. */
const SQS_VISIBILITY_PER_FUNCTION_TIMEOUT = 6;
/** An IN_PROGRESS claim older than this many downloader timeouts belongs to a dead invocation. */
const STALE_CLAIM_DOWNLOADER_TIMEOUTS = 3;
/**
 * Largest object one downloader pass spools to /tmp before its PUT. Above Aurora's ~100 MB rotation size,
 * so a file backed up in one pass is one object; no larger, because a crash mid-spool re-downloads up to
 * this much, and the last object of a pass can only be stored after its last page is read: the end of
 * a pass waits for that PUT (on the bench's 1 GiB file 256 MiB objects kept ~2 s of a ~15 s pass).
 */
const MAX_OBJECT_SIZE = Size.mebibytes(128);
/**
 * A small young generation for the downloader (V8's default grows to 16 MiB per semi-space). Every page
 * arrives as ~1 MB of socket buffers that die right after it is spooled; they are freed only when a
 * scavenge runs, and with a large young generation and little JavaScript allocation per page that is
 * rarely, so dead page buffers pile up to tens of MiB and full mark-compacts follow. Measured on the
 * local lab (2 cores, Node 20, 256 MiB escaped file): with the page-buffer reuse of the RDS client,
 * memory growth ~47 -> ~18 MiB, full mark-compacts ~25 -> 1, CPU time down by a quarter. Published
 * Lambda Node bootstraps pass their own --max-semi-space-size on the command line, which would win over
 * NODE_OPTIONS; unverified for the Node 22 runtime (see the README's memory notes).
 */
const DOWNLOADER_SEMI_SPACE_OPTION = '--max-semi-space-size=2';
/**
 * /tmp holds the spool being filled and the one being stored in the background (2 x MAX_OBJECT_SIZE),
 * plus any a crashed invocation left behind in a reused environment (removed once 20 minutes old).
 * Every MB above Lambda's free 512 MB is billed.
 */
const DOWNLOADER_EPHEMERAL_STORAGE = Size.gibibytes(1);

/**
 * Ledger actions each function calls; nothing broader (no deletes, no batch or transactional writes).
 * The detector lists an instance's items, creates PENDING items and updates them; the downloader only
 * reads and conditionally updates the item it works on (claim, checkpoint, done, release); the reconciler
 * alone reads the whole table and never creates items.
 */
const LEDGER_ACTIONS = {
  detector: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  downloader: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
  /** Reads every item (Scan, or Query per instance) and re-drives stuck ones with conditional updates. */
  reconciler: ['dynamodb:Scan', 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
} as const;
/** What the Powertools DynamoDB persistence layer calls. */
const IDEMPOTENCY_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];

/**
 * The audit-log backup pipeline: EventBridge Scheduler -> scanner -> SQS -> detector -> DynamoDB ledger
 * -> stream -> downloader -> S3. Standalone: it needs nothing from the lab and discovers instances at
 * run time.
 */
export class BackupPipeline extends Construct {
  /** Backed-up audit logs under `logs/`; encrypted with `bucketKey`; retention and WORM per props. */
  public readonly bucket: EvidenceBucket;
  public readonly bucketKey: kms.IKey;
  public readonly accessLogBucket: s3.IBucket;
  public readonly ledgerTable: dynamodb.Table;
  public readonly idempotencyTable: dynamodb.Table;
  public readonly scanQueue: sqs.Queue;
  public readonly scanDeadLetterQueue: sqs.Queue;
  /**
   * Scheduled runs that never completed: failed Scheduler deliveries, and scanner or reconciler
   * invocations out of retries.
   */
  public readonly scanRunDeadLetterQueue: sqs.Queue;
  public readonly downloaderFailureQueue: sqs.Queue;
  public readonly scanner: HouseFunction;
  public readonly detector: HouseFunction;
  public readonly downloader: HouseFunction;
  public readonly reconciler: HouseFunction;
  public readonly schedule: scheduler.Schedule;
  public readonly reconcileSchedule: scheduler.Schedule;
  public readonly scheduleGroup: scheduler.ScheduleGroup;
  /** Every alarm; each notifies `alarmTopic`. */
  public readonly alarms: cloudwatch.Alarm[];
  public readonly alarmTopic: sns.ITopic;
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: BackupPipelineProps = {}) {
    super(scope, id);

    const scheduleRate = props.scheduleRate ?? Duration.minutes(15);
    const retainData = props.retainData ?? true;
    const dataRemovalPolicy = retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const stack = Stack.of(this);

    // ---- Storage -------------------------------------------------------------------------------------

    const bucket = new EvidenceBucket(this, 'Bucket', {
      retainData,
      accessLogPrefix: 'backup-bucket/',
      objectLockMode: props.objectLockMode,
      retentionDays: props.retentionDays,
      archiveStorageClass: props.archiveStorageClass,
      archiveAfterDays: props.archiveAfterDays,
      retentionAdminRoleArn: props.retentionAdminRoleArn,
    });
    const { bucketKey, accessLogBucket } = bucket;

    const ledgerTable = new dynamodb.Table(this, 'LedgerTable', {
      partitionKey: { name: LEDGER_KEY.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_KEY.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The ledger holds file names, sizes, offsets and digests, never log content: the AWS managed key
      // is enough and needs no grants.
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      stream: dynamodb.StreamViewType[LEDGER_STREAM_VIEW_TYPE],
      deletionProtection: retainData,
      removalPolicy: dataRemovalPolicy,
    });

    // Idempotency records expire a day after use and only guard against stream replays, which end with
    // the stack: destroying this table with the stack loses nothing, retaining it would leave orphans.
    const idempotencyTable = new dynamodb.Table(this, 'IdempotencyTable', {
      partitionKey: { name: IDEMPOTENCY_KEY.partitionKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: IDEMPOTENCY_KEY.ttlAttribute,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // ---- Functions -----------------------------------------------------------------------------------

    const functionDefaults = {
      metricsNamespace: METRICS.namespace,
      logRetention,
      logRemovalPolicy: dataRemovalPolicy,
    };

    const scannerTimeout = Duration.minutes(1);
    const detectorTimeout = Duration.minutes(2);
    const downloaderTimeout = Duration.minutes(10);
    const reconcilerTimeout = Duration.minutes(10);
    const staleClaimMs = String(downloaderTimeout.toMilliseconds() * STALE_CLAIM_DOWNLOADER_TIMEOUTS);

    const scanDeadLetterQueue = secureQueue(this, 'ScanDeadLetterQueue', { retentionPeriod: Duration.days(14) });
    const scanQueue = secureQueue(this, 'ScanQueue', {
      visibilityTimeout: Duration.seconds(detectorTimeout.toSeconds() * SQS_VISIBILITY_PER_FUNCTION_TIMEOUT),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: scanDeadLetterQueue, maxReceiveCount: 5 },
    });

    const scanner = new HouseFunction(this, 'Scanner', {
      ...functionDefaults,
      entry: path.join(LAMBDA_ROOT, 'scanner', 'index.ts'),
      serviceName: PIPELINE_SERVICE_NAMES.scanner,
      description: 'Finds audit-enabled Aurora MySQL instances and queues one scan message per instance',
      timeout: scannerTimeout,
      environment: {
        [ENV.scanQueueUrl]: scanQueue.queueUrl,
        [ENV.includeInstances]: (props.includeInstances ?? []).join(','),
        [ENV.excludeInstances]: (props.excludeInstances ?? []).join(','),
      },
    });

    const detector = new HouseFunction(this, 'Detector', {
      ...functionDefaults,
      entry: path.join(LAMBDA_ROOT, 'detector', 'index.ts'),
      serviceName: PIPELINE_SERVICE_NAMES.detector,
      description: 'Compares RDS audit log listings with the ledger and marks new bytes PENDING',
      timeout: detectorTimeout,
      environment: {
        [ENV.ledgerTable]: ledgerTable.tableName,
        [ENV.staleClaimMs]: staleClaimMs,
      },
    });

    const downloader = new HouseFunction(this, 'Downloader', {
      ...functionDefaults,
      entry: path.join(LAMBDA_ROOT, 'downloader', 'index.ts'),
      serviceName: PIPELINE_SERVICE_NAMES.downloader,
      description: 'Copies PENDING audit log bytes from RDS to S3 as checksummed, never-rewritten segments',
      timeout: downloaderTimeout,
      // Memory buys CPU for SHA-256 and network throughput; it does not grow with file size.
      memorySize: 1024,
      ephemeralStorageSize: DOWNLOADER_EPHEMERAL_STORAGE,
      reservedConcurrentExecutions: props.downloaderReservedConcurrency,
      nodeOptions: [DOWNLOADER_SEMI_SPACE_OPTION],
      environment: {
        [ENV.ledgerTable]: ledgerTable.tableName,
        [ENV.idempotencyTable]: idempotencyTable.tableName,
        [ENV.bucket]: bucket.bucketName,
        // Room to finish the PUT of a full spool and write the checkpoint before the timeout (the
        // downloader keeps one more margin while a background store is in flight).
        [ENV.safetyMarginMs]: String(Duration.seconds(90).toMilliseconds()),
        [ENV.maxObjectBytes]: String(MAX_OBJECT_SIZE.toBytes()),
        [ENV.spoolDir]: '/tmp',
      },
    });

    const reconciler = new HouseFunction(this, 'Reconciler', {
      ...functionDefaults,
      entry: path.join(LAMBDA_ROOT, 'reconciler', 'index.ts'),
      serviceName: PIPELINE_SERVICE_NAMES.reconciler,
      description: 'Verifies ledger, S3 objects and checksums against RDS listings; re-drives stuck items',
      timeout: reconcilerTimeout,
      memorySize: 512,
      environment: {
        [ENV.ledgerTable]: ledgerTable.tableName,
        [ENV.bucket]: bucket.bucketName,
        [ENV.includeInstances]: (props.includeInstances ?? []).join(','),
        [ENV.excludeInstances]: (props.excludeInstances ?? []).join(','),
        // The same staleness the detector applies to claims: both judge the same items.
        [ENV.staleClaimMs]: staleClaimMs,
        // With the scheduled time in each run's event, these split the older objects over the runs.
        [ENV.reconcileRateMs]: String(DEFAULT_RECONCILE_RATE.toMilliseconds()),
        [ENV.verifySweepMs]: String(VERIFY_SWEEP.toMilliseconds()),
      },
    });

    // ---- Wiring --------------------------------------------------------------------------------------

    const scanRunDeadLetterQueue = secureQueue(this, 'ScanRunDeadLetterQueue', {
      retentionPeriod: Duration.days(14),
    });
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: 'Lets EventBridge Scheduler invoke the audit-log scanner and reconciler',
    });
    // A scan that starts after the next one is due only duplicates work (Scheduler allows 1 min to 24 h;
    // Lambda's async queue at most 6 h).
    const scanMaxAge = (limit: Duration): Duration =>
      Duration.seconds(Math.min(Math.max(scheduleRate.toSeconds(), 60), limit.toSeconds()));
    // A group of its own: AWS/Scheduler publishes metrics per schedule group, so the scheduler alarm
    // sees the pipeline's two schedules alone rather than everything in the account's default group.
    const scheduleGroup = new scheduler.ScheduleGroup(this, 'ScanScheduleGroup', {
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const schedule = new scheduler.Schedule(this, 'ScanSchedule', {
      description: 'Starts an audit-log scan',
      scheduleGroup,
      schedule: scheduler.ScheduleExpression.rate(scheduleRate),
      target: new schedulerTargets.LambdaInvoke(scanner, {
        role: scheduleRole,
        deadLetterQueue: scanRunDeadLetterQueue,
        retryAttempts: 3,
        maxEventAge: scanMaxAge(Duration.hours(24)),
      }),
    });
    // Scheduler invokes the scanner asynchronously, so its DLQ only catches failed deliveries. A scan
    // that fails inside the function is retried by Lambda and then lands in the same queue (and alarm).
    scanner.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: scanMaxAge(Duration.hours(6)),
      onFailure: new SqsDestination(scanRunDeadLetterQueue),
    });

    // The reconciler the same way, in the same group and queue: a verification that never ran is as
    // much a failed scheduled run as a scan that never ran. A run older than the rate is superseded by
    // the next one; a failed run is retried once, harmlessly: the retry carries the same scheduled time
    // (the same share of the sweep) and its re-drives are conditional writes.
    const reconcileSchedule = new scheduler.Schedule(this, 'ReconcileSchedule', {
      description: 'Starts a completeness verification and re-drive of stuck ledger items',
      scheduleGroup,
      schedule: scheduler.ScheduleExpression.rate(DEFAULT_RECONCILE_RATE),
      target: new schedulerTargets.LambdaInvoke(reconciler, {
        role: scheduleRole,
        // Tells the run which share of the rolling sweep is its own; a retry keeps the same time.
        input: scheduler.ScheduleTargetInput.fromObject({ [RECONCILE_EVENT_FIELDS.scheduledTime]: scheduler.ContextAttribute.scheduledTime }),
        deadLetterQueue: scanRunDeadLetterQueue,
        retryAttempts: 3,
        maxEventAge: DEFAULT_RECONCILE_RATE,
      }),
    });
    reconciler.configureAsyncInvoke({
      retryAttempts: 1,
      maxEventAge: DEFAULT_RECONCILE_RATE,
      onFailure: new SqsDestination(scanRunDeadLetterQueue),
    });

    detector.addEventSource(
      new SqsEventSource(scanQueue, {
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(5),
        reportBatchItemFailures: true,
        // Each message costs DescribeDBLogFiles pages from the account-wide RDS API budget.
        maxConcurrency: 2,
      }),
    );

    const downloaderFailureQueue = secureQueue(this, 'DownloaderFailureQueue', {
      retentionPeriod: Duration.days(14),
    });
    downloader.addEventSource(
      new DynamoEventSource(ledgerTable, {
        // TRIM_HORIZON: a PENDING transition written before the mapping was enabled (first deploy, or
        // the mapping re-created) is still delivered; LATEST would leave that item PENDING forever.
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        // Each record is up to a whole file's download: keep batches small so one slow file does not hold
        // many others, and so a failing record is isolated in a few bisections.
        batchSize: 5,
        parallelizationFactor: 1,
        bisectBatchOnError: true,
        retryAttempts: 5,
        // The ledger stays the source of truth: a record dropped here leaves the item PENDING or FAILED
        // for the detector and the failure queue to surface, instead of blocking the shard for 24 h.
        maxRecordAge: Duration.hours(6),
        reportBatchItemFailures: true,
        onFailure: new SqsDlq(downloaderFailureQueue),
        filters: DOWNLOADER_STREAM_FILTERS.map((pattern) => lambda.FilterCriteria.filter(pattern)),
      }),
    );

    // ---- Permissions (explicit statements: grant* helpers add actions these functions never call) ----

    // RDS actions take resource-level permissions (service authorization reference): DescribeDBInstances
    // on db, DescribeDBClusters on cluster, DescribeDBClusterParameters on cluster-pg, and the two log
    // actions on db. Instances are discovered at run time, so each is scoped to its type in this account
    // and region rather than to names.
    const anyDbInstance = rdsWildcardArn(stack, 'db');

    scanner.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['rds:DescribeDBInstances'], resources: [anyDbInstance] }),
    );
    scanner.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['rds:DescribeDBClusters'], resources: [rdsWildcardArn(stack, 'cluster')] }),
    );
    scanner.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['rds:DescribeDBClusterParameters'], resources: [rdsWildcardArn(stack, 'cluster-pg')] }),
    );
    scanner.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [scanQueue.queueArn] }),
    );

    detector.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['rds:DescribeDBLogFiles'], resources: [anyDbInstance] }),
    );
    detector.addToRolePolicy(
      new iam.PolicyStatement({ actions: [...LEDGER_ACTIONS.detector], resources: [ledgerTable.tableArn] }),
    );

    // DescribeDBLogFiles: a download refused with DBLogFileNotFoundFault is LOST only if the file is
    // no longer listed (RDS refuses briefly during a rotation).
    downloader.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['rds:DownloadDBLogFilePortion', 'rds:DescribeDBLogFiles'], resources: [anyDbInstance] }),
    );
    // GetObject covers HeadObject: a downloader that finds an open intent (object written, checkpoint
    // not) checks the object's SHA-256 before adopting it. It never reads object bodies.
    downloader.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:GetObject'],
        resources: [bucket.arnForObjects(`${LOG_OBJECT_PREFIX}*`)],
      }),
    );
    // Without ListBucket S3 answers a HEAD of a missing key with 403 instead of 404, and an intent whose
    // PUT never happened could never be told apart from a permissions problem. S3 checks that
    // ListBucket with the requested key as s3:prefix, so the prefix condition still holds for a HEAD.
    downloader.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${LOG_OBJECT_PREFIX}*`] } },
      }),
    );
    // A single PutObject under SSE-KMS needs a data key; the HEAD above asks for the stored checksum
    // (ChecksumMode), which S3 returns for a KMS-encrypted object only to a caller allowed kms:Decrypt.
    downloader.addToRolePolicy(keyUseThroughS3(stack, bucketKey, ['kms:GenerateDataKey', 'kms:Decrypt']));
    downloader.addToRolePolicy(
      new iam.PolicyStatement({ actions: [...LEDGER_ACTIONS.downloader], resources: [ledgerTable.tableArn] }),
    );
    downloader.addToRolePolicy(
      new iam.PolicyStatement({ actions: IDEMPOTENCY_ACTIONS, resources: [idempotencyTable.tableArn] }),
    );

    // The reconciler discovers instances like the scanner, lists their files like the detector, and reads
    // object metadata (HEAD with checksum) under logs/: it never reads object bodies or writes to S3.
    // GetObject covers HeadObject; ListBucket makes a missing object a 404 rather than a 403.
    reconciler.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['rds:DescribeDBInstances', 'rds:DescribeDBLogFiles'], resources: [anyDbInstance] }),
    );
    reconciler.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['rds:DescribeDBClusters'], resources: [rdsWildcardArn(stack, 'cluster')] }),
    );
    reconciler.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['rds:DescribeDBClusterParameters'], resources: [rdsWildcardArn(stack, 'cluster-pg')] }),
    );
    reconciler.addToRolePolicy(
      new iam.PolicyStatement({ actions: [...LEDGER_ACTIONS.reconciler], resources: [ledgerTable.tableArn] }),
    );
    reconciler.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects(`${LOG_OBJECT_PREFIX}*`)] }),
    );
    reconciler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${LOG_OBJECT_PREFIX}*`] } },
      }),
    );
    // The checksum a HEAD returns for a KMS-encrypted object needs kms:Decrypt (see the downloader).
    reconciler.addToRolePolicy(keyUseThroughS3(stack, bucketKey, ['kms:Decrypt']));

    for (const [name, fn] of [['scanner', scanner], ['reconciler', reconciler]] as const) {
      Validations.of(scheduleRole).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
        reason: `CDK's grantInvoke adds the ${name}'s versions and aliases (\`<${name} ARN>:*\`): that one function only.`,
      });
    }
    Validations.of(downloader.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'dynamodb:ListStreams (added by the ledger stream event source) does not support resource-level permissions; every other stream action is scoped to the ledger stream ARN.',
    });
    for (const queue of [scanRunDeadLetterQueue, downloaderFailureQueue]) {
      Validations.of(queue).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason: 'This queue is itself a dead-letter destination (Scheduler target DLQ and scanner/reconciler async on-failure destination / stream event source on-failure destination), which cdk-nag only recognises for SQS redrive policies.',
      });
    }
    for (const fn of [scanner, detector, downloader, reconciler]) {
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-L1',
        reason: 'Node.js 22 is the runtime the design fixes and the handlers and their pinned dependencies are tested on; moving to a newer runtime is a deliberate, tested change.',
      });
    }

    acknowledgeRdsWildcards(scanner, ['db', 'cluster', 'cluster-pg']);
    acknowledgeRdsWildcards(detector, ['db']);
    acknowledgeRdsWildcards(downloader, ['db']);
    acknowledgeRdsWildcards(reconciler, ['db', 'cluster', 'cluster-pg']);
    Validations.of(reconciler.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${LOG_OBJECT_PREFIX}*]`,
      reason: `The reconciler checks every stored object's checksum (HeadObject; GetObject is its permission) under ${LOG_OBJECT_PREFIX}, whose keys are known only at run time; it never reads bodies or writes.`,
    });
    Validations.of(downloader.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${LOG_OBJECT_PREFIX}*]`,
      reason: `Object keys are ${LOG_OBJECT_PREFIX}{instance}/{file}/{start}-{end}, known only at run time; the grant is PutObject under the ${LOG_OBJECT_PREFIX} prefix only.`,
    });

    // ---- Monitoring ----------------------------------------------------------------------------------

    const monitoring = new PipelineMonitoring(this, 'Monitoring', {
      functions: { scanner, detector, downloader, reconciler },
      deadLetterQueues: [
        {
          queue: scanDeadLetterQueue,
          name: 'ScanDeadLetterQueue',
          meaning: 'scan messages the detector failed on 5 times; their instances were not checked. See the detector logs, then redrive.',
        },
        {
          queue: scanRunDeadLetterQueue,
          name: 'ScanRunDeadLetterQueue',
          meaning: 'scheduled scans or verifications that never completed (Scheduler could not deliver, or the scanner or reconciler failed after retries). The message names the schedule or function; see its logs.',
        },
        {
          queue: downloaderFailureQueue,
          name: 'DownloaderFailureQueue',
          meaning: 'ledger stream records the downloader gave up on (metadata only); their ledger items stay PENDING or FAILED for the detector to re-drive. See the downloader logs.',
        },
      ],
      workQueue: scanQueue,
      streamConsumer: downloader,
      scheduleGroup,
      scheduledFunction: scanner,
      scheduleRate,
      otherScheduledFunctions: [
        {
          name: 'Reconcile',
          fn: reconciler,
          rate: DEFAULT_RECONCILE_RATE,
          consequence: 'the backup is not being verified and stuck items are not re-driven',
        },
      ],
      metricSources: METRIC_SOURCES,
      backupLagThreshold: props.backupLagAlarmThreshold ?? DEFAULT_BACKUP_LAG_ALARM_THRESHOLD,
      iteratorAgeThreshold: STREAM_ITERATOR_AGE_ALARM_THRESHOLD,
      alarmEmail: props.alarmEmail,
    });

    this.bucket = bucket;
    this.bucketKey = bucketKey;
    this.accessLogBucket = accessLogBucket;
    this.ledgerTable = ledgerTable;
    this.idempotencyTable = idempotencyTable;
    this.scanQueue = scanQueue;
    this.scanDeadLetterQueue = scanDeadLetterQueue;
    this.scanRunDeadLetterQueue = scanRunDeadLetterQueue;
    this.downloaderFailureQueue = downloaderFailureQueue;
    this.scanner = scanner;
    this.detector = detector;
    this.downloader = downloader;
    this.reconciler = reconciler;
    this.schedule = schedule;
    this.reconcileSchedule = reconcileSchedule;
    this.scheduleGroup = scheduleGroup;
    this.alarms = monitoring.alarms;
    this.alarmTopic = monitoring.topic;
    this.dashboard = monitoring.dashboard;
  }
}

/** Every queue here is encrypted with SQS-managed keys (no key grants for Lambda or Scheduler) and TLS-only. */
function secureQueue(scope: Construct, id: string, props: sqs.QueueProps): sqs.Queue {
  return new sqs.Queue(scope, id, {
    ...props,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  });
}

const RDS_WILDCARD_REASONS = {
  db: 'RDS log APIs act on any audit-enabled instance discovered at run time (none is known at deploy time); scoped to DB instances in this account and region.',
  cluster: 'Instance discovery (scanner, reconciler) reads the cluster of every Aurora instance it finds at run time; scoped to DB clusters in this account and region.',
  'cluster-pg': "Instance discovery (scanner, reconciler) reads each discovered cluster's parameter group (server_audit_logging) at run time; scoped to cluster parameter groups in this account and region.",
} as const;
/** RDS resource types (service authorization reference) the pipeline's RDS actions are scoped to. */
type RdsResourceType = keyof typeof RDS_WILDCARD_REASONS;

function acknowledgeRdsWildcards(fn: HouseFunction, resourceTypes: RdsResourceType[]): void {
  const stack = Stack.of(fn);
  for (const resourceType of resourceTypes) {
    Validations.of(fn.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagFindingText(stack, rdsWildcardArn(stack, resourceType))}]`,
      reason: RDS_WILDCARD_REASONS[resourceType],
    });
  }
}

/**
 * Use of the bucket key only in requests S3 makes on the caller's behalf: a data key for a PutObject
 * under SSE-KMS, and kms:Decrypt because S3 returns the stored checksum of a KMS-encrypted object
 * (HeadObject/GetObject with ChecksumMode) only to a caller allowed to decrypt with its key.
 */
function keyUseThroughS3(stack: Stack, key: kms.IKey, actions: Array<'kms:GenerateDataKey' | 'kms:Decrypt'>): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions,
    resources: [key.keyArn],
    conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.${stack.urlSuffix}` } },
  });
}

/** Every resource of one RDS type in the stack's account and region, e.g. `arn:aws:rds:eu-west-1:123456789012:db:*`. */
function rdsWildcardArn(stack: Stack, resourceType: RdsResourceType): string {
  return Arn.format({ service: 'rds', resource: resourceType, resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }, stack);
}

/**
 * The text cdk-nag shows for a resource in a finding id: the literal ARN when the stack has a concrete
 * environment, pseudo parameters as `<AWS::Region>` etc. when it is environment-agnostic.
 */
function nagFindingText(stack: Stack, value: string): string {
  const resolved: unknown = stack.resolve(value);
  if (typeof resolved === 'string') return resolved;
  const join = (resolved as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (!join) throw new Error(`cannot express ${JSON.stringify(resolved)} as a cdk-nag finding`);
  return join[1]
    .map((part) => {
      if (typeof part === 'string') return part;
      const ref = (part as { Ref?: string }).Ref;
      if (ref) return `<${ref}>`;
      throw new Error(`cannot express ${JSON.stringify(part)} as a cdk-nag finding`);
    })
    .join(join[0]);
}
