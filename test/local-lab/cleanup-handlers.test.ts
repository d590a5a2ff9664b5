import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

describe('cleanup handlers', () => {
  it('exit with the signal status after Ctrl-C and do not report calls failing during the shutdown as fatal', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures', 'interrupted-run.ts')], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.stderr).toContain('SIGINT: stopping every process the lab started');
    expect(run.stderr).not.toContain('fatal');
    expect(run.status).toBe(130);
  });
});
