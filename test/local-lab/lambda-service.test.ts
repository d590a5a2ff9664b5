import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { ENV, RECONCILE_EVENT_FIELDS } from '../../lambda/shared/contract';
import type { ReconcileSummary } from '../../lambda/shared/reconcile';
import type { LocalResources } from '../../scripts/local-lab/aws-services';
import { ProcessRegistry } from '../../scripts/local-lab/processes';
import type { InvokeResult, LambdaFunction } from '../../scripts/local-lab/runner/lambda-function';
import { downloaderBudgetProblem, LocalLambdaService } from '../../scripts/local-lab/runner/lambda-service';
import { emptySqsPumpStats, type SqsPumpStats } from '../../scripts/local-lab/runner/sqs-source';
import { emptyStreamPumpStats, type StreamPumpStats } from '../../scripts/local-lab/runner/stream-source';
import { type FunctionRole, synthesizePipeline } from '../../scripts/local-lab/stack-definition';

// One synthesis (no bundling) for the whole file.
const definition = synthesizePipeline('us-east-1', '123456789012');
const sqsMock = mockClient(SQSClient);

const queueUrl = (logicalId: string) => `http://127.0.0.1/123456789012/${logicalId}`;
const resources: LocalResources = {
  bucket: 'bucket',
  ledgerTable: 'ledger',
  ledgerStreamArn: 'arn:aws:dynamodb:us-east-1:123456789012:table/ledger/stream/x',
  idempotencyTable: 'idempotency',
  queueUrls: new Proxy({}, { get: (_target, name) => (typeof name === 'string' ? queueUrl(name) : undefined) }),
  queueArns: new Proxy({}, { get: (_target, name) => (typeof name === 'string' ? `arn:aws:sqs:us-east-1:123456789012:${name}` : undefined) }),
  resolve: (value) => (typeof value === 'string' ? value : JSON.stringify(value)),
};

const summary = (redriven: ReconcileSummary['redriven'] = []): ReconcileSummary => ({
  findings: redriven.length,
  findingsByCode: redriven.length ? { STALE_PENDING: redriven.length } : {},
  itemsVerified: 0,
  objectsChecked: 0,
  redriven,
  waitingForBackoff: 0,
  changedMeanwhile: 0,
});
const ok = (value: unknown = null): InvokeResult => ({ ok: true, value, requestId: 'r', durationMs: 1 });
const failure: InvokeResult = { ok: false, requestId: 'r-failed', durationMs: 1, timedOut: false, crashed: false, errorType: 'Error', errorMessage: 'boom' };
const quietSqs = emptySqsPumpStats;
const quietStream = emptyStreamPumpStats;

/** The service with its scheduled functions and event sources replaced by doubles that log what happens. */
function serviceWith(options: { reconcileEveryCycles?: number; reconciler?: (call: number) => InvokeResult }) {
  const workDir = mkdtempSync(join(tmpdir(), 'lambda-service-test-'));
  const service = new LocalLambdaService({
    definition,
    resources,
    clients: { sqs: new SQSClient({ region: 'us-east-1' }), streams: new DynamoDBStreamsClient({ region: 'us-east-1' }) },
    registry: new ProcessRegistry(),
    region: 'us-east-1',
    awsEndpointUrl: 'http://127.0.0.1:1',
    rdsEndpointUrl: 'http://127.0.0.1:2',
    workDir,
    ...(options.reconcileEveryCycles !== undefined ? { reconcileEveryCycles: options.reconcileEveryCycles } : {}),
  });
  const timeline: string[] = [];
  const events: Partial<Record<FunctionRole, unknown[]>> = {};
  const fake = (role: FunctionRole, respond: (call: number) => InvokeResult): LambdaFunction => {
    const calls: unknown[] = (events[role] = []);
    return {
      arn: `arn:aws:lambda:us-east-1:123456789012:function:lab-${role}`,
      invoke: async (event: unknown) => {
        calls.push(event);
        timeline.push(role);
        return respond(calls.length);
      },
      close: async () => undefined,
    } as unknown as LambdaFunction;
  };
  const functions = service.functions as Record<FunctionRole, LambdaFunction>;
  functions.scanner = fake('scanner', () => ok());
  functions.reconciler = fake('reconciler', options.reconciler ?? (() => ok(summary())));
  Object.assign(service.sqsSource, { pump: async () => (timeline.push('pump'), quietSqs()) });
  Object.assign(service.streamSource, { pump: async () => quietStream() });
  return { service, timeline, events, cleanup: () => rmSync(workDir, { recursive: true, force: true }) };
}

