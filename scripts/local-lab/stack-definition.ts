/**
 * The pipeline exactly as the CDK app defines it: the lab synthesizes BackupPipelineStack (without
 * bundling: only the template matters) and reads from the CloudFormation template everything the local
 * services and the local Lambda service need — table key schemas and stream view, queue attributes and
 * redrive, bucket versioning, each function's timeout, memory, environment and asynchronous-invocation
 * settings, the event source mappings (batch sizes, retries, bisect, filter criteria, on-failure
 * destination) and the two schedules (scan, reconcile: rate and input). Nothing of it is restated here,
 * so the lab tests what would deploy.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnElement, Duration } from 'aws-cdk-lib';
import { DEFAULT_CONFIG } from '../../lib/config';
import { BackupPipelineStack } from '../../lib/stacks/backup-pipeline-stack';
import type { FilterPattern } from './runner/filter-matcher';

const REPO_ROOT = join(__dirname, '..', '..');

export type FunctionRole = 'scanner' | 'detector' | 'downloader' | 'reconciler';
export const FUNCTION_ROLES: readonly FunctionRole[] = ['scanner', 'detector', 'downloader', 'reconciler'];
/** The functions a schedule invokes (asynchronously, as EventBridge Scheduler does). */
export type ScheduledRole = 'scanner' | 'reconciler';

/** A CloudFormation value: a literal or an intrinsic (Ref, Fn::GetAtt, Fn::Join) to resolve locally. */
export type CfnValue = unknown;

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
}

