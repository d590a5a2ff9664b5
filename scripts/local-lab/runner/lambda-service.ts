/**
 * The local Lambda service: the pipeline's functions as the template defines them (timeout, memory,
 * environment, asynchronous-invocation retries and on-failure destination), the two schedules (scan,
 * reconcile), the SQS mapping in front of the detector and the ledger-stream mapping in front of the
 * downloader. It runs in one of two ways:
 * - cycles (`cycle()`): one scan-schedule tick, then both event sources drained in turn until the
 *   pipeline has nothing left to do. Deterministic: the fault suite and the bench use it.
 * - pollers (`startPolling()`, then `tick()` on the schedule's cadence): the event sources deliver on
 *   their own, at the same time as each other and as the schedules, as Lambda's pollers do. A detector
 *   can then record growth of a file while a downloader is reading it. `npm run lab` uses it.
 * Every `reconcileEveryCycles`-th tick the reconcile schedule fires too, and its run overlaps the
 * scanner's and the event sources' work as an independent schedule's would.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { CONFIG_DEFAULTS } from '../../../lambda/shared/config';
import { ENV } from '../../../lambda/shared/contract';
import type { ReconcileSummary } from '../../../lambda/shared/reconcile';
import { LAB_CREDENTIALS, LocalResources } from '../aws-services';
import { sleep } from '../net';
import type { ProcessRegistry } from '../processes';
import type { FunctionRole, PipelineDefinition, ScheduleDefinition, ScheduledRole } from '../stack-definition';
import { FUNCTION_ROLES } from '../stack-definition';
import { buildSchedulerEvent, LAB_ACCOUNT_ID } from './events';
import { InvokeResult, LambdaFunction } from './lambda-function';
import { emptySqsPumpStats, SqsEventSource, SqsPumpStats } from './sqs-source';
import { DynamoDbStreamEventSource, emptyStreamPumpStats, StreamPumpStats } from './stream-source';

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
  /**
   * The reconcile schedule fires on every N-th cycle (lab time). Default: the template's reconcile rate
   * over its scan rate (a cycle stands for one scan interval). 0: never on its own (`reconcile()` still runs it).
   */
  reconcileEveryCycles?: number;
  /** Lab-time stand-in for an SQS message's visibility timeout after a failed batch. */
  sqsRetryDelaySeconds?: number;
  streamRetryDelayMs?: number;
}

/** One scheduled (asynchronous) invocation, Lambda's retries included. */
export interface ScheduledRun {
  ok: boolean;
  attempts: number;
  error?: string;
}

/** A reconcile-schedule tick: the function's summary when it succeeded. */
export interface ReconcilerRun extends ScheduledRun {
  summary?: ReconcileSummary;
}

/** What the schedules ran on one tick. */
export interface TickStats {
  scanner: ScheduledRun;
  /** Present on the ticks the reconcile schedule fired. */
  reconciler?: ReconcilerRun;
}

/** What the event sources delivered (during a cycle, or since the pollers' last report). */
export interface DeliveryStats {
  sqs: SqsPumpStats;
  stream: StreamPumpStats;
}

export interface CycleStats extends TickStats, DeliveryStats {
  rounds: number;
}

/** Pollers' wait after a poll that found nothing (Lambda reads a stream shard about four times a second). */
const DEFAULT_IDLE_POLL_MS = 200;

interface Pollers {
  /** No new poll starts; the stream pump in progress stops reading (it delivers what it read). */
  stopping: boolean;
  /** The functions are being shut down under the polls: their failures are the shutdown's, not the pipeline's. */
  closing: boolean;
  loops: Array<Promise<void>>;
  /** Delivered since the last `takeDelivered()` (one object for the pollers' whole life). */
  readonly delivered: DeliveryStats;
}

const emptyDelivery = (): DeliveryStats => ({ sqs: emptySqsPumpStats(), stream: emptyStreamPumpStats() });

/** The reconciler's return value, checked before the lab relies on it. */
function reconcileSummaryOf(value: unknown): ReconcileSummary | undefined {
  const candidate = value as Partial<ReconcileSummary> | null;
  if (candidate && typeof candidate === 'object' && typeof candidate.findings === 'number' && Array.isArray(candidate.redriven)) {
    return candidate as ReconcileSummary;
  }
  return undefined;
}

