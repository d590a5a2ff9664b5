/**
 * The local Lambda service: the three pipeline functions as the template defines them (timeout,
 * memory, environment), the schedule that starts the scanner, the SQS mapping in front of the detector
 * and the ledger-stream mapping in front of the downloader. One `cycle()` is one schedule tick followed
 * by draining both event sources until the pipeline has nothing left to do.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { ENV } from '../../../lambda/shared/contract';
import { LAB_CREDENTIALS, LocalResources } from '../aws-services';
import type { ProcessRegistry } from '../processes';
import type { FunctionRole, PipelineDefinition } from '../stack-definition';
import { FUNCTION_ROLES } from '../stack-definition';
import { buildSchedulerEvent, LAB_ACCOUNT_ID } from './events';
import { InvokeResult, LambdaFunction } from './lambda-function';
import { SqsEventSource, SqsPumpStats } from './sqs-source';
import { DynamoDbStreamEventSource, StreamPumpStats } from './stream-source';

/** Lambda retries a failed asynchronous invocation (the Scheduler's kind) twice by default. */
const ASYNC_INVOKE_RETRIES = 2;
/** Node.js runtime identifier Lambda sets in AWS_EXECUTION_ENV (the stack's runtime). */
const EXECUTION_ENV = 'AWS_Lambda_nodejs22.x';

export interface LambdaServiceOptions {
  definition: PipelineDefinition;
  resources: LocalResources;
  clients: { sqs: SQSClient; streams: DynamoDBStreamsClient };
  registry: ProcessRegistry;
  region: string;
  /** Endpoint every AWS service client of the handlers uses (AWS_ENDPOINT_URL). */
  awsEndpointUrl: string;
  /** RDS API endpoint of the handlers (AWS_ENDPOINT_URL_RDS). */
  rdsEndpointUrl: string;
  workDir: string;
  /** Extra or replaced environment variables per function (lab-time settings, fault scenarios). */
  envOverrides?: Partial<Record<FunctionRole, Record<string, string>>>;
  /** Invocation budgets per function in ms (default: the template's timeout). */
  timeoutMs?: Partial<Record<FunctionRole, number>>;
  /** Lab-time stand-in for an SQS message's visibility timeout after a failed batch. */
  sqsRetryDelaySeconds?: number;
  streamRetryDelayMs?: number;
}

export interface CycleStats {
  scanner: { ok: boolean; attempts: number; error?: string };
  sqs: SqsPumpStats;
  stream: StreamPumpStats;
  rounds: number;
}

/** Lambda's own variables plus the template's, resolved against the local resources. */
export function functionEnvironment(role: FunctionRole, options: LambdaServiceOptions): NodeJS.ProcessEnv {
  const fn = options.definition.functions[role];
  const functionName = `lab-${role}`;
  const spoolDir = join(options.workDir, 'lambda-tmp', role);
  mkdirSync(spoolDir, { recursive: true });
  const passThrough = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => name.startsWith('AWS_ENDPOINT_URL_') && name !== 'AWS_ENDPOINT_URL_RDS'),
  );
  const templateEnvironment = Object.fromEntries(
    Object.entries(fn.environment).map(([name, value]) => [name, options.resources.resolve(value)]),
  );
  return {
    PATH: process.env.PATH,
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    TMPDIR: spoolDir,
    AWS_REGION: options.region,
    AWS_DEFAULT_REGION: options.region,
    AWS_ACCESS_KEY_ID: LAB_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LAB_CREDENTIALS.secretAccessKey,
    // No shared config or credentials files: a developer's ~/.aws must not change what the handlers do.
    AWS_CONFIG_FILE: join(options.workDir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(options.workDir, 'no-aws-credentials'),
    AWS_ENDPOINT_URL: options.awsEndpointUrl,
    ...passThrough,
    AWS_ENDPOINT_URL_RDS: options.rdsEndpointUrl,
    AWS_EXECUTION_ENV: EXECUTION_ENV,
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    _HANDLER: 'index.handler',
    ...templateEnvironment,
    // Lambda's /tmp is private to the execution environment; the stack's '/tmp' is not ours to share.
    ...(templateEnvironment[ENV.spoolDir] === '/tmp' ? { [ENV.spoolDir]: spoolDir } : {}),
    ...options.envOverrides?.[role],
  };
}

export class LocalLambdaService {
  readonly functions: Record<FunctionRole, LambdaFunction>;
  readonly sqsSource: SqsEventSource;
  readonly streamSource: DynamoDbStreamEventSource;
  private tick = 0;

