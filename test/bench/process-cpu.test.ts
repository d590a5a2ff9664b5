import { ownCpuSecondsSince, processCpuSeconds } from '../../scripts/bench/process-cpu';

describe('processCpuSeconds', () => {
  it('reads a process\'s CPU time from /proc, in step with what the process itself reports', () => {
    const until = Date.now() + 300;
    while (Date.now() < until); // burn some CPU so both readings are well above the clock tick
    const own = process.cpuUsage();
    const fromProc = processCpuSeconds(process.pid);
    expect(fromProc).toBeDefined();
    // /proc counts in clock ticks (10 ms) and was read a moment later.
    expect(Math.abs((fromProc ?? 0) - (own.user + own.system) / 1e6)).toBeLessThan(0.1);
  });

  it('is undefined for no process or one that does not exist', () => {
    expect(processCpuSeconds(undefined)).toBeUndefined();
    expect(processCpuSeconds(2 ** 22 + 12345)).toBeUndefined();
  });
});

describe('ownCpuSecondsSince', () => {
  it('counts the CPU this process used since the given point, not before it', () => {
    const start = process.cpuUsage();
    const until = Date.now() + 200;
    while (Date.now() < until); // ~0.2 s of CPU
    const spent = ownCpuSecondsSince(start);
    expect(spent).toBeGreaterThan(0.15);
    // Far below the process's whole CPU time so far (jest's start-up alone takes more).
    expect(spent).toBeLessThan(processCpuSeconds(process.pid) ?? 0);
  });
});
