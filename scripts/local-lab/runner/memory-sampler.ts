/**
 * Memory samples for the local Lambda runtime and the bench's reference reader: what resident memory
 * is made of at its highest point, so a memory figure says which kind grew (V8's heap, ArrayBuffer
 * backing stores such as socket and page buffers, or the rest: native allocations and freed memory the
 * allocator kept).
 */
import { readFileSync, writeFileSync } from 'node:fs';

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

/**
 * Resets the kernel's peak-RSS mark of this process's memory (VmHWM) to the current RSS, so that
 * `peakRssKb` is the peak since now rather than since the process started: module loading can briefly
 * use more memory than the work measured afterwards, and that must not count as the work's. Linux only
 * (clear_refs "5", since 4.0); returns false where it cannot, and the peak then includes everything before.
 */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * The peak RSS in KiB: VmHWM where Linux has it, else getrusage's maxrss. Not maxrss on Linux: it also
 * keeps a peak clear_refs cannot reset (the bench saw it ~80 MiB above any RSS the process ever had
 * after loading, in processes whose VmHWM and 2 ms samples agreed with each other).
 */
export function peakRssKb(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match?.[1]) return Number(match[1]);
  } catch {
    // Not Linux: fall through.
  }
  return process.resourceUsage().maxRSS;
}

/** `to` less `from`, kind by kind. */
export function memoryGrowth(from: MemorySnapshot, to: MemorySnapshot): MemorySnapshot {
  return {
    rssKb: to.rssKb - from.rssKb,
    heapTotalKb: to.heapTotalKb - from.heapTotalKb,
    arrayBuffersKb: to.arrayBuffersKb - from.arrayBuffersKb,
  };
}
