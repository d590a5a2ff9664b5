import * as fs from 'node:fs';
import * as path from 'node:path';
import { Capture, Match } from 'aws-cdk-lib/assertions';
import { readReconcilerConfig } from '../../lambda/shared/config';
import { DOWNLOADER_STREAM_FILTERS, ENV, IDEMPOTENCY_KEY, LEDGER_KEY, LOG_OBJECT_PREFIX, RECONCILE_EVENT_FIELDS } from '../../lambda/shared/contract';
import { DEFAULT_RECONCILE_RATE, VERIFY_SWEEP } from '../../lib/constructs/backup-pipeline';
import {
  actionsOf,
  functionAssetDir,
  onlyResource,
  pipelineFunction,
  PipelineFunctionName,
  PolicyStatementJson,
  referencedId,
  resourcesOfType,
  roleStatements,
  statementsWithAction,
  synthPipeline,
  TEST_ENV,
} from '../helpers/pipeline-template';

// Default props, concrete environment: the production shape.
const { template, assemblyDir } = synthPipeline();
const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: any }>;

const [scannerId, scanner] = pipelineFunction(template, 'scanner');
const [detectorId, detector] = pipelineFunction(template, 'detector');
const [downloaderId, downloader] = pipelineFunction(template, 'downloader');
const [reconcilerId, reconciler] = pipelineFunction(template, 'reconciler');
const functions: Array<[PipelineFunctionName, string, typeof scanner]> = [
  ['scanner', scannerId, scanner],
  ['detector', detectorId, detector],
  ['downloader', downloaderId, downloader],
  ['reconciler', reconcilerId, reconciler],
];

const [ledgerId] = onlyResource(template, 'AWS::DynamoDB::Table', {
  Properties: { KeySchema: Match.arrayWith([Match.objectLike({ AttributeName: LEDGER_KEY.sortKey })]) },
});
const [idempotencyId] = onlyResource(template, 'AWS::DynamoDB::Table', {
  Properties: { KeySchema: [{ AttributeName: IDEMPOTENCY_KEY.partitionKey, KeyType: 'HASH' }] },
});
const [backupBucketId] = onlyResource(template, 'AWS::S3::Bucket', {
  Properties: { LoggingConfiguration: Match.anyValue() },
});
const [accessLogBucketId] = onlyResource(template, 'AWS::S3::Bucket', {
  Properties: { LoggingConfiguration: Match.absent() },
});
const scheduleInvoking = (functionId: string) =>
  onlyResource(template, 'AWS::Scheduler::Schedule', { Properties: { Target: { Arn: { 'Fn::GetAtt': [functionId, 'Arn'] } } } });
const [scheduleId, schedule] = scheduleInvoking(scannerId);
const [reconcileScheduleId, reconcileSchedule] = scheduleInvoking(reconcilerId);
const bucketKeyId = referencedId(
  resources[backupBucketId].Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault
    .KMSMasterKeyID,
);
const [sqsMappingId, sqsMapping] = onlyResource(template, 'AWS::Lambda::EventSourceMapping', {
  Properties: { EventSourceArn: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] } },
});
const [, streamMapping] = onlyResource(template, 'AWS::Lambda::EventSourceMapping', {
  Properties: { EventSourceArn: { 'Fn::GetAtt': [ledgerId, 'StreamArn'] } },
});

const roleOf = (fn: typeof scanner): string => referencedId(fn.Properties!.Role);