  constructor(private readonly options: LambdaServiceOptions) {
    const { definition, resources, registry, region } = options;
    const logDir = join(options.workDir, 'logs');
    mkdirSync(logDir, { recursive: true });
    const concurrency: Record<FunctionRole, number> = {
      scanner: 1,
      detector: definition.detectorSource.maxConcurrency ?? 1,
      // One batch per shard at a time (parallelization factor), capped by reserved concurrency.
      downloader: Math.max(1, Math.min(definition.functions.downloader.reservedConcurrency ?? Infinity, definition.downloaderSource.parallelizationFactor)),
    };
    const functions = {} as Record<FunctionRole, LambdaFunction>;
    for (const role of FUNCTION_ROLES) {
      const fn = definition.functions[role];
      functions[role] = new LambdaFunction({
        identity: { functionName: `lab-${role}`, region, memoryMb: fn.memoryMb },
        entry: fn.entry,
        environment: functionEnvironment(role, options),
        timeoutMs: options.timeoutMs?.[role] ?? fn.timeoutSeconds * 1000,
        maxConcurrency: concurrency[role],
        registry,
        logFile: join(logDir, `${role}.log`),
      });
    }
    this.functions = functions;

    const source = definition.detectorSource;
    this.sqsSource = new SqsEventSource(options.clients.sqs, functions.detector, {
      queueUrl: resources.queueUrls[source.queueLogicalId] ?? '',
      queueArn: resources.queueArns[source.queueLogicalId] ?? '',
      region,
      batchSize: source.batchSize,
      reportBatchItemFailures: source.reportBatchItemFailures,
      retryDelaySeconds: options.sqsRetryDelaySeconds ?? 1,
    });

    const stream = definition.downloaderSource;
    const onFailure = stream.onFailureQueueLogicalId ? resources.queueUrls[stream.onFailureQueueLogicalId] : undefined;
    this.streamSource = new DynamoDbStreamEventSource(options.clients.streams, options.clients.sqs, functions.downloader, {
      streamArn: resources.ledgerStreamArn,
      batchSize: stream.batchSize,
      retryAttempts: stream.retryAttempts,
      bisectOnError: stream.bisectOnError,
      maxRecordAgeSeconds: stream.maxRecordAgeSeconds,
      reportBatchItemFailures: stream.reportBatchItemFailures,
      startingPosition: stream.startingPosition,
      filters: stream.filters,
      ...(onFailure ? { onFailureQueueUrl: onFailure } : {}),
      retryDelayMs: options.streamRetryDelayMs ?? 250,
    });
  }

  /** One schedule tick: EventBridge Scheduler invokes the scanner asynchronously. */
  async tickSchedule(): Promise<CycleStats['scanner']> {
    this.tick += 1;
    const scheduleArn = `arn:aws:scheduler:${this.options.region}:${LAB_ACCOUNT_ID}:schedule/default/lab-scan`;
    let last: InvokeResult | undefined;
    for (let attempt = 1; attempt <= 1 + ASYNC_INVOKE_RETRIES; attempt += 1) {
      const event = buildSchedulerEvent(this.options.definition.schedule.input, {
        arn: scheduleArn,
        scheduledTime: new Date(),
        executionId: `lab-tick-${this.tick}`,
        attemptNumber: 1,
      });
      last = await this.functions.scanner.invoke(event);
      if (last.ok) return { ok: true, attempts: attempt };
    }
    const error = last && !last.ok ? `${last.errorType}: ${last.errorMessage}` : 'no invocation';
    return { ok: false, attempts: 1 + ASYNC_INVOKE_RETRIES, error };
  }

  /** Tick, then drain the queue and the stream until neither has anything more to deliver. */
  async cycle(maxRounds = 50): Promise<CycleStats> {
    const scanner = await this.tickSchedule();
    const sqs: SqsPumpStats = { batches: 0, messages: 0, succeeded: 0, failed: 0, functionErrors: [] };
    const stream: StreamPumpStats = {
      recordsRead: 0,
      filteredOut: 0,
      delivered: 0,
      invocations: 0,
      retries: 0,
      bisections: 0,
      discarded: 0,
      functionErrors: [],
    };
    let rounds = 0;
    for (; rounds < maxRounds; rounds += 1) {
      const queued = await this.sqsSource.pump();
      const streamed = await this.streamSource.pump();
      mergeInto(sqs, queued);
      mergeInto(stream, streamed);
      if (queued.messages === 0 && streamed.recordsRead === 0) break;
    }
    return { scanner, sqs, stream, rounds };
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.functions).map((fn) => fn.close()));
  }
}

function mergeInto<T extends object>(target: T, source: T): void {
  for (const key of Object.keys(source) as Array<keyof T>) {
    const value = source[key];
    const current = target[key];
    if (typeof value === 'number' && typeof current === 'number') {
      target[key] = (current + value) as T[keyof T];
    } else if (Array.isArray(value) && Array.isArray(current)) {
      current.push(...(value as unknown[]));
    }
  }
}
