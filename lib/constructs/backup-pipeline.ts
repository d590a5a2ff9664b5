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
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DOWNLOADER_STREAM_FILTERS,
  ENV,
  IDEMPOTENCY_KEY,
  LEDGER_KEY,
  LEDGER_STREAM_VIEW_TYPE,
  LOG_OBJECT_PREFIX,
  METRICS,
} from '../../lambda/shared/contract';
import { HouseFunction } from './house-function';

export interface BackupPipelineProps {
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
}

const LAMBDA_ROOT = path.join(__dirname, '..', '..', 'lambda');

/** Powertools service names: the `service` key in every log line and the `service` metric dimension. */
export const PIPELINE_SERVICE_NAMES = {
  scanner: 'audit-log-scanner',
  detector: 'audit-log-detector',
  downloader: 'audit-log-downloader',
} as const;

/** Lambda polls SQS with the queue's visibility timeout: it must exceed every retry of a batch in flight. */
const SQS_VISIBILITY_PER_FUNCTION_TIMEOUT = 6;
/** An IN_PROGRESS claim older than this many downloader timeouts belongs to a dead invocation. */
const STALE_CLAIM_DOWNLOADER_TIMEOUTS = 3;
/**
 * Largest object one downloader pass spools to /tmp before its PUT. Above Aurora's ~100 MB rotation size,
 * so a file backed up in one pass is one object; bounded, so a crash mid-spool re-downloads at most this.
 */
const MAX_OBJECT_SIZE = Size.mebibytes(256);
/** /tmp holds the current spool plus any a crashed invocation left behind in a reused environment. */
const DOWNLOADER_EPHEMERAL_STORAGE = Size.gibibytes(2);

/**
 * Ledger actions each function calls; nothing broader (no Scan, no deletes, no batch or transactional
 * writes). The detector lists an instance's items, creates PENDING items and updates them; the
 * downloader only reads and conditionally updates the item it works on (claim, checkpoint, done, release).
 */
const LEDGER_ACTIONS = {
  detector: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  downloader: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
} as const;
/** What the Powertools DynamoDB persistence layer calls. */
const IDEMPOTENCY_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];

/**
 * The audit-log backup pipeline: EventBridge Scheduler -> scanner -> SQS -> detector -> DynamoDB ledger
 * -> stream -> downloader -> S3. Standalone: it needs nothing from the lab and discovers instances at
 * run time.
 */