describe('schedule', () => {
  test('there are exactly two: the scan and the reconciliation', () => {
    expect(resourcesOfType(template, 'AWS::Scheduler::Schedule').map(([id]) => id).sort()).toEqual(
      [scheduleId, reconcileScheduleId].sort(),
    );
  });

  test('invokes the scanner every 15 minutes by default', () => {
    expect(schedule.Properties).toMatchObject({
      ScheduleExpression: 'rate(15 minutes)',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: { 'Fn::GetAtt': [scannerId, 'Arn'] } },
    });
  });

  test('retries a bounded number of times within one schedule period, then dead-letters', () => {
    const { RetryPolicy, DeadLetterConfig } = schedule.Properties!.Target;
    expect(RetryPolicy.MaximumRetryAttempts).toBeGreaterThan(0);
    expect(RetryPolicy.MaximumRetryAttempts).toBeLessThanOrEqual(5);
    expect(RetryPolicy.MaximumEventAgeInSeconds).toBe(15 * 60);
    const dlq = resources[referencedId(DeadLetterConfig.Arn)];
    expect(dlq.Type).toBe('AWS::SQS::Queue');
  });

  test('a scan that fails inside the scanner is retried, then lands in the same dead-letter queue', () => {
    const scheduleDlq = schedule.Properties!.Target.DeadLetterConfig.Arn;
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: scannerId },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 15 * 60,
      DestinationConfig: { OnFailure: { Destination: scheduleDlq } },
    });
  });

  test('its role may only invoke the scanner and the reconciler and write to the schedule DLQ', () => {
    const roleId = referencedId(schedule.Properties!.Target.RoleArn);
    expect(resources[roleId].Properties.AssumeRolePolicyDocument.Statement).toEqual([
      expect.objectContaining({
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': TEST_ENV.account } },
      }),
    ]);
    const statements = roleStatements(template, roleId);
    expect(actionsOf(statements)).toEqual(['lambda:InvokeFunction', 'sqs:SendMessage']);
    const invokable = statementsWithAction(statements, 'lambda:InvokeFunction').flatMap((s) =>
      Array.isArray(s.Resource) ? s.Resource : [s.Resource],
    );
    const functionArn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
    // CDK's grantInvoke adds each function's versions and aliases (`<arn>:*`); nothing else.
    const versionsOf = (id: string) => ({ 'Fn::Join': ['', [functionArn(id), ':*']] });
    expect(invokable).toHaveLength(4);
    expect(invokable).toEqual(
      expect.arrayContaining([functionArn(scannerId), versionsOf(scannerId), functionArn(reconcilerId), versionsOf(reconcilerId)]),
    );
    expect(statementsWithAction(statements, 'sqs:SendMessage').map((s) => s.Resource)).toEqual([
      { 'Fn::GetAtt': [referencedId(schedule.Properties!.Target.DeadLetterConfig.Arn), 'Arn'] },
    ]);
  });
});

describe('reconcile schedule', () => {
  const target = () => reconcileSchedule.Properties!.Target;

  test('the default rate is exported and is an hour', () => {
    expect(DEFAULT_RECONCILE_RATE.toSeconds()).toBe(3600);
  });

  test('invokes the reconciler at the default rate, in the scan schedule’s group, with the same role', () => {
    expect(reconcileSchedule.Properties).toMatchObject({
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      GroupName: schedule.Properties!.GroupName,
      Target: { Arn: { 'Fn::GetAtt': [reconcilerId, 'Arn'] }, RoleArn: schedule.Properties!.Target.RoleArn },
    });
  });

  test("hands each run the time it was scheduled for, and the reconciler the schedule's rate and sweep", () => {
    // A literal (not a token): Scheduler substitutes the context attribute when it invokes.
    expect(JSON.parse(target().Input as string)).toEqual({ [RECONCILE_EVENT_FIELDS.scheduledTime]: '<aws.scheduler.scheduled-time>' });
    const config = readReconcilerConfig({ ...reconciler.Properties!.Environment.Variables, [ENV.ledgerTable]: 'l', [ENV.bucket]: 'b' });
    expect(config.reconcileRateMs).toBe(DEFAULT_RECONCILE_RATE.toMilliseconds());
    expect(config.verifySweepMs).toBe(VERIFY_SWEEP.toMilliseconds());
    // Whole runs per sweep, so that consecutive runs take every slice in turn.
    expect(VERIFY_SWEEP.toMilliseconds() % DEFAULT_RECONCILE_RATE.toMilliseconds()).toBe(0);
  });

  test('retries a bounded number of times within one period, then dead-letters to the scan-run queue', () => {
    const { RetryPolicy, DeadLetterConfig } = target();
    expect(RetryPolicy.MaximumRetryAttempts).toBeGreaterThan(0);
    expect(RetryPolicy.MaximumRetryAttempts).toBeLessThanOrEqual(5);
    expect(RetryPolicy.MaximumEventAgeInSeconds).toBe(DEFAULT_RECONCILE_RATE.toSeconds());
    expect(DeadLetterConfig).toEqual(schedule.Properties!.Target.DeadLetterConfig);
  });

  test('a run that fails inside the reconciler is retried once, then lands in the same dead-letter queue', () => {
    const [, invokeConfig] = onlyResource(template, 'AWS::Lambda::EventInvokeConfig', {
      Properties: { FunctionName: { Ref: reconcilerId } },
    });
    expect(invokeConfig.Properties).toEqual({
      FunctionName: { Ref: reconcilerId },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 1,
      MaximumEventAgeInSeconds: DEFAULT_RECONCILE_RATE.toSeconds(),
      DestinationConfig: { OnFailure: { Destination: target().DeadLetterConfig.Arn } },
    });
  });
});

