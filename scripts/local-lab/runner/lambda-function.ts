/**
 * A deployed function as the local Lambda service runs it: execution environments (one process each,
 * see function-runtime.ts) created on demand up to a concurrency limit, reused while warm, frozen
 * between invocations, each with its own /tmp of the function's ephemeral storage size, killed on
 * timeout or when an invocation takes the environment over the function's memory size, and replaced
 * after a crash. Errors come back as Lambda reports them (errorType/errorMessage),
 * never thrown, so event sources can apply their own retry rules.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProcessRegistry, TrackedProcess } from '../processes';
import { ENVIRONMENT_TMPDIR_VARIABLE, FREEZE_FD, FunctionIdentity, functionArn, newInvocation } from './events';
import type { InvokeMessage, RuntimeMessage, SerializedError } from './function-runtime';
import { type MemorySnapshot, memoryGrowth } from './memory-sampler';

const RUNTIME_ENTRY = join(__dirname, 'function-runtime.ts');
const REPO_ROOT = join(__dirname, '..', '..', '..');

export interface LambdaFunctionOptions {
  identity: FunctionIdentity;
  /** The handler module (`lambda/<name>/index.ts`). */
  entry: string;
  /** Complete environment of every execution environment (Lambda's variables included). */
  environment: NodeJS.ProcessEnv;
  timeoutMs: number;
  maxConcurrency: number;
  registry: ProcessRegistry;
  logFile: string;
  /** Init (module import) budget, as Lambda's 10 s init phase. */
  initTimeoutMs?: number;
  /**
   * Each environment's /tmp (its TMPDIR): one folder per concurrency slot under `root`. An environment
   * that replaces a crashed one gets that slot's folder with whatever was left in it, as Lambda keeps
   * /tmp when it resets an environment after a timeout or crash. TMPDIR, and every variable whose
   * value is '/tmp' (a template's spool folder), point at it. Without this option the environment is
   * used as given.
   */
  tmp?: { root: string; sizeMb: number };
}

export type InvokeResult =
  | { ok: true; value: unknown; requestId: string; durationMs: number }
  | ({
      ok: false;
      requestId: string;
      durationMs: number;
      timedOut: boolean;
      crashed: boolean;
      outOfMemory?: boolean;
      tmpFull?: boolean;
    } & SerializedError);

/** How often an invocation's resident memory and /tmp are checked against the function's sizes. */
const RESOURCE_CHECK_MS = 100;

/** Resident memory of a process in KiB (Linux /proc), or undefined where it cannot be read. */
export function residentKb(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    // The process ended, or this is not Linux: nothing to enforce.
    return undefined;
  }
}

/**
 * Lambda's /tmp is private to the environment: '/tmp' in the configuration means the environment's own
 * folder. The process starts with the slots' shared parent folder as TMPDIR (see ENVIRONMENT_TMPDIR_VARIABLE).
 */
function environmentWithTmp(environment: NodeJS.ProcessEnv, tmpDir: string): NodeJS.ProcessEnv {
  const mapped = Object.fromEntries(Object.entries(environment).map(([name, value]) => [name, value === '/tmp' ? tmpDir : value]));
  return { ...mapped, TMPDIR: dirname(tmpDir), [ENVIRONMENT_TMPDIR_VARIABLE]: tmpDir };
}

/** Bytes of the files under a folder (a file removed while it is read counts as gone). */
export function folderBytes(folder: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(folder, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) total += folderBytes(path);
    else {
      try {
        total += lstatSync(path).size;
      } catch {
        // Removed since it was listed.
      }
    }
  }
  return total;
}

export interface FunctionStats {
  invocations: number;
  errors: number;
  timeouts: number;
  crashes: number;
  /** Invocations ended because the environment's resident memory exceeded the function's memory size. */
  outOfMemory: number;
  /** Invocations failed with ENOSPC: they grew their environment's /tmp past the function's ephemeral storage. */
  tmpFull: number;
  /** Most bytes one environment's /tmp was seen holding during an invocation (sampled). */
  peakTmpBytes: number;
  coldStarts: number;
  initMsTotal: number;
  durationMsTotal: number;
  /** Sum of the invocations' CPU time (user + system, GC threads included). */
  cpuMsTotal: number;
  /** Highest peak RSS any environment reported (KiB). */
  peakRssKb: number;
  /**
   * Largest growth of one environment: its peak RSS since init (the kernel's high-water mark, reset
   * after init where Linux allows) less its RSS right after init (KiB). What the invocations added, as
   * a memory-bound figure needs.
   */
  peakRssGrowthKb: number;
  /** False when an environment could not reset the peak after init (its peak then includes init's). */
  peakRssExcludesInit: boolean;
  /** RSS right after init of the environment that set peakRssGrowthKb (KiB). */
  peakRssGrowthBaselineKb: number;
  /**
   * In that environment's invocation with the highest sampled RSS: what grew since init, by kind (KiB).
   * Sampled, so its rss can stay below peakRssGrowthKb (the kernel's exact high-water mark).
   */
  peakSampleGrowth?: MemorySnapshot;
}