/**
 * Why these settings leave the downloader unable to read, or undefined when they do not. It reads a page
 * only while more than its safety margin is left, and a hand-off puts the item back to PENDING, which
 * triggers it again: with a budget no larger than the margin every invocation hands its file on unread,
 * forever, and the lab would spin instead of failing. A margin that is not a number is the handler's to
 * report (its configuration refuses it).
 */
export function downloaderBudgetProblem(
  definition: Pick<PipelineDefinition, 'functions'>,
  options: Pick<LambdaServiceOptions, 'timeoutMs' | 'envOverrides'>,
): string | undefined {
  const downloader = definition.functions.downloader;
  const budgetMs = options.timeoutMs?.downloader ?? downloader.timeoutSeconds * 1000;
  const configured = options.envOverrides?.downloader?.[ENV.safetyMarginMs] ?? downloader.environment[ENV.safetyMarginMs];
  const marginMs = configured === undefined ? CONFIG_DEFAULTS.safetyMarginMs : Number(configured);
  if (!Number.isFinite(marginMs) || budgetMs > marginMs) return undefined;
  return (
    `the downloader's invocation budget (${budgetMs} ms) is not more than its safety margin ` +
    `(${ENV.safetyMarginMs} = ${marginMs} ms): it reads only while more than the margin is left, so every ` +
    `invocation would hand its file on unread and trigger the next, forever. Give it more time ` +
    `(lab: --timeout downloader=MS) or a smaller margin (lab: --env downloader:${ENV.safetyMarginMs}=MS)`
  );
}

/** Default lab-time cadence: as many cycles (scan intervals) as fit in one reconcile interval. */
export function defaultReconcileEveryCycles(definition: Pick<PipelineDefinition, 'schedule' | 'reconcileSchedule'>): number {
  return Math.max(1, Math.round(definition.reconcileSchedule.rateMs / definition.schedule.rateMs));
}

/** Where a function's environments have their /tmp folders. */
const tmpRootOf = (role: FunctionRole, options: Pick<LambdaServiceOptions, 'workDir'>): string => join(options.workDir, 'lambda-tmp', role);

/**
 * Lambda's own variables plus the template's, resolved against the local resources. LambdaFunction
 * points TMPDIR, and any variable set to '/tmp', at each environment's own /tmp folder.
 */
export function functionEnvironment(role: FunctionRole, options: LambdaServiceOptions): NodeJS.ProcessEnv {
  const fn = options.definition.functions[role];
  const functionName = `lab-${role}`;
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
    ...options.envOverrides?.[role],
  };
}

export class LocalLambdaService {
  readonly functions: Record<FunctionRole, LambdaFunction>;
  readonly sqsSource: SqsEventSource;
  readonly streamSource: DynamoDbStreamEventSource;
  readonly reconcileEveryCycles: number;
  private readonly ticks: Record<ScheduledRole, number> = { scanner: 0, reconciler: 0 };
  /** Scan-schedule ticks so far (cycles or `tick()`s): the reconcile schedule fires on every N-th. */
  private scheduleTicks = 0;
  private pollers: Pollers | undefined;

