/**
 * Memory samples for the local Lambda runtime and the bench's reference reader: what resident memory
 * is made of at its highest point, so a memory figure says which kind grew (V8's heap, ArrayBuffer
 * backing stores such as socket and page buffers, or the rest: native allocations and freed memory the
 * allocator kept).
 */

/** What resident memory is made of, in KiB: V8's heap, ArrayBuffer backing stores, and the rest. */
export interface MemorySnapshot {
  rssKb: number;
  heapTotalKb: number;
  arrayBuffersKb: number;
}

/** Often enough to catch a peak that lasts a few pages, rarely enough to cost nothing measurable. */
const SAMPLE_INTERVAL_MS = 50;

export function memorySnapshot(): MemorySnapshot {
  const usage = process.memoryUsage();
  const kb = (bytes: number) => Math.round(bytes / 1024);
  return { rssKb: kb(usage.rss), heapTotalKb: kb(usage.heapTotal), arrayBuffersKb: kb(usage.arrayBuffers) };
}

/** Samples memory until stopped; returns the sample with the highest RSS. */
export function sampleMemory(): () => MemorySnapshot {
  let peak = memorySnapshot();
  const timer = setInterval(() => {
    const sample = memorySnapshot();
    if (sample.rssKb > peak.rssKb) peak = sample;
  }, SAMPLE_INTERVAL_MS);
  return () => {
    clearInterval(timer);
    const last = memorySnapshot();
    return last.rssKb > peak.rssKb ? last : peak;
  };
}

/** `to` less `from`, kind by kind. */
export function memoryGrowth(from: MemorySnapshot, to: MemorySnapshot): MemorySnapshot {
  return {
    rssKb: to.rssKb - from.rssKb,
    heapTotalKb: to.heapTotalKb - from.heapTotalKb,
    arrayBuffersKb: to.arrayBuffersKb - from.arrayBuffersKb,
  };
}