beforeEach(() => {
  sqsMock.reset();
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'm' });
});

describe('LocalLambdaService schedules', () => {
  it("fires the reconcile schedule on every N-th cycle only, with the schedule's input and the tick's scheduled time", async () => {
    const { service, events, cleanup } = serviceWith({ reconcileEveryCycles: 3 });
    try {
      const fired: number[] = [];
      for (let cycle = 1; cycle <= 7; cycle += 1) {
        const stats = await service.cycle();
        if (stats.reconciler) fired.push(cycle);
        expect(stats.reconciler?.summary ?? summary()).toEqual(summary());
      }
      expect(fired).toEqual([3, 6]);
      expect(events.scanner).toHaveLength(7);
      expect(events.reconciler).toEqual([
        { [RECONCILE_EVENT_FIELDS.scheduledTime]: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) },
        { [RECONCILE_EVENT_FIELDS.scheduledTime]: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) },
      ]);
    } finally {
      cleanup();
    }
  });

  it('defaults to the ratio of the reconcile rate to the scan rate; 0 never fires it on its own', async () => {
    const derived = serviceWith({});
    const never = serviceWith({ reconcileEveryCycles: 0 });
    try {
      expect(derived.service.reconcileEveryCycles).toBe(Math.round(definition.reconcileSchedule.rateMs / definition.schedule.rateMs));
      for (let cycle = 0; cycle < 5; cycle += 1) expect((await never.service.cycle()).reconciler).toBeUndefined();
      expect(never.events.reconciler).toHaveLength(0);
      expect((await never.service.reconcile()).ok).toBe(true);
    } finally {
      derived.cleanup();
      never.cleanup();
    }
  });

  it('drains the event sources again in the same cycle when the reconciler re-drove items', async () => {
    const redriven = [{ instance: 'lab-writer', file: 'audit/a.log', from: 'PENDING' as const }];
    const pumpsPerCycle = async (reconcilerResult: ReconcileSummary): Promise<number> => {
      const { service, timeline, cleanup } = serviceWith({ reconcileEveryCycles: 1, reconciler: () => ok(reconcilerResult) });
      try {
        const stats = await service.cycle();
        expect(stats.reconciler?.summary).toEqual(reconcilerResult);
        return timeline.filter((step) => step === 'pump').length;
      } finally {
        cleanup();
      }
    };
    // Quiet sources: one round per drain; the re-drive adds a second drain after the run.
    expect(await pumpsPerCycle(summary())).toBe(1);
    expect(await pumpsPerCycle(summary(redriven))).toBe(2);
  });

  it("retries a failed run as the function's EventInvokeConfig says, then sends the invocation record to its on-failure queue", async () => {
    const { service, events, cleanup } = serviceWith({ reconciler: () => failure });
    try {
      const run = await service.reconcile();
      const { asyncInvoke } = definition.functions.reconciler;
      expect(run).toEqual({ ok: false, attempts: 1 + asyncInvoke.retryAttempts, error: 'Error: boom' });
      expect(events.reconciler).toHaveLength(1 + asyncInvoke.retryAttempts);
      const sent = sqsMock.commandCalls(SendMessageCommand);
      expect(sent).toHaveLength(1);
      expect(sent[0]?.args[0].input.QueueUrl).toBe(queueUrl(asyncInvoke.onFailureQueueLogicalId ?? 'none'));
      expect(JSON.parse(sent[0]?.args[0].input.MessageBody ?? '{}')).toMatchObject({
        requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: 1 + asyncInvoke.retryAttempts, requestId: 'r-failed' },
        requestPayload: {},
        responsePayload: { errorType: 'Error', errorMessage: 'boom' },
      });
    } finally {
      cleanup();
    }
  });

  it('treats a reconciler result without a summary as a failed run', async () => {
    const { service, cleanup } = serviceWith({ reconciler: () => ok({ unexpected: true }) });
    try {
      const run = await service.reconcile();
      expect(run.ok).toBe(false);
      expect(run.error).toMatch(/unexpected result/);
    } finally {
      cleanup();
    }
  });
});

