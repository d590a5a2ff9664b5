import { memoryGrowth, memorySnapshot, peakRssKb, resetPeakRss } from '../../scripts/local-lab/runner/memory-sampler';

describe('memory sampler', () => {
  it('the peak RSS is never below the current RSS, and rises with memory the process touches', () => {
    expect(resetPeakRss()).toBe(process.platform === 'linux');
    const before = memorySnapshot();
    expect(peakRssKb()).toBeGreaterThanOrEqual(before.rssKb - 1024);
    const touched = Buffer.alloc(32 * 1024 * 1024, 7);
    const after = memorySnapshot();
    expect(peakRssKb()).toBeGreaterThanOrEqual(after.rssKb - 1024);
    expect(peakRssKb() - before.rssKb).toBeGreaterThanOrEqual(24 * 1024);
    const growth = memoryGrowth(before, after);
    expect(growth.arrayBuffersKb).toBeGreaterThanOrEqual(31 * 1024);
    expect(touched[touched.length - 1]).toBe(7);
  });
});
