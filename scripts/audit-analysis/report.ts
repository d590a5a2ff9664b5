/** The verification report: a human-readable text and a JSON document with the same content. */
import type { VerificationResult } from './verify';

function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '(none)' : entries.map(([op, n]) => `${op} ${n}`).join(', ');
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function renderText(result: VerificationResult): string {
  const lines: string[] = [];
  const expected = result.categories.reduce((n, c) => n + c.expectations.length, 0);
  lines.push(`Audit log verification for run ${result.marker}`);
  lines.push(`Source:  ${result.source.description}`);
  lines.push(`Read:    ${result.source.parts} file(s)/object(s), ${formatBytes(result.source.bytes)}, ${result.source.polls} poll(s), ${result.startedAt} .. ${result.finishedAt}`);
  lines.push(
    result.passed
      ? `Result:  PASSED (${expected} of ${expected} expectations found)`
      : `Result:  FAILED (${result.missing.length} of ${expected} expectations missing: ${result.missing.join(', ')})`,
  );
  for (const category of result.categories) {
    lines.push('');
    lines.push(`[${category.passed ? 'PASS' : 'FAIL'}] ${category.category}: ${category.events} event(s): ${formatCounts(category.byOperation)}`);
    const width = Math.max(...category.expectations.map((e) => e.id.length));
    for (const e of category.expectations) {
      const status = e.found ? 'found  ' : 'MISSING';
      lines.push(`  ${status} ${e.id.padEnd(width)}  ${e.description}${e.found ? ` (x${e.count})` : ''}`);
      if (e.evidence) {
        const where = `${e.evidence.source}:${e.evidence.lineNumber}`;
        const what = e.evidence.object ? ` ${JSON.stringify(e.evidence.object)}` : '';
        lines.push(`          ${e.evidence.time} ${e.evidence.serverHost} ${e.evidence.username} ${e.evidence.operation} retcode=${e.evidence.retcode ?? ''}${what}`);
        lines.push(`          at ${where}`);
      }
    }
  }
  const t = result.totals;
  lines.push('');
  lines.push(`Run events: ${t.runEvents} (${t.firstRunEvent ?? '-'} .. ${t.lastRunEvent ?? '-'}): ${formatCounts(t.runByOperation)}`);
  lines.push(`All records read: ${t.records}: ${formatCounts(t.byOperation)}`);
  lines.push(`Unparseable lines: ${t.unparseable}`);
  for (const sample of result.unparseableSamples) {
    lines.push(`  ${sample.source}:${sample.lineNumber}: ${sample.reason}: ${JSON.stringify(sample.text)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** JSON with RegExp-free, stable content (expectation rules are not part of the report). */
export function renderJson(result: VerificationResult): string {
  return `${JSON.stringify(result, null, 2)}\n`;
}