export class BackupPipeline extends Construct {
  /** Backed-up audit logs under `logs/`; encrypted with `bucketKey`. */
  public readonly bucket: s3.IBucket;
  public readonly bucketKey: kms.IKey;
  public readonly accessLogBucket: s3.IBucket;
  public readonly ledgerTable: dynamodb.Table;
  public readonly idempotencyTable: dynamodb.Table;
  public readonly scanQueue: sqs.Queue;
  public readonly scanDeadLetterQueue: sqs.Queue;
  /** Scan runs that never completed: failed Scheduler deliveries and scanner invocations out of retries. */
  public readonly scanRunDeadLetterQueue: sqs.Queue;
  public readonly downloaderFailureQueue: sqs.Queue;
  public readonly scanner: HouseFunction;
  public readonly detector: HouseFunction;
  public readonly downloader: HouseFunction;
  public readonly schedule: scheduler.Schedule;
  /** Alarms that must never fire silently: dead letters and log files lost before they were backed up. */
  public readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: BackupPipelineProps = {}) {
    super(scope, id);

    const scheduleRate = props.scheduleRate ?? Duration.minutes(15);
    const retainData = props.retainData ?? true;
    const dataRemovalPolicy = retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const stack = Stack.of(this);

    // ---- Storage -------------------------------------------------------------------------------------

    // S3 delivers server access logs only to SSE-S3 buckets.
    const accessLogBucket = new s3.Bucket(this, 'AccessLogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy: dataRemovalPolicy,
      autoDeleteObjects: !retainData,
    });
    Validations.of(accessLogBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the server-access-log destination of the backup bucket; logging it would log its own log deliveries.',
    });

    // A customer managed key (not SSE-S3): audit logs are compliance evidence, and a key policy plus
    // CloudTrail records of every data-key use show who could and did read them. Key rotation is yearly;
    // the S3 bucket key keeps KMS request costs flat. The key lives and dies with the bucket: deleting it
    // while the bucket is retained would make every backup unreadable.
    const bucketKey = new kms.Key(this, 'BucketKey', {
      description: 'Encrypts backed-up Aurora MySQL audit logs',
      enableKeyRotation: true,
      removalPolicy: dataRemovalPolicy,
      pendingWindow: Duration.days(30),
    });
    const bucket = new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: bucketKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Objects are written once; versioning keeps an overwrite or delete from destroying a backup.
      versioned: true,
      lifecycleRules: [{ abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      serverAccessLogsBucket: accessLogBucket,
      serverAccessLogsPrefix: 'backup-bucket/',
      removalPolicy: dataRemovalPolicy,
      autoDeleteObjects: !retainData,
    });

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
        [ENV.staleClaimMs]: String(downloaderTimeout.toMilliseconds() * STALE_CLAIM_DOWNLOADER_TIMEOUTS),
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
      environment: {
        [ENV.ledgerTable]: ledgerTable.tableName,
        [ENV.idempotencyTable]: idempotencyTable.tableName,
        [ENV.bucket]: bucket.bucketName,
        // Room to finish the PUT of a full spool and write the checkpoint before the timeout.
        [ENV.safetyMarginMs]: String(Duration.seconds(90).toMilliseconds()),
        [ENV.maxObjectBytes]: String(MAX_OBJECT_SIZE.toBytes()),
        [ENV.spoolDir]: '/tmp',
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
      description: 'Lets EventBridge Scheduler invoke the audit-log scanner',
    });
    // A scan that starts after the next one is due only duplicates work (Scheduler allows 1 min to 24 h;
    // Lambda's async queue at most 6 h).
    const scanMaxAge = (limit: Duration): Duration =>
      Duration.seconds(Math.min(Math.max(scheduleRate.toSeconds(), 60), limit.toSeconds()));
    const schedule = new scheduler.Schedule(this, 'ScanSchedule', {
      description: 'Starts an audit-log scan',
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

    downloader.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['rds:DownloadDBLogFilePortion'], resources: [anyDbInstance] }),
    );
    downloader.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects(`${LOG_OBJECT_PREFIX}*`)],
      }),
    );
    // A single PutObject under SSE-KMS needs a data key and nothing else from the key.
    downloader.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [bucketKey.keyArn] }),
    );
    downloader.addToRolePolicy(
      new iam.PolicyStatement({ actions: [...LEDGER_ACTIONS.downloader], resources: [ledgerTable.tableArn] }),
    );
    downloader.addToRolePolicy(
      new iam.PolicyStatement({ actions: IDEMPOTENCY_ACTIONS, resources: [idempotencyTable.tableArn] }),
    );

    Validations.of(scheduleRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(scanner.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason: "CDK's grantInvoke adds the scanner's versions and aliases (`<scanner ARN>:*`): the one function only.",
    });
    Validations.of(downloader.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'dynamodb:ListStreams (added by the ledger stream event source) does not support resource-level permissions; every other stream action is scoped to the ledger stream ARN.',
    });
    for (const queue of [scanRunDeadLetterQueue, downloaderFailureQueue]) {
      Validations.of(queue).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason: 'This queue is itself a dead-letter destination (Scheduler target DLQ and scanner async on-failure destination / stream event source on-failure destination), which cdk-nag only recognises for SQS redrive policies.',
      });
    }
    for (const fn of [scanner, detector, downloader]) {
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-L1',
        reason: 'Node.js 22 is the runtime the design fixes and the handlers and their pinned dependencies are tested on; moving to a newer runtime is a deliberate, tested change.',
      });
    }

    acknowledgeRdsWildcards(scanner, ['db', 'cluster', 'cluster-pg']);
    acknowledgeRdsWildcards(detector, ['db']);
    acknowledgeRdsWildcards(downloader, ['db']);
    Validations.of(downloader.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${LOG_OBJECT_PREFIX}*]`,
      reason: `Object keys are ${LOG_OBJECT_PREFIX}{instance}/{file}/{start}-{end}, known only at run time; the grant is PutObject under the ${LOG_OBJECT_PREFIX} prefix only.`,
    });

    // ---- Alarms --------------------------------------------------------------------------------------

    const alarms: cloudwatch.Alarm[] = [scanDeadLetterQueue, scanRunDeadLetterQueue, downloaderFailureQueue].map(
      (queue) =>
        new cloudwatch.Alarm(this, `${queue.node.id}Alarm`, {
          alarmDescription: `Messages in ${queue.node.id}: work the pipeline gave up on, see the handler logs`,
          metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
    );
    // The detector marks files LOST when RDS stops listing them; the downloader may find the same when a
    // file vanishes mid-download. Either way the count must reach an alarm.
    const lostByService = Object.fromEntries(
      [PIPELINE_SERVICE_NAMES.detector, PIPELINE_SERVICE_NAMES.downloader].map((service, index) => [
        `lost${index}`,
        new cloudwatch.Metric({
          namespace: METRICS.namespace,
          metricName: METRICS.lostLogFiles,
          dimensionsMap: { service },
          statistic: cloudwatch.Stats.SUM,
          period: Duration.minutes(5),
        }),
      ]),
    );
    alarms.push(
      new cloudwatch.Alarm(this, 'LostLogFilesAlarm', {
        alarmDescription:
          'Audit log files disappeared from RDS before all of their bytes were backed up (ledger status LOST)',
        metric: new cloudwatch.MathExpression({
          label: 'Lost audit log files',
          expression: Object.keys(lostByService)
            .map((id) => `FILL(${id}, 0)`)
            .join(' + '),
          usingMetrics: lostByService,
          period: Duration.minutes(5),
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );

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
    this.schedule = schedule;
    this.alarms = alarms;
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
  cluster: 'The scanner reads the cluster of every Aurora instance it discovers at run time; scoped to DB clusters in this account and region.',
  'cluster-pg': "The scanner reads each discovered cluster's parameter group (server_audit_logging) at run time; scoped to cluster parameter groups in this account and region.",
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
