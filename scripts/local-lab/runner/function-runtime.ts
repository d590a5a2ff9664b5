/**
 * One Lambda execution environment: a Node process that imports a handler module once (its module
 * scope — configuration, SDK clients — lives as long as the process, as in a warm Lambda environment)
 * and answers invocations from the local Lambda service over IPC. The service kills the process on a
 * timeout, so a timed-out invocation really stops, as it does in Lambda. Between invocations the
 * process is frozen (events.ts, FREEZE_FD).
 *
 * Started as: node --import tsx function-runtime.ts <handler module path>, with the control pipe as fd 4
 * The environment is complete before this process starts, so the handler reads it at import.
 */
import { readSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { buildContext, ENVIRONMENT_TMPDIR_VARIABLE, FREEZE_FD, InvocationMeta } from './events';
import { type MemorySnapshot, memorySnapshot, peakRssKb, resetPeakRss, sampleMemory } from './memory-sampler';

export interface InvokeMessage {
  type: 'invoke';
  id: number;
  event: unknown;
  meta: InvocationMeta;
}

export type RuntimeMessage =
  | {
      type: 'ready';
      initMs: number;
      /** Resident memory right after init and its composition: the baseline memory figures subtract. */
      memory: MemorySnapshot;
      /** Whether the kernel's peak-RSS mark was reset after init (maxRssKb then excludes init). */
      peakRssReset?: boolean;
    }
  | { type: 'init-error'; error: SerializedError }
  | {
      type: 'result';
      id: number;
      ok: boolean;
      value?: unknown;
      error?: SerializedError;
      durationMs: number;
      /** CPU time (user + system) the process used during the invocation, background GC threads included. */
      cpuMs: number;
      /** Peak resident memory of this environment since init (so far, KiB); since start if not reset. */
      maxRssKb: number;
      /** The highest-RSS sample taken during the invocation (memory-sampler). */
      peakSample: MemorySnapshot;
    };

export interface SerializedError {
  errorType: string;
  errorMessage: string;
  stack?: string;
}

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

function serialize(error: unknown): SerializedError {
  if (error instanceof Error) return { errorType: error.name, errorMessage: error.message, stack: error.stack };
  return { errorType: 'Error', errorMessage: String(error) };
}

function send(message: RuntimeMessage, sent?: () => void): void {
  process.send?.(message, undefined, undefined, () => sent?.());
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Blocks this process's only thread until the service writes a byte to the control pipe (see
 * FREEZE_FD): no timer, callback or promise of the handler's runs meanwhile. The end of the pipe
 * (the service is gone) ends the process.
 */
function freezeUntilThawed(): void {
  const byte = Buffer.alloc(1);
  for (;;) {
    try {
      // End of the pipe: the service is gone, and so is this environment.
      if (readSync(FREEZE_FD, byte, 0, 1, null) === 0) process.exit(0);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A signal Node handles (SIGUSR1 starts the inspector) interrupts the read: read on.
      if (code === 'EINTR') continue;
      // A non-blocking pipe with nothing written yet.
      if (code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 5);
        continue;
      }
      process.stderr.write(`function runtime: cannot wait on its control pipe (fd ${FREEZE_FD}): ${String(error)}\n`);
      process.exit(1);
    }
  }
}

async function main(): Promise<void> {
  const modulePath = process.argv[2];
  if (!modulePath || !process.send) throw new Error('usage: function-runtime.ts <handler module> (with an IPC channel)');
  // The service going away (even by SIGKILL) closes the channel: the environment ends with it.
  process.on('disconnect', () => process.exit(0));

  const environmentTmp = process.env[ENVIRONMENT_TMPDIR_VARIABLE];
  if (environmentTmp) {
    process.env.TMPDIR = environmentTmp;
    delete process.env[ENVIRONMENT_TMPDIR_VARIABLE];
  }

  const started = performance.now();
  let handler: Handler;
  try {
    const loaded = (await import(pathToFileURL(modulePath).href)) as { handler?: unknown; default?: { handler?: unknown } };
    const exported = loaded.handler ?? loaded.default?.handler;
    if (typeof exported !== 'function') throw new Error(`${modulePath} does not export a handler function`);
    handler = exported as Handler;
  } catch (error) {
    send({ type: 'init-error', error: serialize(error) });
    return;
  }
  // From here the peak RSS is the invocations' own, not init's.
  const peakRssReset = resetPeakRss();
  const memory = memorySnapshot();
  send({ type: 'ready', initMs: performance.now() - started, memory, peakRssReset });

  process.on('message', (message: InvokeMessage) => {
    if (message.type !== 'invoke') return;
    const begin = performance.now();
    const cpuBefore = process.cpuUsage();
    const stopSampling = sampleMemory();
    Promise.resolve()
      .then(() => handler(message.event, buildContext(message.meta)))
      // Lambda returns the result serialized as JSON (undefined becomes null); a result that cannot be
      // serialized fails the invocation, as it does there.
      .then((value) => ({ ok: true, value: value === undefined ? null : (JSON.parse(JSON.stringify(value)) as unknown) }))
      .catch((error: unknown) => ({ ok: false, error: serialize(error) }))
      .then((outcome: { ok: boolean; value?: unknown; error?: SerializedError }) =>
        send(
          {
            type: 'result',
            id: message.id,
            ...outcome,
            durationMs: performance.now() - begin,
            cpuMs: cpuMilliseconds(process.cpuUsage(cpuBefore)),
            maxRssKb: peakRssKb(),
            peakSample: stopSampling(),
          },
          freezeUntilThawed,
        ),
      );
  });
}

function cpuMilliseconds(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

main().catch((error: unknown) => {
  process.stderr.write(`function runtime failed: ${String(error)}\n`);
  process.exit(1);
});
