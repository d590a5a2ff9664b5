import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { memoryGrowth, type MemorySnapshot } from '../../scripts/local-lab/runner/memory-sampler';

interface Readings {
  reset: boolean;
  before: MemorySnapshot;
  peakBefore: number;
  after: MemorySnapshot;
  peakAfter: number;
  lastByte: number;
}

describe('memory sampler', () => {
  it('the peak RSS is never below the current RSS, and rises with memory the process touches', () => {
    // A fresh process: memory a jest worker freed earlier could take the allocation without new pages.
    const output = execFileSync(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures', 'touch-memory.ts'), '32'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const { reset, before, peakBefore, after, peakAfter, lastByte } = JSON.parse(output) as Readings;
    expect(reset).toBe(process.platform === 'linux');
    expect(lastByte).toBe(7);
    expect(peakBefore).toBeGreaterThanOrEqual(before.rssKb - 1024);
    expect(peakAfter).toBeGreaterThanOrEqual(after.rssKb - 1024);
    expect(peakAfter - before.rssKb).toBeGreaterThanOrEqual(24 * 1024);
    expect(memoryGrowth(before, after).arrayBuffersKb).toBeGreaterThanOrEqual(31 * 1024);
  });
});