  constructor(private readonly options: LambdaServiceOptions) {
    const { definition, resources, registry, region } = options;
    const logDir = join(options.workDir, 'logs');
    mkdirSync(logDir, { recursive: true });
    const concurrency: Record<FunctionRole, number> = {
      scanner: 1,
      detector: definition.detectorSource.maxConcurrency ?? 1,
      // One batch per shard at a time (parallelization factor), capped by reserved concurrency.
      downloader: Math.max(1, Math.min(definition.functions.downloader.reservedConcurrency ?? Infinity, definition.downloaderSource.parallelizationFactor)),
      // A run lasts far less than the reconcile interval; runs never overlap.
      reconciler: 1,
    };
    const every = options.reconcileEveryCycles ?? defaultReconcileEveryCycles(definition);
    if (!Number.isInteger(every) || every < 0) throw new Error(`reconcileEveryCycles must be a whole number >= 0, got ${every}`);
    this.reconcileEveryCycles = every;
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
        tmp: { root: tmpRootOf(role, options), sizeMb: fn.ephemeralStorageMb },
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

  /** One scan-schedule tick: EventBridge Scheduler invokes the scanner asynchronously. */
  async tickSchedule(): Promise<ScheduledRun> {
    return (await this.invokeScheduled('scanner', this.options.definition.schedule)).run;
  }

  /** One reconcile-schedule tick (also the lab's way to run the reconciler at a moment of its choosing). */
  async reconcile(): Promise<ReconcilerRun> {
    const { run, value } = await this.invokeScheduled('reconciler', this.options.definition.reconcileSchedule);
    if (!run.ok) return run;
    const summary = reconcileSummaryOf(value);
    if (!summary) return { ok: false, attempts: run.attempts, error: `unexpected result ${JSON.stringify(value)?.slice(0, 200)}` };
    return { ...run, summary };
  }

  /**
   * Scheduler hands the event to Lambda asynchronously: a failed invocation is retried with the same
   * event as often as the function's EventInvokeConfig says, then its invocation record goes to the
   * on-failure destination.
   */
  private async invokeScheduled(role: ScheduledRole, schedule: ScheduleDefinition): Promise<{ run: ScheduledRun; value?: unknown }> {
    this.ticks[role] += 1;
    const fn = this.functions[role];
    const { asyncInvoke } = this.options.definition.functions[role];
    const event = buildSchedulerEvent(schedule.input, {
      arn: `arn:aws:scheduler:${this.options.region}:${LAB_ACCOUNT_ID}:schedule/default/${schedule.logicalId}`,
      scheduledTime: new Date(),
      executionId: `lab-${role}-tick-${this.ticks[role]}`,
      attemptNumber: 1,
    });
    const attempts = 1 + asyncInvoke.retryAttempts;
    let last: InvokeResult | undefined;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      last = await fn.invoke(event);
      if (last.ok) return { run: { ok: true, attempts: attempt }, value: last.value };
    }
    const error = last && !last.ok ? `${last.errorType}: ${last.errorMessage}` : 'no invocation';
    const onFailure = asyncInvoke.onFailureQueueLogicalId ? this.options.resources.queueUrls[asyncInvoke.onFailureQueueLogicalId] : undefined;
    if (onFailure && last && !last.ok) {
      const record = {
        version: '1.0',
        timestamp: new Date().toISOString(),
        requestContext: { requestId: last.requestId, functionArn: `${fn.arn}:$LATEST`, condition: 'RetriesExhausted', approximateInvokeCount: attempts },
        requestPayload: event,
        responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
        responsePayload: { errorType: last.errorType, errorMessage: last.errorMessage },
      };
      await this.options.clients.sqs.send(new SendMessageCommand({ QueueUrl: onFailure, MessageBody: JSON.stringify(record) }));
    }
    return { run: { ok: false, attempts, error } };
  }

  /** Counts a scan-schedule tick; returns the reconciler's run when the reconcile schedule fires with it. */
  private startTick(): Promise<ReconcilerRun> | undefined {
    this.scheduleTicks += 1;
    const due = this.reconcileEveryCycles > 0 && this.scheduleTicks % this.reconcileEveryCycles === 0;
    return due ? this.reconcile() : undefined;
  }

  /**
   * Ticks the scan schedule (and the reconcile schedule when due), then drains the queue and the stream
   * until neither has anything more to deliver. Items the reconciler re-drove are drained in the same cycle.
   */
  async cycle(maxRounds = 50): Promise<CycleStats> {
    if (this.pollers) throw new Error('cycle() drains the event sources itself: stop the pollers first, or tick() while they run');
    const reconciling = this.startTick();
    const scanner = await this.tickSchedule();
    const { sqs, stream } = emptyDelivery();
    let rounds = await this.drain(maxRounds, sqs, stream);
    const reconciler = await reconciling;
    if (reconciler?.summary?.redriven.length) rounds += await this.drain(maxRounds, sqs, stream);
    return { scanner, ...(reconciler ? { reconciler } : {}), sqs, stream, rounds };
  }

  /** The schedules' part of a cycle alone: what they start, the running pollers deliver. */
  async tick(): Promise<TickStats> {
    const reconciling = this.startTick();
    const scanner = await this.tickSchedule();
    const reconciler = await reconciling;
    return { scanner, ...(reconciler ? { reconciler } : {}) };
  }