interface Environment {
  process: TrackedProcess;
  ready: Promise<void>;
  busy: boolean;
  dead: boolean;
  /** Blocked on its control pipe since its last result (events.ts, FREEZE_FD), as Lambda freezes an idle environment. */
  frozen: boolean;
  /** Concurrency slot, whose /tmp folder (tmpDirOf) this environment has. */
  slot: number;
  /** Memory right after init, as the runtime reported it. */
  initMemory?: MemorySnapshot;
  pending?: { id: number; resolve: (message: Extract<RuntimeMessage, { type: 'result' }> | undefined) => void };
}

export class LambdaFunction {
  readonly stats: FunctionStats = {
    invocations: 0,
    errors: 0,
    timeouts: 0,
    crashes: 0,
    outOfMemory: 0,
    tmpFull: 0,
    peakTmpBytes: 0,
    coldStarts: 0,
    initMsTotal: 0,
    durationMsTotal: 0,
    cpuMsTotal: 0,
    peakRssKb: 0,
    peakRssGrowthKb: 0,
    peakRssGrowthBaselineKb: 0,
    peakRssExcludesInit: true,
  };
  private readonly environments: Environment[] = [];
  private readonly waiting: Array<() => void> = [];
  private nextId = 1;
  private closed = false;
  /** Budget override for the next invocations (a fault scenario shortens it). */
  timeoutMs: number;

  constructor(readonly options: LambdaFunctionOptions) {
    this.timeoutMs = options.timeoutMs;
  }

  get name(): string {
    return this.options.identity.functionName;
  }

  get arn(): string {
    return functionArn(this.options.identity);
  }

