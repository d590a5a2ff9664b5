/** The benchmark's figures: each measured value next to its goal, judged, and rendered as a table. */

export type Verdict = 'PASS' | 'MISS' | 'INFO';

export interface Goal {
  /** The value must be at most (`<=`) or at least (`>=`) the bound. */
  op: '<=' | '>=';
  bound: number;
}

export interface Figure {
  /** Issue numbering: '1' .. '6', with a letter for a second measurement of the same figure. */
  id: string;
  name: string;
  value: number;
  /** The value as printed, with the numbers it is computed from. */
  measured: string;
  goal?: Goal;
  /** The goal as printed (defaults to `op bound`). */
  goalText?: string;
  verdict: Verdict;
  /** logDataEncoding of the RDS endpoint the figure was measured with, where it matters. */
  encoding?: 'escaped' | 'cdata';
  method: string;
  details?: Record<string, unknown>;
}

export function judge(value: number, goal: Goal | undefined): Verdict {
  if (!goal) return 'INFO';
  if (!Number.isFinite(value)) return 'MISS';
  return goal.op === '<=' ? (value <= goal.bound ? 'PASS' : 'MISS') : value >= goal.bound ? 'PASS' : 'MISS';
}

export function figure(input: Omit<Figure, 'verdict'>): Figure {
  return { ...input, verdict: judge(input.value, input.goal) };
}

export function goalText(figure: Figure): string {
  if (figure.goalText !== undefined) return figure.goalText;
  return figure.goal ? `${figure.goal.op === '<=' ? '≤' : '≥'} ${figure.goal.bound}` : '-';
}

/** Rounds for printing and JSON (figures are not more precise than this). */
export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** A plain-text table: #, figure, measured, goal, verdict. */
export function renderTable(figures: readonly Figure[]): string[] {
  const header = ['#', 'figure', 'measured', 'goal', 'verdict'];
  const rows = figures.map((f) => [f.id, f.encoding ? `${f.name} [${f.encoding}]` : f.name, f.measured, goalText(f), f.verdict]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ').trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('-|-'), ...rows.map(line)];
}

/** The same table as Markdown, for the README. */
export function renderMarkdown(figures: readonly Figure[]): string[] {
  const escape = (text: string): string => text.replace(/\|/g, '\\|');
  return [
    '| # | figure | measured | goal | verdict |',
    '|---|---|---|---|---|',
    ...figures.map(
      (f) => `| ${f.id} | ${escape(f.encoding ? `${f.name} [${f.encoding}]` : f.name)} | ${escape(f.measured)} | ${escape(goalText(f))} | ${f.verdict} |`,
    ),
  ];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