/** A promise with its resolver, to hold a fake poll open. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const until = async (condition: () => boolean, timeoutMs = 5000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

describe('LocalLambdaService pollers', () => {
  it('delivers from the queue and the stream at the same time, as many queue pollers as the detector may run', async () => {
    const { service, cleanup } = serviceWith({});
    const streamStarted = gate();
    let queuePollsInFlight = 0;
    let mostQueuePollsAtOnce = 0;
    let queueSawStreamRunning = false;
    Object.assign(service.sqsSource, {
      pump: async (maxBatches: number, tally: SqsPumpStats) => {
        expect(maxBatches).toBe(1);
        queuePollsInFlight += 1;
        mostQueuePollsAtOnce = Math.max(mostQueuePollsAtOnce, queuePollsInFlight);
        // Held until the stream poller is delivering too: cycles (one source after the other) would hang here.
        await streamStarted.opened;
        queueSawStreamRunning = true;
        await new Promise((resolve) => setTimeout(resolve, 20));
        queuePollsInFlight -= 1;
        Object.assign(tally, { batches: tally.batches + 1, messages: tally.messages + 1, succeeded: tally.succeeded + 1 });
        return tally;
      },
    });
    Object.assign(service.streamSource, {
      pump: async (tally: StreamPumpStats) => {
        streamStarted.open();
        Object.assign(tally, { recordsRead: tally.recordsRead + 2, delivered: tally.delivered + 2, invocations: tally.invocations + 1 });
        return tally;
      },
    });
    try {
      service.startPolling(10);
      await until(() => queueSawStreamRunning && mostQueuePollsAtOnce >= 2);
      const rest = await service.stopPolling();
      expect(mostQueuePollsAtOnce).toBe(service.functions.detector.options.maxConcurrency);
      expect(mostQueuePollsAtOnce).toBeGreaterThanOrEqual(2);
      expect(rest.sqs.messages).toBeGreaterThanOrEqual(2);
      expect(rest.stream.delivered).toBeGreaterThanOrEqual(2);
      expect(queuePollsInFlight).toBe(0);
      expect(service.polling).toBe(false);
    } finally {
      await service.stopPolling();
      cleanup();
    }
  });

  it('reports deliveries once each, also those of a pump that spans reports, and stopPolling waits for a poll in progress', async () => {
    const { service, cleanup } = serviceWith({});
    const release = gate();
    let streamPolls = 0;
    Object.assign(service.sqsSource, { pump: async () => quietSqs() });
    Object.assign(service.streamSource, {
      pump: async (tally: StreamPumpStats) => {
        streamPolls += 1;
        tally.recordsRead += 1;
        tally.delivered += 1;
        // The second pump delivers one record, is reported on, then delivers another (a long backlog).
        if (streamPolls === 2) {
          await release.opened;
          tally.recordsRead += 1;
          tally.delivered += 1;
        }
        return tally;
      },
    });
    try {
      service.startPolling(10);
      await until(() => streamPolls === 2);
      expect(service.takeDelivered().stream.delivered).toBe(2);
      expect(service.takeDelivered().stream.delivered).toBe(0);
      const stopping = service.stopPolling();
      let stopped = false;
      void stopping.then(() => (stopped = true));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(stopped).toBe(false);
      release.open();
      expect((await stopping).stream.delivered).toBe(1);
      expect(streamPolls).toBe(2);
    } finally {
      cleanup();
    }
  });

  it('counts a failed poll as a function error of its source and keeps polling', async () => {
    const { service, cleanup } = serviceWith({});
    let polls = 0;
    Object.assign(service.sqsSource, { pump: async () => quietSqs() });
    Object.assign(service.streamSource, {
      pump: async () => {
        polls += 1;
        if (polls === 1) throw new Error('connect ECONNREFUSED 127.0.0.1:1');
        return quietStream();
      },
    });
    try {
      service.startPolling(5);
      await until(() => polls >= 3);
      const delivered = await service.stopPolling();
      expect(delivered.stream.functionErrors).toEqual(['event source poll failed: connect ECONNREFUSED 127.0.0.1:1']);
      expect(delivered.sqs.functionErrors).toEqual([]);
    } finally {
      cleanup();
    }
  });

  it('keeps the failure of a poll still running when the pollers are stopped, but not one caused by shutting the functions down', async () => {
    const failLate = async (stop: (service: LocalLambdaService) => Promise<unknown>): Promise<string[]> => {
      const { service, cleanup } = serviceWith({});
      const release = gate();
      let started = false;
      Object.assign(service.sqsSource, { pump: async () => quietSqs() });
      Object.assign(service.streamSource, {
        pump: async () => {
          started = true;
          await release.opened;
          throw new Error('GetRecords failed');
        },
      });
      try {
        service.startPolling(10);
        await until(() => started);
        const stopped = stop(service);
        release.open();
        const result = (await stopped) as { stream?: { functionErrors: string[] } } | undefined;
        return result?.stream?.functionErrors ?? [];
      } finally {
        cleanup();
      }
    };
    expect(await failLate((service) => service.stopPolling())).toEqual(['event source poll failed: GetRecords failed']);
    expect(await failLate((service) => service.close())).toEqual([]);
  });

  it('counts queue deliveries into the tally as they happen, so a pump failing after its invocation keeps its function error', async () => {
    const { service, cleanup } = serviceWith({});
    let polls = 0;
    Object.assign(service.streamSource, { pump: async () => quietStream() });
    Object.assign(service.sqsSource, {
      pump: async (_maxBatches: number, tally: SqsPumpStats) => {
        polls += 1;
        if (polls > 1) return tally;
        tally.batches += 1;
        tally.messages += 3;
        tally.functionErrors.push('Error: detector failed');
        throw new Error('DeleteMessageBatch failed');
      },
    });
    try {
      service.startPolling(5);
      await until(() => polls >= 3);
      const delivered = await service.stopPolling();
      expect(delivered.sqs.messages).toBe(3);
      expect(delivered.sqs.functionErrors).toEqual(['Error: detector failed', 'event source poll failed: DeleteMessageBatch failed']);
    } finally {
      cleanup();
    }
  });

  it('ticks only the schedules while the pollers run, the reconciler on every N-th tick, and refuses a draining cycle', async () => {
    const { service, events, timeline, cleanup } = serviceWith({ reconcileEveryCycles: 2 });
    Object.assign(service.streamSource, { pump: async () => quietStream() });
    try {
      service.startPolling(100);
      const ticks = [await service.tick(), await service.tick(), await service.tick()];
      expect(ticks.map((tick) => tick.reconciler !== undefined)).toEqual([false, true, false]);
      expect(ticks.every((tick) => tick.scanner.ok)).toBe(true);
      expect(events.scanner).toHaveLength(3);
      await expect(service.cycle()).rejects.toThrow(/stop the pollers first/);
      expect(() => service.startPolling()).toThrow(/already running/);
      await service.stopPolling();
      // Stopped: cycles drain again, and the tick count goes on (the 4th fires the reconciler).
      const pumpsBefore = timeline.filter((step) => step === 'pump').length;
      expect((await service.cycle()).reconciler).toBeDefined();
      expect(timeline.filter((step) => step === 'pump').length).toBe(pumpsBefore + 1);
    } finally {
      await service.stopPolling();
      cleanup();
    }
  });
});

describe('downloaderBudgetProblem', () => {
  const marginMs = Number(definition.functions.downloader.environment[ENV.safetyMarginMs]);

  it("accepts the template's own budget and margin", () => {
    expect(marginMs).toBeGreaterThan(0);
    expect(downloaderBudgetProblem(definition, {})).toBeUndefined();
  });

  it('refuses a budget no larger than the margin, naming both and the options that change them', () => {
    for (const budget of [2500, marginMs]) {
      const problem = downloaderBudgetProblem(definition, { timeoutMs: { downloader: budget } });
      expect(problem).toContain(`budget (${budget} ms)`);
      expect(problem).toContain(`${ENV.safetyMarginMs} = ${marginMs} ms`);
      expect(problem).toContain('--timeout downloader=MS');
    }
    expect(downloaderBudgetProblem(definition, { timeoutMs: { downloader: marginMs + 1 } })).toBeUndefined();
  });

  it('judges a short budget against the margin it is given with it, as the scenarios set them', () => {
    const timeoutMs = { downloader: 2500 };
    expect(downloaderBudgetProblem(definition, { timeoutMs, envOverrides: { downloader: { [ENV.safetyMarginMs]: '2000' } } })).toBeUndefined();
    expect(downloaderBudgetProblem(definition, { timeoutMs, envOverrides: { downloader: { [ENV.safetyMarginMs]: '2500' } } })).toContain('= 2500 ms');
    // Budgets of the other functions are not the downloader's.
    expect(downloaderBudgetProblem(definition, { timeoutMs: { detector: 1 } })).toBeUndefined();
    // The handler refuses a margin that is not a number itself, with its own message.
    expect(downloaderBudgetProblem(definition, { timeoutMs, envOverrides: { downloader: { [ENV.safetyMarginMs]: 'soon' } } })).toBeUndefined();
  });
});
