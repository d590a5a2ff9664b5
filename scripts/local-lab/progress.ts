/** Human-readable progress and report lines for the lab's console output. */
import type { DeliveryStats, ReconcilerRun, TickStats } from './runner/lambda-service';
import { type CatchUpState, fileId, type VerificationReport } from './verify';

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** A reconcile run in one phrase: its findings (by code) and what it re-drove, or why it failed. */
export function reconcilerText(run: ReconcilerRun): string {
  if (!run.ok || !run.summary) return `reconciler FAILED after ${run.attempts} attempt(s) (${run.error ?? 'unknown'})`;
  const { findings, findingsByCode, redriven, waitingForBackoff } = run.summary;
  const codes = Object.entries(findingsByCode).map(([code, count]) => `${code}=${count}`).join(' ');
  return (
    `reconciler ${findings} finding(s)${codes ? ` (${codes})` : ''}, ${redriven.length} re-driven` +
    (waitingForBackoff > 0 ? `, ${waitingForBackoff} in backoff` : '')
  );
}

/** Function errors of one cycle, every function's (scheduled invocations that failed after their retries included). */
export function cycleErrorCount(stats: TickStats & DeliveryStats): number {
  return (
    stats.sqs.functionErrors.length +
    stats.stream.functionErrors.length +
    (stats.scanner.ok ? 0 : 1) +
    (stats.reconciler && !stats.reconciler.ok ? 1 : 0)
  );
}

export function progressLine(options: {
  cycle: number;
  elapsedMs: number;
  phase: string;
  stats: TickStats & DeliveryStats;
  state: CatchUpState;
  cycleMs: number;
  now?: number;
}): string {
  const { cycle, elapsedMs, phase, stats, state, cycleMs } = options;
  const now = options.now ?? Date.now();
  const lagBytes = state.sourceBytes - state.backedUpBytes;
  const lagAge = state.oldestPendingSince !== undefined ? `, oldest pending ${formatDuration(now - state.oldestPendingSince)}` : '';
  const scanner = stats.scanner.ok ? 'ok' : `FAILED (${stats.scanner.error ?? 'unknown'})`;
  const errors = cycleErrorCount(stats);
  return (
    `[cycle ${String(cycle).padStart(3)} +${(elapsedMs / 1000).toFixed(0)}s ${phase}] ` +
    `files ${state.files} (done ${state.done}) | source ${formatBytes(state.sourceBytes)}, stored ${formatBytes(state.backedUpBytes)}, ` +
    `lag ${formatBytes(lagBytes)}${lagAge} | scanner ${scanner}, detector ${stats.sqs.messages} msg, ` +
    `downloader ${stats.stream.invocations} inv/${stats.stream.delivered} rec` +
    (stats.stream.retries > 0 ? `/${stats.stream.retries} retries` : '') +
    (stats.reconciler ? ` | ${reconcilerText(stats.reconciler)}` : '') +
    (errors > 0 ? ` | ${errors} function error(s)` : '') +
    ` | ${formatDuration(cycleMs)}`
  );
}

export function reportLines(report: VerificationReport): string[] {
  const lines: string[] = [];
  const width = Math.max(20, ...report.files.map((file) => fileId(file.instance, file.logFileName).length));
  lines.push(`${'file'.padEnd(width)}  ${'status'.padEnd(11)} ${'source'.padStart(12)} ${'stored'.padStart(12)} obj  sha256 (source = stored)`);
  for (const file of report.files) {
    const same = file.sourceSha256 !== null && file.sourceSha256 === file.storedSha256 ? 'match' : file.sourceSha256 === null ? 'no source' : 'DIFFERENT';
    lines.push(
      `${fileId(file.instance, file.logFileName).padEnd(width)}  ${file.status.padEnd(11)} ${String(file.sourceBytes ?? '-').padStart(12)} ` +
        `${String(file.storedBytes).padStart(12)} ${String(file.objects).padStart(3)}  ${(file.storedSha256.slice(0, 16) + '…').padEnd(18)} ${same}`,
    );
    for (const problem of file.problems) lines.push(`    ${problem.code}: ${problem.detail}`);
  }
  for (const problem of report.orphans) lines.push(`${problem.code}: ${problem.detail}`);
  const { totals } = report;
  lines.push(
    `totals: ${totals.files} files (${totals.filesOk} ok), source ${formatBytes(totals.sourceBytes)} (${totals.sourceBytes} B), ` +
      `stored ${formatBytes(totals.storedBytes)} (${totals.storedBytes} B) in ${totals.objects} objects, ` +
      `status ${Object.entries(totals.byStatus).map(([status, count]) => `${status}=${count}`).join(' ')}, problems ${totals.problems}`,
  );
  return lines;
}
