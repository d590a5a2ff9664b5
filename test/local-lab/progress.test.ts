import { progressLine } from '../../scripts/local-lab/progress';
import type { DeliveryStats, TickStats } from '../../scripts/local-lab/runner/lambda-service';
import { emptySqsPumpStats } from '../../scripts/local-lab/runner/sqs-source';
import { emptyStreamPumpStats } from '../../scripts/local-lab/runner/stream-source';
import type { CatchUpState } from '../../scripts/local-lab/verify';

const MiB = 1024 * 1024;
const state: CatchUpState = { caughtUp: false, files: 4, done: 3, sourceBytes: 10 * MiB, backedUpBytes: 8 * MiB, behind: ['lab-writer/a'], oldestPendingSince: 1_000 };

function stats(overrides: Partial<TickStats & DeliveryStats> = {}): TickStats & DeliveryStats {
  return {
    scanner: { ok: true, attempts: 1 },
    sqs: { ...emptySqsPumpStats(), messages: 2 },
    stream: { ...emptyStreamPumpStats(), invocations: 5, delivered: 7 },
    ...overrides,
  };
}

describe('progressLine', () => {
  it('gives files, bytes, the lag and its age, and what each function did since the last line', () => {
    expect(progressLine({ cycle: 7, elapsedMs: 42_000, phase: 'workload', stats: stats(), state, cycleMs: 120, now: 6_000 })).toBe(
      '[cycle   7 +42s workload] files 4 (done 3) | source 10.00 MiB, stored 8.00 MiB, lag 2.00 MiB, oldest pending 5.0 s | ' +
        'scanner ok, detector 2 msg, downloader 5 inv/7 rec | 120 ms',
    );
  });

  it('counts every function error of the line: failed deliveries, a failed scanner and a failed reconciler', () => {
    const failing = stats({
      scanner: { ok: false, attempts: 3, error: 'Error: boom' },
      reconciler: { ok: false, attempts: 3, error: 'Error: late' },
      sqs: { ...emptySqsPumpStats(), functionErrors: ['Error: a'] },
      stream: { ...emptyStreamPumpStats(), retries: 2, functionErrors: ['Error: b', 'Error: c'] },
    });
    const line = progressLine({ cycle: 1, elapsedMs: 0, phase: 'catch-up', stats: failing, state: { ...state, oldestPendingSince: undefined }, cycleMs: 5 });
    expect(line).toContain('scanner FAILED (Error: boom)');
    expect(line).toContain('downloader 0 inv/0 rec/2 retries');
    expect(line).toContain('reconciler FAILED after 3 attempt(s) (Error: late)');
    expect(line).toContain('| 5 function error(s)');
    expect(line).not.toContain('oldest pending');
  });
});