  async invoke(event: unknown): Promise<InvokeResult> {
    const environment = await this.acquire();
    const invocation = newInvocation(this.options.identity, this.timeoutMs);
    const started = Date.now();
    this.stats.invocations += 1;
    const failure = (
      error: SerializedError,
      flags: { timedOut?: boolean; crashed?: boolean; outOfMemory?: boolean; tmpFull?: boolean },
    ): InvokeResult => {
      this.stats.errors += 1;
      return {
        ok: false,
        requestId: invocation.awsRequestId,
        durationMs: Date.now() - started,
        timedOut: flags.timedOut ?? false,
        crashed: flags.crashed ?? false,
        ...(flags.outOfMemory ? { outOfMemory: true } : {}),
        ...(flags.tmpFull ? { tmpFull: true } : {}),
        ...error,
      };
    };
    try {
      try {
        await environment.ready;
      } catch (error) {
        // Lambda discards an environment whose init failed; the next invocation initializes afresh.
        this.stats.crashes += 1;
        await this.discard(environment);
        return failure({ errorType: 'Runtime.InitError', errorMessage: (error as Error).message }, { crashed: true });
      }
      const id = this.nextId++;
      let timer: NodeJS.Timeout | undefined;
      let resourceCheck: NodeJS.Timeout | undefined;
      let residentAtKill = 0;
      const memoryLimitKb = this.options.identity.memoryMb * 1024;
      const tmpUse = this.tmpUse(environment);
      const pid = environment.process.child.pid;
      const outcome = await new Promise<Extract<RuntimeMessage, { type: 'result' }> | 'timeout' | 'out-of-memory' | undefined>((resolve) => {
        environment.pending = { id, resolve };
        timer = setTimeout(() => resolve('timeout'), Math.max(0, invocation.deadlineMs - Date.now()));
        // Lambda stops an environment that uses more than the function's memory. Checked from here, so a
        // handler stuck in synchronous work is stopped too. (The lab's RSS includes the TypeScript
        // loader, some tens of MB a bundled function does not have: the lab errs on the strict side.)
        resourceCheck = setInterval(() => {
          const kb = pid === undefined ? undefined : residentKb(pid);
          if (kb !== undefined && kb > memoryLimitKb) {
            residentAtKill = kb;
            resolve('out-of-memory');
          }
          tmpUse.sample();
        }, RESOURCE_CHECK_MS);
        const message: InvokeMessage = { type: 'invoke', id, event, meta: invocation };
        this.thaw(environment);
        try {
          environment.process.child.send(message, (error) => {
            if (error) resolve(undefined);
          });
        } catch {
          // An event the IPC channel cannot serialize: the environment never got the invocation.
          resolve(undefined);
        }
      }).finally(() => {
        clearTimeout(timer);
        clearInterval(resourceCheck);
      });
      environment.pending = undefined;
      if (outcome === 'out-of-memory') {
        this.stats.outOfMemory += 1;
        this.stats.crashes += 1;
        await this.discard(environment);
        return failure(
          {
            errorType: 'Runtime.ExitError',
            errorMessage:
              `RequestId: ${invocation.awsRequestId} Error: Runtime exited with error: signal: killed ` +
              `(out of memory: ${Math.round(residentAtKill / 1024)} MB resident, memory size ${this.options.identity.memoryMb} MB)`,
          },
          { crashed: true, outOfMemory: true },
        );
      }
      if (outcome === 'timeout') {
        this.stats.timeouts += 1;
        await this.discard(environment);
        return failure(
          { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${(this.timeoutMs / 1000).toFixed(2)} seconds` },
          { timedOut: true },
        );
      }
      if (outcome === undefined) {
        this.stats.crashes += 1;
        await this.discard(environment);
        return failure(
          { errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${invocation.awsRequestId} Error: Runtime exited` },
          { crashed: true },
        );
      }
      // The runtime blocks on its control pipe right after sending a result.
      environment.frozen = true;
      this.stats.durationMsTotal += outcome.durationMs;
      this.stats.cpuMsTotal += outcome.cpuMs;
      this.stats.peakRssKb = Math.max(this.stats.peakRssKb, outcome.maxRssKb);
      const init = environment.initMemory;
      if (init && outcome.maxRssKb - init.rssKb > this.stats.peakRssGrowthKb) {
        this.stats.peakRssGrowthKb = outcome.maxRssKb - init.rssKb;
        this.stats.peakRssGrowthBaselineKb = init.rssKb;
      }
      if (init && outcome.peakSample.rssKb - init.rssKb > (this.stats.peakSampleGrowth?.rssKb ?? -Infinity)) {
        this.stats.peakSampleGrowth = memoryGrowth(init, outcome.peakSample);
      }
      const tmpOverflow = tmpUse.overflow();
      if (tmpOverflow !== undefined) {
        this.stats.tmpFull += 1;
        const handlerOutcome = outcome.ok ? 'returned a result' : `failed: ${outcome.error?.errorType}: ${outcome.error?.errorMessage}`;
        return failure(
          {
            errorType: 'Error',
            errorMessage:
              `ENOSPC: no space left on device (lab: the invocation grew /tmp to ${Math.round(tmpOverflow / 2 ** 20)} MiB, ` +
              `over the function's ephemeral storage of ${this.options.tmp?.sizeMb} MB; the handler ${handlerOutcome})`,
          },
          { tmpFull: true },
        );
      }
      if (!outcome.ok) return failure(outcome.error ?? { errorType: 'Error', errorMessage: 'unknown error' }, {});
      return { ok: true, value: outcome.value, requestId: invocation.awsRequestId, durationMs: Date.now() - started };
    } finally {
      this.release(environment);
    }
  }

  /**
   * Watches an environment's /tmp over one invocation. In Lambda a write past the ephemeral storage
   * fails with ENOSPC, and the handler sees that error. The lab cannot make a write fail, so it samples
   * the folder (every memory check, and once more when the result arrives) and fails an invocation
   * that grew it past the size with that error, after the fact: the handler has returned by then, its
   * own cleanup done, so the environment stays. Its whole result is replaced, batch item failures
   * included, where in Lambda only the write, and what the handler made of it, would have failed.
   * Sampled, so a spool written and removed within 100 ms can pass unseen; the downloader's spools
   * live for seconds.
   */
  private tmpUse(environment: Environment): { sample(): void; overflow(): number | undefined } {
    const folder = this.tmpDirOf(environment.slot);
    const limit = (this.options.tmp?.sizeMb ?? 0) * 1024 * 1024;
    // Only growth counts: files an earlier invocation left are not this one's writes. Growth is
    // measured from the lowest the folder has been during this invocation, so removing old files and
    // then writing past the size counts too.
    let lowest = folder === undefined ? 0 : folderBytes(folder);
    let overflow: number | undefined;
    const sample = (): void => {
      if (folder === undefined) return;
      const bytes = folderBytes(folder);
      if (bytes > limit && bytes > lowest) overflow = Math.max(overflow ?? 0, bytes);
      lowest = Math.min(lowest, bytes);
      this.stats.peakTmpBytes = Math.max(this.stats.peakTmpBytes, bytes);
    };
    return {
      sample,
      overflow: () => {
        sample();
        return overflow;
      },
    };
  }

