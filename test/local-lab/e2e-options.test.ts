import { join, resolve } from 'node:path';
import { UsageError } from '../../scripts/cli/args';
import { parseE2eOptions } from '../../scripts/local-lab/e2e/run';
import { SCENARIOS } from '../../scripts/local-lab/e2e/scenarios/index';

const REPO_ROOT = resolve(__dirname, '..', '..');

describe('npm run test:e2e options', () => {
  it('runs every scenario in the default folder, with the report in it, unless told otherwise', () => {
    expect(parseE2eOptions([])).toEqual({
      list: false,
      workRoot: join(REPO_ROOT, '.lab-e2e'),
      reportFile: join(REPO_ROOT, '.lab-e2e', 'e2e-report.json'),
      keep: false,
      timeoutFactor: 1,
      region: 'us-east-1',
    });
    expect(parseE2eOptions(['--workdir', '/tmp/suite', '--timeout-factor', '2.5', '--keep'])).toMatchObject({
      workRoot: '/tmp/suite',
      reportFile: '/tmp/suite/e2e-report.json',
      keep: true,
      timeoutFactor: 2.5,
    });
    expect(parseE2eOptions(['-h'])).toBe('help');
  });

  it('takes --only as known scenario ids and names the unknown ones', () => {
    const [first, second] = SCENARIOS;
    expect(parseE2eOptions(['--only', ` ${first?.id}, ${second?.id}`])).toMatchObject({ only: [first?.id, second?.id] });
    expect(() => parseE2eOptions(['--only', `${first?.id},no-such-thing`])).toThrow(new UsageError('unknown scenario(s): no-such-thing (see --list)'));
    expect(() => parseE2eOptions(['--only', ' , '])).toThrow(/at least one scenario id/);
  });

  it('refuses bad numbers and unknown options as usage errors', () => {
    for (const bad of ['--timeout-factor=0', '--timeout-factor=-1', '--timeout-factor=slow']) {
      expect(() => parseE2eOptions([bad])).toThrow(/--timeout-factor must be a positive number/);
    }
    expect(() => parseE2eOptions(['--fast'])).toThrow(UsageError);
  });
});