describe('queues', () => {
  const queues = resourcesOfType(template, 'AWS::SQS::Queue');

  test('every queue is encrypted and refuses non-TLS requests', () => {
    expect(queues).toHaveLength(4);
    for (const [queueId, queue] of queues) {
      expect(queue.Properties?.SqsManagedSseEnabled).toBe(true);
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queueId }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Principal: { AWS: '*' },
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  test('the scan queue dead-letters after at least 5 receives', () => {
    const scanQueue = resources[referencedId(sqsMapping.Properties!.EventSourceArn)];
    const { deadLetterTargetArn, maxReceiveCount } = scanQueue.Properties.RedrivePolicy;
    expect(maxReceiveCount).toBeGreaterThanOrEqual(5);
    expect(resources[referencedId(deadLetterTargetArn)].Type).toBe('AWS::SQS::Queue');
  });

  test('the scan queue visibility timeout is at least 6 x the detector timeout', () => {
    const detectorTimeout = new Capture();
    const visibility = new Capture();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'audit-log-detector' }) },
      Timeout: detectorTimeout,
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: Match.anyValue(),
      VisibilityTimeout: visibility,
    });
    expect(visibility.asNumber()).toBeGreaterThanOrEqual(6 * detectorTimeout.asNumber());
  });

  test('the detector consumes the scan queue with partial batch failures', () => {
    expect(sqsMapping.Properties).toMatchObject({
      FunctionName: { Ref: detectorId },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(sqsMapping.Properties!.BatchSize).toBeLessThanOrEqual(10);
    expect(sqsMapping.Properties!.MaximumBatchingWindowInSeconds).toBeGreaterThan(0);
    expect(sqsMapping.Properties!.ScalingConfig.MaximumConcurrency).toBeGreaterThanOrEqual(2);
    void sqsMappingId;
  });
});

describe('ledger table', () => {
  test('is keyed (instance, file) as the contract names them, both strings', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: LEDGER_KEY.partitionKey, KeyType: 'HASH' },
        { AttributeName: LEDGER_KEY.sortKey, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: LEDGER_KEY.partitionKey, AttributeType: 'S' },
        { AttributeName: LEDGER_KEY.sortKey, AttributeType: 'S' },
      ]),
    });
  });

  test('is on-demand, point-in-time recoverable, encrypted, streams both images', () => {
    expect(resources[ledgerId].Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      DeletionProtectionEnabled: true,
    });
  });

  test('is retained when the stack is deleted or the table replaced', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: { StreamSpecification: Match.anyValue() },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });
});

describe('idempotency table', () => {
  test('has the Powertools key and TTL attribute, on-demand, PITR, encrypted', () => {
    expect(resources[idempotencyId].Properties).toMatchObject({
      KeySchema: [{ AttributeName: IDEMPOTENCY_KEY.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: IDEMPOTENCY_KEY.partitionKey, AttributeType: 'S' }],
      TimeToLiveSpecification: { AttributeName: IDEMPOTENCY_KEY.ttlAttribute, Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    expect(resources[idempotencyId].Properties.StreamSpecification).toBeUndefined();
  });
});

describe('downloader stream event source', () => {
  test('admits exactly the contract filter patterns', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [ledgerId, 'StreamArn'] },
      FilterCriteria: {
        Filters: DOWNLOADER_STREAM_FILTERS.map((pattern) => ({ Pattern: Match.serializedJson(pattern) })),
      },
    });
  });

  test('never blocks the shard: bisects, retries finitely, ages out, reports item failures', () => {
    const props = streamMapping.Properties!;
    expect(props).toMatchObject({
      FunctionName: { Ref: downloaderId },
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ParallelizationFactor: 1,
    });
    expect(['TRIM_HORIZON', 'LATEST']).toContain(props.StartingPosition);
    expect(props.MaximumRetryAttempts).toBeGreaterThanOrEqual(0);
    expect(props.MaximumRetryAttempts).toBeLessThanOrEqual(10);
    expect(props.MaximumRecordAgeInSeconds).toBeGreaterThanOrEqual(60);
    expect(props.MaximumRecordAgeInSeconds).toBeLessThanOrEqual(24 * 3600);
    expect(props.BatchSize).toBeLessThanOrEqual(10);
  });

  test('sends records it gives up on to an encrypted SQS destination', () => {
    const destination = streamMapping.Properties!.DestinationConfig.OnFailure.Destination;
    const queue = resources[referencedId(destination)];
    expect(queue.Type).toBe('AWS::SQS::Queue');
    expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
  });

  test('downloader concurrency is unreserved unless configured', () => {
    expect(downloader.Properties!.ReservedConcurrentExecutions).toBeUndefined();
  });
});

