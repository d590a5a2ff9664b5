import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, ProcessRegistry } from '../../scripts/local-lab/processes';
import { type InvokeResult, LambdaFunction } from '../../scripts/local-lab/runner/lambda-function';

// Real execution environments (child processes running function-runtime.ts), so it takes a few seconds.
jest.setTimeout(60_000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('LambdaFunction resource accounting', () => {
  const workDir = mkdtempSync(join(tmpdir(), 'lambda-function-test-'));
  const registry = new ProcessRegistry();
  /** A function of one of the fixture handlers; by default with room for the TypeScript loader's memory beside what the tests hold. */
  const fixtureFunction = (name: string, handler: string, options: { memoryMb?: number; environment?: NodeJS.ProcessEnv } = {}): LambdaFunction =>
    new LambdaFunction({
      identity: { functionName: name, region: 'us-east-1', memoryMb: options.memoryMb ?? 512 },
      entry: join(__dirname, 'fixtures', handler),
      environment: { PATH: process.env.PATH, ...options.environment },
      timeoutMs: 20_000,
      maxConcurrency: 1,
      registry,
      logFile: join(workDir, `${name}.log`),
    });
  const fn = fixtureFunction('cpu-or-wait', 'cpu-or-wait-handler.ts');

  afterAll(async () => {
    await fn.close();
    await registry.stopAll();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('counts CPU time separately from duration: a waiting invocation uses little CPU, a spinning one its whole duration', async () => {
    // Warm the environment first, so neither measured invocation carries module loading.
    expect(await fn.invoke({ mode: 'wait', ms: 1 })).toMatchObject({ ok: true, value: 'waited' });
    const before = { ...fn.stats };

    expect(await fn.invoke({ mode: 'wait', ms: 400 })).toMatchObject({ ok: true, value: 'waited' });
    const waitCpu = fn.stats.cpuMsTotal - before.cpuMsTotal;
    const waitDuration = fn.stats.durationMsTotal - before.durationMsTotal;
    expect(waitDuration).toBeGreaterThanOrEqual(390);
    expect(waitCpu).toBeLessThan(150);

    const afterWait = { ...fn.stats };
    expect(await fn.invoke({ mode: 'spin', ms: 400 })).toMatchObject({ ok: true, value: 'spun' });
    const spinCpu = fn.stats.cpuMsTotal - afterWait.cpuMsTotal;
    expect(spinCpu).toBeGreaterThanOrEqual(250);
    expect(fn.stats.peakRssKb).toBeGreaterThan(0);
  });

  it('counts the peak memory from the end of init: a spike while the module loads is not the invocations\' growth', async () => {
    const spiky = fixtureFunction('init-spike', 'init-spike-handler.ts', { environment: { NODE_OPTIONS: '--expose-gc' } });
    try {
      expect(await spiky.invoke({})).toMatchObject({ ok: true, value: 'done' });
      expect(spiky.stats.peakRssExcludesInit).toBe(true);
      expect(spiky.stats.peakRssGrowthKb).toBeLessThan(32 * 1024);
    } finally {
      await spiky.close();
    }
  });

  it('samples what memory is made of at its highest: buffers held during an invocation show as ArrayBuffers', async () => {
    const mib = 48;
    expect(await fn.invoke({ mode: 'hold', ms: 400, mib })).toMatchObject({ ok: true, value: `held ${mib * 1024 * 1024}` });
    const growth = fn.stats.peakSampleGrowth;
    expect(growth?.arrayBuffersKb).toBeGreaterThanOrEqual((mib - 1) * 1024);
    expect(growth?.rssKb).toBeGreaterThanOrEqual((mib - 8) * 1024);
    expect(Math.abs(growth?.heapTotalKb ?? Infinity)).toBeLessThan(16 * 1024);
  });

  it("stops an invocation that takes the environment over the function's memory size, as Lambda does, and starts afresh", async () => {
    const small = fixtureFunction('memory-bound', 'cpu-or-wait-handler.ts', { memoryMb: 200 });
    try {
      // Within the size: a few MiB held.
      expect(await small.invoke({ mode: 'hold', ms: 300, mib: 8 })).toMatchObject({ ok: true });
      const over = await small.invoke({ mode: 'hold', ms: 5_000, mib: 256 });
      expect(over).toMatchObject({ ok: false, crashed: true, timedOut: false, outOfMemory: true, errorType: 'Runtime.ExitError' });
      expect(over.ok ? '' : over.errorMessage).toMatch(/Runtime exited with error: signal: killed \(out of memory: \d+ MB resident, memory size 200 MB\)/);
      // Stopped when it crossed the size, not when the handler would have returned.
      expect(over.durationMs).toBeLessThan(4_000);
      expect(small.stats).toMatchObject({ outOfMemory: 1, coldStarts: 1 });
      expect(await small.invoke({ mode: 'wait', ms: 1 })).toMatchObject({ ok: true, value: 'waited' });
      expect(small.stats.coldStarts).toBe(2);
    } finally {
      await small.close();
    }
  });

  it('freezes an environment between invocations: work left running after the handler returned waits for the next one', async () => {
    const frozen = fixtureFunction('after-return', 'after-return-handler.ts');
    const file = join(workDir, 'after-return.txt');
    try {
      expect(await frozen.invoke({ file, afterMs: 1000, line: 'first' })).toMatchObject({ ok: true, value: 'returned' });
      await sleep(1500);
      // In an environment left running the timer would have written by now.
      expect(existsSync(file)).toBe(false);

      // Thawed for the next invocation, the overdue timer fires; that invocation's own timer waits again.
      expect(await frozen.invoke({ file, afterMs: 1000, line: 'second' })).toMatchObject({ ok: true, value: 'returned' });
      await sleep(1500);
      expect(readFileSync(file, 'utf8')).toBe('first\n');
      expect(frozen.stats.coldStarts).toBe(1);
    } finally {
      await frozen.close();
    }
    // A frozen environment is still ended by close().
    expect(registry.running().filter((tracked) => tracked.name === 'lambda:after-return')).toEqual([]);
  });

  it('ends a frozen environment when the service that runs it dies without cleaning up', async () => {
    const owner = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures', 'lambda-owner.ts'), join(workDir, 'owner.log')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(owner.stdout!, 'data')) as [Buffer];
    const runtimePid = Number(/^frozen (\d+)/.exec(line.toString())?.[1]);
    expect(runtimePid).toBeGreaterThan(0);
    expect(isAlive(runtimePid)).toBe(true);

    owner.kill('SIGKILL');
    await once(owner, 'exit');
    const deadline = Date.now() + 5000;
    while (isAlive(runtimePid) && Date.now() < deadline) await sleep(50);
    expect(isAlive(runtimePid)).toBe(false);
  });

  it('gives each environment its own /tmp, and fails an invocation that grows it past the ephemeral storage size as ENOSPC', async () => {
    const tmpRoot = join(workDir, 'tmp-root');
    const withTmp = new LambdaFunction({
      identity: { functionName: 'tmp', region: 'us-east-1', memoryMb: 512 },
      entry: join(__dirname, 'fixtures', 'tmp-handler.ts'),
      environment: { PATH: process.env.PATH, SPOOL_DIR: '/tmp' },
      timeoutMs: 20_000,
      maxConcurrency: 2,
      registry,
      logFile: join(workDir, 'tmp.log'),
      tmp: { root: tmpRoot, sizeMb: 8 },
    });
    type TmpView = { tmpdir: string; spoolDir?: string; files: string[] };
    const viewOf = (result: InvokeResult): TmpView | undefined => (result.ok ? (result.value as TmpView) : undefined);
    try {
      // Two environments at once: two folders, and the configuration's '/tmp' is each one's own.
      const both = await Promise.all([withTmp.invoke({ holdMs: 300 }), withTmp.invoke({ holdMs: 300 })]);
      expect(both.map((result) => viewOf(result)?.tmpdir).sort()).toEqual([join(tmpRoot, 'environment-0'), join(tmpRoot, 'environment-1')]);
      for (const view of both.map(viewOf)) expect(view?.spoolDir).toBe(view?.tmpdir);

      // From here one at a time: the environment of slot 0 takes them.
      expect(await withTmp.invoke({ writeMib: 4, holdMs: 300 })).toMatchObject({ ok: true });
      expect(withTmp.stats.peakTmpBytes).toBeGreaterThanOrEqual(4 * 1024 * 1024);
      expect(withTmp.stats.tmpFull).toBe(0);

      // 4 + 6 MiB is over 8 MB, even written and returned between two samples.
      const full = await withTmp.invoke({ writeMib: 6 });
      expect(full).toMatchObject({ ok: false, tmpFull: true, crashed: false, errorMessage: expect.stringMatching(/^ENOSPC: no space left on device/) });
      expect(withTmp.stats.tmpFull).toBe(1);

      // What is already there is not an invocation's write: one that writes nothing succeeds.
      const reading = await withTmp.invoke({});
      expect(reading).toMatchObject({ ok: true });
      expect(viewOf(reading)?.files).toHaveLength(2);

      // Removing files and then writing past the size is growth too (from the lowest the folder was).
      const rewritten = await withTmp.invoke({ clear: true, holdMs: 300, writeMib: 9, holdAfterMs: 300 });
      expect(rewritten).toMatchObject({ ok: false, tmpFull: true });
      expect(withTmp.stats.tmpFull).toBe(2);

      // After a crash Lambda resets the environment and keeps /tmp: the new one in slot 0 finds the files.
      await withTmp.recycle();
      const again = await Promise.all([withTmp.invoke({ holdMs: 300 }), withTmp.invoke({ holdMs: 300 })]);
      expect(again.every((result) => result.ok)).toBe(true);
      expect(again.map(viewOf).find((view) => view?.tmpdir.endsWith('environment-0'))?.files).toHaveLength(1);
    } finally {
      await withTmp.close();
    }
  });

  it('answers an event the IPC channel cannot carry with a failed invocation instead of throwing', async () => {
    const result = await fn.invoke({ mode: 'wait', ms: 1, tooBig: 1n });
    expect(result).toMatchObject({ ok: false, crashed: true });
    // The next invocation gets a working environment.
    expect(await fn.invoke({ mode: 'wait', ms: 1 })).toMatchObject({ ok: true, value: 'waited' });
  });
});
