import { figure, judge, median, renderMarkdown, renderTable } from '../../scripts/bench/figures';

describe('bench figures', () => {
  test('a value is judged against its goal, at the bound included', () => {
    expect(judge(1.01, { op: '<=', bound: 1.01 })).toBe('PASS');
    expect(judge(1.0101, { op: '<=', bound: 1.01 })).toBe('MISS');
    expect(judge(0.8, { op: '>=', bound: 0.8 })).toBe('PASS');
    expect(judge(0.79, { op: '>=', bound: 0.8 })).toBe('MISS');
  });

  test('a figure without a goal is information, a value that could not be computed is a miss', () => {
    expect(judge(123, undefined)).toBe('INFO');
    expect(judge(Number.NaN, { op: '<=', bound: 1 })).toBe('MISS');
    expect(judge(Number.POSITIVE_INFINITY, { op: '>=', bound: 0.8 })).toBe('MISS');
  });

  test('the table lines up every row under its header and prints goal and verdict', () => {
    const figures = [
      figure({ id: '1', name: 'ratio', value: 1.2, measured: '1.2000', goal: { op: '<=', bound: 1.01 }, encoding: 'escaped', method: 'm' }),
      figure({ id: '6', name: 'bundle size, downloader', value: 1, measured: '1050 KiB', method: 'm' }),
    ];
    const lines = renderTable(figures);
    expect(lines).toHaveLength(4);
    const columns = lines[0]!.indexOf('verdict');
    expect(lines[2]!.slice(columns)).toBe('MISS');
    expect(lines[3]!.slice(columns)).toBe('INFO');
    expect(lines[2]).toContain('ratio [escaped]');
    expect(lines[2]).toContain('≤ 1.01');
    expect(lines[3]).toContain('| -');
  });

  test('Markdown rows escape the pipes inside cells', () => {
    const [, , row] = renderMarkdown([figure({ id: '2', name: 'a | b', value: 0, measured: 'x', goal: { op: '>=', bound: 0 }, goalText: 'custom', method: 'm' })]);
    expect(row).toBe('| 2 | a \\| b | x | custom | PASS |');
  });

  test('median of odd and even counts, unsorted input', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