describe('backup bucket', () => {
  const bucket = resources[backupBucketId];

  test('blocks public access, is KMS-encrypted with a rotating key and a bucket key', () => {
    expect(bucket.Properties).toMatchObject({
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: expect.anything() },
          },
        ],
      },
    });
    const keyRef = bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault
      .KMSMasterKeyID;
    const key = resources[referencedId(keyRef)];
    expect(key.Type).toBe('AWS::KMS::Key');
    expect(key.Properties.EnableKeyRotation).toBe(true);
  });

  test('is versioned and aborts incomplete multipart uploads after a day', () => {
    expect(bucket.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.Properties.LifecycleConfiguration.Rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
      ]),
    );
  });

  test('logs server access to the separate access-log bucket', () => {
    expect(bucket.Properties.LoggingConfiguration.DestinationBucketName).toEqual({ Ref: accessLogBucketId });
  });

  test('bucket, its key and the access-log bucket are retained by default', () => {
    for (const id of [backupBucketId, accessLogBucketId, referencedId(
      bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.KMSMasterKeyID,
    )]) {
      expect(template.toJSON().Resources[id]).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    }
    expect(resourcesOfType(template, 'Custom::S3AutoDeleteObjects')).toHaveLength(0);
  });

  test('the access-log bucket blocks public access and uses S3-managed keys (required for log delivery)', () => {
    expect(resources[accessLogBucketId].Properties).toMatchObject({
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: accessLogBucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Allow', Principal: { Service: 'logging.s3.amazonaws.com' }, Action: 's3:PutObject' }),
        ]),
      },
    });
  });

  test.each([
    ['backup', () => backupBucketId],
    ['access-log', () => accessLogBucketId],
  ])('the %s bucket denies requests without TLS', (_name, bucketId) => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId() },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });
});

