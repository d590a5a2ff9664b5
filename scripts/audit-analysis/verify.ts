/**
 * Polls a log source until every expectation of a run is found or time runs out. The backup pipeline
 * runs on a schedule, so on AWS the run's records reach the bucket minutes after the run.
 */
import { AuditAnalyser, type AnalysisResult } from './analyse';
import { parseAuditLines, splitLines } from './lines';
import type { ExpectationOptions } from './plan';
import type { LogSource, LogStream } from './sources';

export interface SourceStats {
  description: string;
  /** Files or objects read (the last full read for a directory; all polls for the bucket). */
  parts: number;
  bytes: number;
  polls: number;
}

export interface VerificationResult extends AnalysisResult {
  source: SourceStats;
  startedAt: string;
  finishedAt: string;
}

export interface PollProgress {
  poll: number;
  elapsedMs: number;
  newParts: number;
  newBytes: number;
  found: number;
  expected: number;
  missing: string[];
}

export interface VerifyOptions {
  source: LogSource;
  marker: string;
  expectationOptions?: ExpectationOptions;
  /** Give up after this long; 0 reads once. */
  timeoutMs: number;
  intervalMs: number;
  onProgress?: (progress: PollProgress) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export async function readStream(analyser: AuditAnalyser, stream: LogStream): Promise<void> {
  for await (const event of parseAuditLines(splitLines(stream.open()))) {
    const origin = { source: stream.label, lineNumber: event.lineNumber };
    if (event.kind === 'record') analyser.addRecord(event.record, origin);
    else analyser.addUnparseable(event.reason, event.text, origin);
  }
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function verify(options: VerifyOptions): Promise<VerificationResult> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const started = now();
  const seen = new Set<string>();
  const stats: SourceStats = { description: options.source.describe(), parts: 0, bytes: 0, polls: 0 };
  let analyser = AuditAnalyser.forRun(options.marker, options.expectationOptions);

  for (;;) {
    stats.polls += 1;
    if (!options.source.appendOnly) {
      analyser = AuditAnalyser.forRun(options.marker, options.expectationOptions);
      stats.parts = 0;
      stats.bytes = 0;
    }
    const streams = await options.source.list(options.source.appendOnly ? seen : undefined);
    let newBytes = 0;
    let newParts = 0;
    for (const stream of streams) {
      await readStream(analyser, stream);
      for (const part of stream.parts) seen.add(part);
      newParts += stream.parts.length;
      newBytes += stream.bytes;
    }
    stats.parts += newParts;
    stats.bytes += newBytes;

    const result = analyser.result();
    const elapsedMs = now() - started;
    const expected = result.categories.reduce((n, c) => n + c.expectations.length, 0);
    options.onProgress?.({
      poll: stats.polls,
      elapsedMs,
      newParts,
      newBytes,
      found: expected - result.missing.length,
      expected,
      missing: result.missing,
    });
    if (result.passed || elapsedMs + options.intervalMs > options.timeoutMs) {
      return { ...result, source: { ...stats }, startedAt: new Date(started).toISOString(), finishedAt: new Date(now()).toISOString() };
    }
    await sleep(options.intervalMs);
  }
}