  /** Ends every environment (the next invocation cold-starts). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.environments.map((environment) => this.discard(environment)));
  }

  /**
   * Kills the environments now, as a runtime crash does (fault scenarios). Lambda then resets an
   * environment, /tmp kept: the next environment in each slot finds what they left.
   */
  async recycle(): Promise<void> {
    await Promise.all(this.environments.map((environment) => this.discard(environment)));
  }

  private async acquire(): Promise<Environment> {
    for (;;) {
      if (this.closed) throw new Error(`${this.name} is shut down`);
      const idle = this.environments.find((environment) => !environment.busy && !environment.dead);
      if (idle) {
        idle.busy = true;
        return idle;
      }
      if (this.environments.length < this.options.maxConcurrency) {
        const created = this.spawn();
        created.busy = true;
        return created;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  /** The /tmp folder of a concurrency slot (none without LambdaFunctionOptions.tmp). */
  private tmpDirOf(slot: number): string | undefined {
    return this.options.tmp ? join(this.options.tmp.root, `environment-${slot}`) : undefined;
  }

  /** Releases a frozen environment's runtime (see FREEZE_FD) just before its next invocation. */
  private thaw(environment: Environment): void {
    if (!environment.frozen) return;
    environment.frozen = false;
    const pipe = environment.process.child.stdio[FREEZE_FD];
    if (pipe && 'write' in pipe) pipe.write(Buffer.of(1));
  }

  private release(environment: Environment): void {
    environment.busy = false;
    this.waiting.shift()?.();
  }

  private spawn(): Environment {
    const { registry, environment: baseEnvironment, entry, logFile, initTimeoutMs = 30_000 } = this.options;
    this.stats.coldStarts += 1;
    const taken = new Set(this.environments.map((environment) => environment.slot));
    let slot = 0;
    while (taken.has(slot)) slot += 1;
    const tmpDir = this.tmpDirOf(slot);
    if (tmpDir) mkdirSync(tmpDir, { recursive: true });
    const tracked = registry.start(`lambda:${this.name}`, process.execPath, ['--import', 'tsx', RUNTIME_ENTRY, entry], {
      env: tmpDir ? environmentWithTmp(baseEnvironment, tmpDir) : baseEnvironment,
      cwd: REPO_ROOT,
      logFile,
      ipc: true,
      controlPipe: true,
    });
    // The runtime may be gone before a thaw's byte reaches it (killed on a timeout): nothing to report.
    const pipe = tracked.child.stdio[FREEZE_FD];
    if (pipe && 'on' in pipe) pipe.on('error', () => undefined);
    const environment: Environment = { process: tracked, ready: Promise.resolve(), busy: false, dead: false, frozen: false, slot };
    environment.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`init of ${this.name} took longer than ${initTimeoutMs} ms`)), initTimeoutMs);
      tracked.child.on('message', (message: RuntimeMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          this.stats.initMsTotal += message.initMs;
          environment.initMemory = message.memory;
          if (message.peakRssReset === false) this.stats.peakRssExcludesInit = false;
          resolve();
        } else if (message.type === 'init-error') {
          clearTimeout(timer);
          reject(new Error(`${message.error.errorType}: ${message.error.errorMessage}`));
        } else if (message.type === 'result' && environment.pending?.id === message.id) {
          environment.pending.resolve(message);
        }
      });
      void tracked.exited.then((code) => {
        clearTimeout(timer);
        environment.dead = true;
        reject(new Error(`runtime of ${this.name} exited during init (${code}); see ${logFile}`));
        environment.pending?.resolve(undefined);
        this.remove(environment);
      });
    });
    // A failed init is reported by the invocation that waits for it; nobody else awaits this promise.
    environment.ready.catch(() => undefined);
    this.environments.push(environment);
    return environment;
  }

  private async discard(environment: Environment): Promise<void> {
    environment.dead = true;
    await this.options.registry.stop(environment.process, 0);
    this.remove(environment);
  }

  private remove(environment: Environment): void {
    const index = this.environments.indexOf(environment);
    if (index !== -1) this.environments.splice(index, 1);
    this.waiting.shift()?.();
  }
}