describe('functions', () => {
  test.each(functions)('%s runs Node.js 22 on arm64 with source maps and Powertools env', (name, _id, fn) => {
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
    });
    expect(fn.Properties!.Environment.Variables.NODE_OPTIONS.split(' ')[0]).toBe('--enable-source-maps');
    expect(fn.Properties!.Environment.Variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: `audit-log-${name}`,
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_METRICS_NAMESPACE: expect.any(String),
    });
  });

  test.each(functions)('%s caps the young generation only if it is the downloader (page buffers die young there)', (name, _id, fn) => {
    const options: string = fn.Properties!.Environment.Variables.NODE_OPTIONS;
    expect(options).toBe(name === 'downloader' ? '--enable-source-maps --max-semi-space-size=2' : '--enable-source-maps');
  });

  test.each(functions)('%s logs to its own log group with finite retention', (_name, _id, fn) => {
    const logGroup = resources[referencedId(fn.Properties!.LoggingConfig.LogGroup)];
    expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
    expect(logGroup.Properties.RetentionInDays).toBe(30);
  });

  test.each(functions)('%s is a minified esbuild bundle with a source map', (_name, _id, fn) => {
    const dir = functionAssetDir(assemblyDir, fn);
    const code = fs.readFileSync(path.join(dir, 'index.js'), 'utf8');
    expect(code).toMatch(/\/\/# sourceMappingURL=index\.js\.map\s*$/);
    expect(fs.existsSync(path.join(dir, 'index.js.map'))).toBe(true);
    // Minified: esbuild's readable output averages a few dozen characters a line; minified code only
    // breaks lines inside template literals.
    const lines = code.split('\n').length;
    expect(code.length / lines).toBeGreaterThan(300);
  });

  test.each(functions)('%s bundles the AWS SDK instead of loading the runtime’s copy', (_name, _id, fn) => {
    const code = fs.readFileSync(path.join(functionAssetDir(assemblyDir, fn), 'index.js'), 'utf8');
    // The SDK's own optional add-ons (CRT, SigV4a) stay optional requires; the clients must be inside.
    expect(code.match(/require\(["'](@aws-sdk\/(client-[a-z0-9-]+|lib-[a-z0-9-]+|core)|@smithy\/[a-z0-9-]+)["']\)/g) ?? []).toEqual([]);
  });

  const POWERTOOLS_ENV = ['NODE_OPTIONS', 'POWERTOOLS_LOG_LEVEL', 'POWERTOOLS_METRICS_NAMESPACE', 'POWERTOOLS_SERVICE_NAME'];
  test.each([
    ['scanner', [ENV.scanQueueUrl, ENV.includeInstances, ENV.excludeInstances]],
    ['detector', [ENV.ledgerTable, ENV.staleClaimMs]],
    [
      'downloader',
      [ENV.ledgerTable, ENV.idempotencyTable, ENV.bucket, ENV.safetyMarginMs, ENV.maxObjectBytes, ENV.spoolDir],
    ],
    // FAILED_RETRY_BACKOFF_MS and VERIFY_WINDOW_MS are optional: the handler's defaults apply.
    ['reconciler', [ENV.ledgerTable, ENV.bucket, ENV.includeInstances, ENV.excludeInstances, ENV.staleClaimMs, ENV.reconcileRateMs, ENV.verifySweepMs]],
  ] as Array<[PipelineFunctionName, string[]]>)('%s gets exactly its contract env vars', (name, expected) => {
    const [, fn] = pipelineFunction(template, name);
    expect(Object.keys(fn.Properties!.Environment.Variables).sort()).toEqual([...expected, ...POWERTOOLS_ENV].sort());
  });

  test('env values point at the right resources', () => {
    const scanQueueId = referencedId(sqsMapping.Properties!.EventSourceArn);
    expect(scanner.Properties!.Environment.Variables).toMatchObject({
      [ENV.scanQueueUrl]: { Ref: scanQueueId },
      [ENV.includeInstances]: '',
      [ENV.excludeInstances]: '',
    });
    expect(detector.Properties!.Environment.Variables[ENV.ledgerTable]).toEqual({ Ref: ledgerId });
    expect(downloader.Properties!.Environment.Variables).toMatchObject({
      [ENV.ledgerTable]: { Ref: ledgerId },
      [ENV.idempotencyTable]: { Ref: idempotencyId },
      [ENV.bucket]: { Ref: backupBucketId },
      [ENV.spoolDir]: '/tmp',
    });
    expect(reconciler.Properties!.Environment.Variables).toMatchObject({
      [ENV.ledgerTable]: { Ref: ledgerId },
      [ENV.bucket]: { Ref: backupBucketId },
      [ENV.includeInstances]: '',
      [ENV.excludeInstances]: '',
    });
  });

  test('the reconciler judges claims stale exactly as the detector does', () => {
    expect(reconciler.Properties!.Environment.Variables[ENV.staleClaimMs]).toBe(
      detector.Properties!.Environment.Variables[ENV.staleClaimMs],
    );
  });

  test('timeouts, memory and /tmp fit the work', () => {
    expect(scanner.Properties!.Timeout).toBe(60);
    expect(detector.Properties!.Timeout).toBe(120);
    expect(downloader.Properties).toMatchObject({ Timeout: 600, MemorySize: 1024, EphemeralStorage: { Size: 1024 } });
    expect(reconciler.Properties).toMatchObject({ Timeout: 600, MemorySize: 512 });
    expect(reconciler.Properties!.EphemeralStorage).toBeUndefined();
    // A run ends before the next one starts, retry included.
    expect(2 * reconciler.Properties!.Timeout).toBeLessThan(DEFAULT_RECONCILE_RATE.toSeconds());
  });

  test('a claim is stale only after several downloader timeouts', () => {
    const staleClaimMs = Number(detector.Properties!.Environment.Variables[ENV.staleClaimMs]);
    expect(staleClaimMs).toBeGreaterThanOrEqual(2 * downloader.Properties!.Timeout * 1000);
  });

  test('objects hold an Aurora file, a full spool fits /tmp twice over, and the safety margin leaves most of the run for downloading', () => {
    const vars = downloader.Properties!.Environment.Variables;
    const tmpBytes = downloader.Properties!.EphemeralStorage.Size * 1024 * 1024;
    expect(Number(vars[ENV.maxObjectBytes])).toBeGreaterThan(0);
    expect(2 * Number(vars[ENV.maxObjectBytes])).toBeLessThanOrEqual(tmpBytes);
    // Above Aurora's ~100 MB rotation size (one pass stores a file as one object), and no larger than
    // needed: the end of a pass waits for its last object's PUT.
    expect(Number(vars[ENV.maxObjectBytes])).toBe(128 * 1024 * 1024);
    const marginMs = Number(vars[ENV.safetyMarginMs]);
    expect(marginMs).toBeGreaterThan(0);
    expect(marginMs).toBeLessThan((downloader.Properties!.Timeout * 1000) / 4);
  });
});

describe('IAM', () => {
  const rds = (type: string): string => `arn:aws:rds:${TEST_ENV.region}:${TEST_ENV.account}:${type}:*`;
  const decryptThroughS3: PolicyStatementJson = {
    Effect: 'Allow',
    Action: 'kms:Decrypt',
    Resource: { 'Fn::GetAtt': [bucketKeyId, 'Arn'] },
    Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', [`s3.${TEST_ENV.region}.`, { Ref: 'AWS::URLSuffix' }]] } } },
  };

  test.each(functions)('%s has its own role with no managed policies', (_name, _id, fn) => {
    const role = resources[roleOf(fn)];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      expect.objectContaining({ Principal: { Service: 'lambda.amazonaws.com' } }),
    ]);
  });

  test.each(functions)('%s writes logs only to its own log group', (_name, _id, fn) => {
    const statements = roleStatements(template, roleOf(fn));
    const logStatements = statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('logs:')));
    expect(logStatements).toEqual([
      expect.objectContaining({
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [referencedId(fn.Properties!.LoggingConfig.LogGroup), 'Arn'] },
      }),
    ]);
  });

  test('scanner: describe instances/clusters/cluster parameters, send to the scan queue and its own DLQ', () => {
    const statements = roleStatements(template, roleOf(scanner));
    expect(actionsOf(statements)).toEqual([
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'rds:DescribeDBClusterParameters',
      'rds:DescribeDBClusters',
      'rds:DescribeDBInstances',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
    ]);
    expect(statementsWithAction(statements, 'rds:DescribeDBInstances')[0].Resource).toBe(rds('db'));
    expect(statementsWithAction(statements, 'rds:DescribeDBClusters')[0].Resource).toBe(rds('cluster'));
    expect(statementsWithAction(statements, 'rds:DescribeDBClusterParameters')[0].Resource).toBe(rds('cluster-pg'));
    // The scan queue, and the dead-letter queue for scanner invocations that fail for good.
    expect(statementsWithAction(statements, 'sqs:SendMessage').map((s) => s.Resource)).toEqual(
      expect.arrayContaining([
        { 'Fn::GetAtt': [referencedId(sqsMapping.Properties!.EventSourceArn), 'Arn'] },
        schedule.Properties!.Target.DeadLetterConfig.Arn,
      ]),
    );
    expect(statementsWithAction(statements, 'sqs:SendMessage')).toHaveLength(2);
  });

  test('detector: list log files, read/write the ledger, consume the scan queue', () => {
    const statements = roleStatements(template, roleOf(detector));
    expect(actionsOf(statements)).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'rds:DescribeDBLogFiles',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ]);
    expect(statementsWithAction(statements, 'rds:DescribeDBLogFiles')[0].Resource).toBe(rds('db'));
    for (const action of ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']) {
      expect(statementsWithAction(statements, action).map((s) => s.Resource)).toEqual([
        { 'Fn::GetAtt': [ledgerId, 'Arn'] },
      ]);
    }
  });

  test('downloader: download log portions, put objects under logs/, ledger, idempotency, stream', () => {
    const statements = roleStatements(template, roleOf(downloader));
    expect(actionsOf(statements)).toEqual([
      'dynamodb:DeleteItem',
      'dynamodb:DescribeStream',
      'dynamodb:GetItem',
      'dynamodb:GetRecords',
      'dynamodb:GetShardIterator',
      'dynamodb:ListStreams',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'rds:DescribeDBLogFiles',
      'rds:DownloadDBLogFilePortion',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
    ]);
    expect(statementsWithAction(statements, 'rds:DownloadDBLogFilePortion')[0].Resource).toBe(rds('db'));
    expect(statementsWithAction(statements, 'rds:DescribeDBLogFiles')[0].Resource).toBe(rds('db'));
    // Deleting idempotency records is Powertools' business; the ledger is never deleted from.
    expect(statementsWithAction(statements, 'dynamodb:DeleteItem').map((s) => s.Resource)).toEqual([
      { 'Fn::GetAtt': [idempotencyId, 'Arn'] },
    ]);
    const ledger = { 'Fn::GetAtt': [ledgerId, 'Arn'] };
    const idempotency = { 'Fn::GetAtt': [idempotencyId, 'Arn'] };
    const resourcesFor = (action: string): unknown[] => statementsWithAction(statements, action).map((s) => s.Resource);
    // Reads and conditional updates on the ledger; creating items is the detector's job.
    expect(resourcesFor('dynamodb:GetItem')).toEqual(expect.arrayContaining([ledger, idempotency]));
    expect(resourcesFor('dynamodb:UpdateItem')).toEqual(expect.arrayContaining([ledger, idempotency]));
    expect(resourcesFor('dynamodb:PutItem')).toEqual([idempotency]);
    for (const action of ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator']) {
      expect(statementsWithAction(statements, action)[0].Resource).toEqual({ 'Fn::GetAtt': [ledgerId, 'StreamArn'] });
    }
  });

  test('downloader may put objects only under the logs/ prefix of the backup bucket', () => {
    const [putObject] = statementsWithAction(roleStatements(template, roleOf(downloader)), 's3:PutObject');
    expect(putObject.Resource).toEqual({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [backupBucketId, 'Arn'] }, `/${LOG_OBJECT_PREFIX}*`]],
    });
    expect(JSON.stringify(putObject.Resource)).toMatch(/\/logs\/\*"\]\]\}$/);
  });

  test('downloader may HEAD objects under logs/ and list only that prefix (to tell a missing object from a denied one)', () => {
    const statements = roleStatements(template, roleOf(downloader));
    const [getObject] = statementsWithAction(statements, 's3:GetObject');
    expect(getObject.Resource).toEqual({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [backupBucketId, 'Arn'] }, `/${LOG_OBJECT_PREFIX}*`]],
    });
    const [listBucket] = statementsWithAction(statements, 's3:ListBucket');
    expect(listBucket).toMatchObject({
      Resource: { 'Fn::GetAtt': [backupBucketId, 'Arn'] },
      Condition: { StringLike: { 's3:prefix': [`${LOG_OBJECT_PREFIX}*`] } },
    });
  });

  test('downloader may use the bucket key only through S3: data keys for its PUTs, decryption for the checksums', () => {
    const statements = roleStatements(template, roleOf(downloader));
    const throughS3 = { ...decryptThroughS3, Action: ['kms:Decrypt', 'kms:GenerateDataKey'] };
    expect(statementsWithAction(statements, 'kms:GenerateDataKey')).toEqual([throughS3]);
    expect(statementsWithAction(statements, 'kms:Decrypt')).toEqual([throughS3]);
  });

  test('reconciler: discover instances, list log files, read and re-drive the ledger, HEAD objects, dead-letter', () => {
    const statements = roleStatements(template, roleOf(reconciler));
    expect(actionsOf(statements)).toEqual([
      'dynamodb:GetItem',
      'dynamodb:Query',
      'dynamodb:Scan',
      'dynamodb:UpdateItem',
      'kms:Decrypt',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'rds:DescribeDBClusterParameters',
      'rds:DescribeDBClusters',
      'rds:DescribeDBInstances',
      'rds:DescribeDBLogFiles',
      's3:GetObject',
      's3:ListBucket',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
    ]);
    const resourcesFor = (action: string): unknown[] => statementsWithAction(statements, action).map((s) => s.Resource);
    expect(resourcesFor('rds:DescribeDBInstances')).toEqual([rds('db')]);
    expect(resourcesFor('rds:DescribeDBLogFiles')).toEqual([rds('db')]);
    expect(resourcesFor('rds:DescribeDBClusters')).toEqual([rds('cluster')]);
    expect(resourcesFor('rds:DescribeDBClusterParameters')).toEqual([rds('cluster-pg')]);
    // The ledger only: never the idempotency table, never item creation.
    for (const action of ['dynamodb:Scan', 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:UpdateItem']) {
      expect(resourcesFor(action)).toEqual([{ 'Fn::GetAtt': [ledgerId, 'Arn'] }]);
    }
    // Its only queue is the scheduled-run dead-letter queue (async on-failure destination).
    expect(resourcesFor('sqs:SendMessage')).toEqual([reconcileSchedule.Properties!.Target.DeadLetterConfig.Arn]);
  });

  test('reconciler reads object metadata under logs/ only: HEAD (GetObject), prefix-bound list, decrypt through S3', () => {
    const statements = roleStatements(template, roleOf(reconciler));
    const s3Statements = statements.filter((s) => actionsOf([s]).some((action) => action.startsWith('s3:')));
    expect(s3Statements).toHaveLength(2);
    expect(statementsWithAction(statements, 's3:GetObject')).toEqual([
      expect.objectContaining({
        Action: 's3:GetObject',
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [backupBucketId, 'Arn'] }, `/${LOG_OBJECT_PREFIX}*`]] },
      }),
    ]);
    expect(statementsWithAction(statements, 's3:ListBucket')).toEqual([
      expect.objectContaining({
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [backupBucketId, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': [`${LOG_OBJECT_PREFIX}*`] } },
      }),
    ]);
    const actions = actionsOf(statements);
    expect(actions).not.toContain('s3:PutObject');
    expect(actions.filter((action) => /^s3:(Put|Delete|Bypass|Restore)/.test(action) || /Delete/.test(action))).toEqual([]);
    // Decrypt only: S3 hands out a KMS-encrypted object's stored checksum only to a caller that may decrypt.
    expect(actions.filter((action) => action.startsWith('kms:'))).toEqual(['kms:Decrypt']);
    expect(statementsWithAction(statements, 'kms:Decrypt')).toEqual([decryptThroughS3]);
  });

  test('no identity policy anywhere grants a wildcard action', () => {
    const identityStatements = [
      ...resourcesOfType(template, 'AWS::IAM::Policy').flatMap(([, p]) => p.Properties!.PolicyDocument.Statement),
      ...resourcesOfType(template, 'AWS::IAM::Role').flatMap(([, r]) =>
        (r.Properties!.Policies ?? []).flatMap((p: { PolicyDocument: { Statement: unknown[] } }) => p.PolicyDocument.Statement),
      ),
    ];
    expect(identityStatements.length).toBeGreaterThan(10);
    const actions = actionsOf(identityStatements);
    // Neither `*` nor a service-wide `svc:*` nor any partial wildcard such as `s3:Get*`.
    expect(actions.filter((action) => action.includes('*'))).toEqual([]);
    expect(actions.every((action) => /^[a-z0-9-]+:[A-Za-z0-9]+$/.test(action))).toBe(true);
    expect(resourcesOfType(template, 'AWS::IAM::ManagedPolicy')).toHaveLength(0);
  });
});