export interface FunctionDefinition {
  logicalId: string;
  /** `handler` export of `lambda/<role>/index.ts`. */
  entry: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** Size of /tmp (`EphemeralStorage`; Lambda's default 512 MB). */
  ephemeralStorageMb: number;
  reservedConcurrency?: number;
  environment: Record<string, CfnValue>;
  asyncInvoke: AsyncInvokeDefinition;
}

/** What Lambda does with a failed asynchronous invocation (AWS::Lambda::EventInvokeConfig). */
export interface AsyncInvokeDefinition {
  /** Retries after the first attempt (Lambda's default: 2). */
  retryAttempts: number;
  /** Where the invocation record goes once the retries are used up. */
  onFailureQueueLogicalId?: string;
}

/** Lambda's asynchronous-invocation defaults, for a function without an EventInvokeConfig. */
const DEFAULT_ASYNC_RETRY_ATTEMPTS = 2;

export interface SqsSourceDefinition {
  queueLogicalId: string;
  batchSize: number;
  maxBatchingWindowSeconds: number;
  reportBatchItemFailures: boolean;
  maxConcurrency?: number;
}

export interface StreamSourceDefinition {
  tableLogicalId: string;
  batchSize: number;
  /** -1: retry until the record expires (the Lambda default). */
  retryAttempts: number;
  bisectOnError: boolean;
  /** -1: no limit. */
  maxRecordAgeSeconds: number;
  reportBatchItemFailures: boolean;
  parallelizationFactor: number;
  startingPosition: string;
  filters: FilterPattern[];
  onFailureQueueLogicalId?: string;
}

export interface ScheduleDefinition {
  logicalId: string;
  /** The schedule's rate (`rate(N unit)`): the lab derives its lab-time cadences from the ratios. */
  rateMs: number;
  /** Target Input; absent means Scheduler invokes with an empty JSON object. */
  input?: string;
  retryAttempts: number;
  deadLetterQueueLogicalId?: string;
}

export interface PipelineDefinition {
  resources: Record<string, CfnResource>;
  bucketLogicalId: string;
  ledgerTableLogicalId: string;
  idempotencyTableLogicalId: string;
  functions: Record<FunctionRole, FunctionDefinition>;
  detectorSource: SqsSourceDefinition;
  downloaderSource: StreamSourceDefinition;
  /** The schedule that starts the scanner. */
  schedule: ScheduleDefinition;
  /** The schedule that starts the reconciler. */
  reconcileSchedule: ScheduleDefinition;
}

function resource(resources: Record<string, CfnResource>, logicalId: string, type: string): CfnResource {
  const found = resources[logicalId];
  if (!found || found.Type !== type) throw new Error(`template has no ${type} ${logicalId}`);
  return found;
}

function refTarget(value: unknown): string | undefined {
  if (value && typeof value === 'object') {
    const ref = (value as { Ref?: unknown }).Ref;
    if (typeof ref === 'string') return ref;
    const getAtt = (value as { 'Fn::GetAtt'?: unknown })['Fn::GetAtt'];
    if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return getAtt[0];
  }
  return undefined;
}

function num(value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}

const RATE_UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** Milliseconds of a Scheduler `rate(N unit)` expression (cron and at expressions have no fixed rate). */
export function rateExpressionMs(expression: unknown): number {
  const match = typeof expression === 'string' ? /^rate\(\s*(\d+)\s+(minute|hour|day)s?\s*\)$/.exec(expression) : null;
  const unitMs = match?.[2] ? RATE_UNIT_MS[match[2]] : undefined;
  if (!match?.[1] || unitMs === undefined || Number(match[1]) <= 0) {
    throw new Error(`schedule expression ${JSON.stringify(expression)} is not a rate the lab can run in lab time`);
  }
  return Number(match[1]) * unitMs;
}

function scheduleTargeting(resources: Record<string, CfnResource>, functionLogicalId: string, role: ScheduledRole): ScheduleDefinition {
  const schedules = Object.entries(resources).filter(
    ([, candidate]) =>
      candidate.Type === 'AWS::Scheduler::Schedule' &&
      refTarget((candidate.Properties?.Target as { Arn?: unknown } | undefined)?.Arn) === functionLogicalId,
  );
  const [found, ...others] = schedules;
  if (!found || others.length > 0) throw new Error(`expected one schedule targeting the ${role}, found ${schedules.length}`);
  const [logicalId, schedule] = found;
  const target = (schedule.Properties?.Target ?? {}) as Record<string, unknown>;
  const deadLetterQueue = refTarget((target.DeadLetterConfig as { Arn?: unknown } | undefined)?.Arn);
  return {
    logicalId,
    rateMs: rateExpressionMs(schedule.Properties?.ScheduleExpression),
    ...(typeof target.Input === 'string' ? { input: target.Input } : {}),
    retryAttempts: num((target.RetryPolicy as { MaximumRetryAttempts?: unknown } | undefined)?.MaximumRetryAttempts, 185),
    ...(deadLetterQueue ? { deadLetterQueueLogicalId: deadLetterQueue } : {}),
  };
}

function asyncInvokeOf(resources: Record<string, CfnResource>, functionLogicalId: string): AsyncInvokeDefinition {
  const configs = Object.values(resources).filter(
    (candidate) => candidate.Type === 'AWS::Lambda::EventInvokeConfig' && refTarget(candidate.Properties?.FunctionName) === functionLogicalId,
  );
  if (configs.length > 1) throw new Error(`expected at most one EventInvokeConfig for ${functionLogicalId}, found ${configs.length}`);
  const props = configs[0]?.Properties ?? {};
  const onFailure = refTarget((props.DestinationConfig as { OnFailure?: { Destination?: unknown } } | undefined)?.OnFailure?.Destination);
  return {
    retryAttempts: num(props.MaximumRetryAttempts, DEFAULT_ASYNC_RETRY_ATTEMPTS),
    ...(onFailure ? { onFailureQueueLogicalId: onFailure } : {}),
  };
}

/** Reads the parts the lab needs from a synthesized template (exported for tests). */
export function definitionFromTemplate(
  template: { Resources: Record<string, CfnResource> },
  ids: { bucket: string; ledgerTable: string; idempotencyTable: string; functions: Record<FunctionRole, string> },
): PipelineDefinition {
  const resources = template.Resources;
  const functions = {} as Record<FunctionRole, FunctionDefinition>;
  for (const role of FUNCTION_ROLES) {
    const logicalId = ids.functions[role];
    const props = resource(resources, logicalId, 'AWS::Lambda::Function').Properties ?? {};
    const environment = ((props.Environment as { Variables?: Record<string, CfnValue> } | undefined)?.Variables ?? {});
    functions[role] = {
      logicalId,
      entry: join(REPO_ROOT, 'lambda', role, 'index.ts'),
      timeoutSeconds: num(props.Timeout, 3),
      memoryMb: num(props.MemorySize, 128),
      ephemeralStorageMb: num((props.EphemeralStorage as { Size?: unknown } | undefined)?.Size, 512),
      ...(typeof props.ReservedConcurrentExecutions === 'number'
        ? { reservedConcurrency: props.ReservedConcurrentExecutions }
        : {}),
      environment,
      asyncInvoke: asyncInvokeOf(resources, logicalId),
    };
  }

  const mappingOf = (role: FunctionRole): Record<string, unknown> => {
    const mappings = Object.values(resources).filter(
      (candidate) =>
        candidate.Type === 'AWS::Lambda::EventSourceMapping' &&
        refTarget(candidate.Properties?.FunctionName) === ids.functions[role],
    );
    if (mappings.length !== 1) throw new Error(`expected one event source mapping for the ${role}, found ${mappings.length}`);
    return mappings[0]?.Properties ?? {};
  };

  const detectorMapping = mappingOf('detector');
  const queueLogicalId = refTarget(detectorMapping.EventSourceArn);
  if (!queueLogicalId) throw new Error('detector event source is not a queue of this stack');
  const reports = (mapping: Record<string, unknown>): boolean =>
    Array.isArray(mapping.FunctionResponseTypes) && mapping.FunctionResponseTypes.includes('ReportBatchItemFailures');
  const detectorSource: SqsSourceDefinition = {
    queueLogicalId,
    batchSize: num(detectorMapping.BatchSize, 10),
    maxBatchingWindowSeconds: num(detectorMapping.MaximumBatchingWindowInSeconds, 0),
    reportBatchItemFailures: reports(detectorMapping),
    ...(typeof (detectorMapping.ScalingConfig as { MaximumConcurrency?: unknown } | undefined)?.MaximumConcurrency === 'number'
      ? { maxConcurrency: (detectorMapping.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency }
      : {}),
  };

  const downloaderMapping = mappingOf('downloader');
  const tableLogicalId = refTarget(downloaderMapping.EventSourceArn);
  if (tableLogicalId !== ids.ledgerTable) throw new Error('downloader event source is not the ledger stream');
  const filters = (
    (downloaderMapping.FilterCriteria as { Filters?: Array<{ Pattern?: unknown }> } | undefined)?.Filters ?? []
  ).map((filter) => {
    if (typeof filter.Pattern !== 'string') throw new Error('filter pattern is not a JSON string');
    return JSON.parse(filter.Pattern) as FilterPattern;
  });
  const onFailure = refTarget(
    (downloaderMapping.DestinationConfig as { OnFailure?: { Destination?: unknown } } | undefined)?.OnFailure?.Destination,
  );
  const downloaderSource: StreamSourceDefinition = {
    tableLogicalId,
    batchSize: num(downloaderMapping.BatchSize, 100),
    retryAttempts: num(downloaderMapping.MaximumRetryAttempts, -1),
    bisectOnError: downloaderMapping.BisectBatchOnFunctionError === true,
    maxRecordAgeSeconds: num(downloaderMapping.MaximumRecordAgeInSeconds, -1),
    reportBatchItemFailures: reports(downloaderMapping),
    parallelizationFactor: num(downloaderMapping.ParallelizationFactor, 1),
    startingPosition: typeof downloaderMapping.StartingPosition === 'string' ? downloaderMapping.StartingPosition : 'LATEST',
    filters,
    ...(onFailure ? { onFailureQueueLogicalId: onFailure } : {}),
  };

  const schedule = scheduleTargeting(resources, ids.functions.scanner, 'scanner');
  const reconcileSchedule = scheduleTargeting(resources, ids.functions.reconciler, 'reconciler');

  resource(resources, ids.bucket, 'AWS::S3::Bucket');
  resource(resources, ids.ledgerTable, 'AWS::DynamoDB::Table');
  resource(resources, ids.idempotencyTable, 'AWS::DynamoDB::Table');
  return {
    resources,
    bucketLogicalId: ids.bucket,
    ledgerTableLogicalId: ids.ledgerTable,
    idempotencyTableLogicalId: ids.idempotencyTable,
    functions,
    detectorSource,
    downloaderSource,
    schedule,
    reconcileSchedule,
  };
}

/**
 * Synthesizes BackupPipelineStack with the app's default configuration and cdk.json's feature flags
 * (what `cdk synth` would use), skipping asset bundling.
 */
export function synthesizePipeline(region: string, account: string): PipelineDefinition {
  const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  const outdir = mkdtempSync(join(tmpdir(), 'lab-cdk-'));
  try {
    const app = new App({ outdir, context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] } });
    const settings = DEFAULT_CONFIG.pipeline;
    const stack = new BackupPipelineStack(app, 'LocalLabBackupPipeline', {
      env: { account, region },
      pipeline: {
        scheduleRate: Duration.minutes(settings.scheduleRateMinutes),
        includeInstances: [...settings.includeInstances],
        excludeInstances: [...settings.excludeInstances],
        retainData: false,
        downloaderReservedConcurrency: settings.downloaderReservedConcurrency,
        logRetention: settings.logRetentionDays,
      },
    });
    const logicalId = (construct: { node: { defaultChild?: unknown } }): string =>
      stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const { pipeline } = stack;
    const template = app.synth().getStackByName(stack.stackName).template as { Resources: Record<string, CfnResource> };
    return definitionFromTemplate(template, {
      bucket: logicalId(pipeline.bucket),
      ledgerTable: logicalId(pipeline.ledgerTable),
      idempotencyTable: logicalId(pipeline.idempotencyTable),
      functions: {
        scanner: logicalId(pipeline.scanner),
        detector: logicalId(pipeline.detector),
        downloader: logicalId(pipeline.downloader),
        reconciler: logicalId(pipeline.reconciler),
      },
    });
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