  private async drain(maxRounds: number, sqs: SqsPumpStats, stream: StreamPumpStats): Promise<number> {
    let rounds = 0;
    for (; rounds < maxRounds; rounds += 1) {
      const queued = await this.sqsSource.pump();
      const streamed = await this.streamSource.pump();
      mergeInto(sqs, queued);
      mergeInto(stream, streamed);
      if (queued.messages === 0 && streamed.recordsRead === 0) break;
    }
    return rounds;
  }

  get polling(): boolean {
    return this.pollers !== undefined;
  }

  /**
   * Starts Lambda's pollers: as many on the queue as the detector's maximum concurrency, one on the
   * stream (one shard, parallelization factor 1). Each delivers as soon as there is something, then
   * polls again; after a poll that found nothing it waits `idlePollMs`. A poll that fails (the service
   * cannot be reached) counts as a function error of its source, as the lab must not pass over it, and
   * the poller goes on, as Lambda's do.
   */
  startPolling(idlePollMs = DEFAULT_IDLE_POLL_MS): void {
    if (this.pollers) throw new Error('the pollers are already running');
    const pollers: Pollers = { stopping: false, closing: false, loops: [], delivered: emptyDelivery() };
    const poll = async (once: () => Promise<boolean>, errors: () => string[]): Promise<void> => {
      while (!pollers.stopping) {
        let found = false;
        try {
          found = await once();
        } catch (error) {
          if (!pollers.closing) errors().push(`event source poll failed: ${String((error as Error)?.message ?? error)}`);
        }
        // Even a busy poller yields to the event loop between polls: the others, the ticks and the stop run too.
        if (!found && !pollers.stopping) await sleep(idlePollMs);
        else await new Promise<void>((resolve) => setImmediate(resolve));
      }
    };
    const queuePoll = async (): Promise<boolean> => {
      const tally = pollers.delivered.sqs;
      const batchesBefore = tally.batches;
      await this.sqsSource.pump(1, tally);
      return tally.batches !== batchesBefore;
    };
    const streamPoll = async (): Promise<boolean> => {
      // Counted straight into the tally: a backlog's pump lasts many ticks, and each tick reports what
      // was delivered during it. (A report taken during a poll can make it look idle or busy when it
      // was not: one idle wait too many or too few.)
      const tally = pollers.delivered.stream;
      const readBefore = tally.recordsRead;
      await this.streamSource.pump(tally, { stopRequested: () => pollers.stopping });
      return tally.recordsRead !== readBefore;
    };
    const queuePollers = Math.max(1, this.functions.detector.options.maxConcurrency);
    for (let index = 0; index < queuePollers; index += 1) {
      pollers.loops.push(poll(queuePoll, () => pollers.delivered.sqs.functionErrors));
    }
    pollers.loops.push(poll(streamPoll, () => pollers.delivered.stream.functionErrors));
    this.pollers = pollers;
  }

  /** What the pollers delivered since the last call (or their start). The tally is reset in place: pumps in progress count on into it. */
  takeDelivered(): DeliveryStats {
    if (!this.pollers) return emptyDelivery();
    const { delivered } = this.pollers;
    const taken = structuredClone(delivered);
    const zeroed = emptyDelivery();
    Object.assign(delivered.sqs, zeroed.sqs);
    Object.assign(delivered.stream, zeroed.stream);
    return taken;
  }

  /**
   * Stops the pollers: none starts a new poll, the stream pump stops reading after its current read, and
   * the deliveries in progress finish. Returns what was delivered since the last report, failures included.
   */
  async stopPolling(): Promise<DeliveryStats> {
    const pollers = this.pollers;
    if (!pollers) return emptyDelivery();
    pollers.stopping = true;
    await Promise.all(pollers.loops);
    const rest = this.takeDelivered();
    this.pollers = undefined;
    return rest;
  }

  /** Ends every environment; running pollers stop with them (what they were delivering fails). */
  async close(): Promise<void> {
    if (this.pollers) {
      this.pollers.stopping = true;
      this.pollers.closing = true;
    }
    await Promise.all(Object.values(this.functions).map((fn) => fn.close()));
    if (this.pollers) await Promise.all(this.pollers.loops);
    this.pollers = undefined;
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