describe('alarms and outputs', () => {
  test('every dead-letter destination has an alarm on visible messages', () => {
    const deadLetterQueueIds = resourcesOfType(template, 'AWS::SQS::Queue')
      .map(([id]) => id)
      .filter((id) => id !== referencedId(sqsMapping.Properties!.EventSourceArn));
    expect(deadLetterQueueIds).toHaveLength(3);
    for (const queueId of deadLetterQueueIds) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
      });
    }
  });

  test('lost log files from detector or downloader raise an alarm', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      Metrics: Match.arrayWith(
        ['audit-log-detector', 'audit-log-downloader'].map((service) =>
          Match.objectLike({
            MetricStat: Match.objectLike({
              Metric: {
                Namespace: detector.Properties!.Environment.Variables.POWERTOOLS_METRICS_NAMESPACE,
                MetricName: 'LostLogFiles',
                Dimensions: [{ Name: 'service', Value: service }],
              },
              Stat: 'Sum',
            }),
          }),
        ),
      ),
    });
  });

  test('outputs the bucket and ledger table names, the alarm topic and the dashboard', () => {
    template.hasOutput('BackupBucketName', { Value: { Ref: backupBucketId } });
    template.hasOutput('LedgerTableName', { Value: { Ref: ledgerId } });
    template.hasOutput('AlarmTopicArn', { Value: { Ref: onlyResource(template, 'AWS::SNS::Topic')[0] } });
    template.hasOutput('DashboardName', { Value: { Ref: onlyResource(template, 'AWS::CloudWatch::Dashboard')[0] } });
  });
});

test('snapshot', () => {
  expect(template.toJSON()).toMatchSnapshot();
});
