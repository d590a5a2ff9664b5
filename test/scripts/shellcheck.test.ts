import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const REPO = join(__dirname, '..', '..');
const SCRIPTS = join(REPO, 'scripts');

function shellScripts(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : shellScripts(path);
    return entry.name.endsWith('.sh') ? [path] : [];
  });
}

const scripts = shellScripts(SCRIPTS);
/** Sourced helpers (scripts/**\/lib/) are not run on their own. */
const executables = scripts.filter((path) => !relative(SCRIPTS, path).split('/').includes('lib'));

const LAB_SCRIPTS = ['setup_ec2.sh', 'setup_sysbench.sh', 'test_audit_logs.sh'];

test('the lab scripts exist', () => {
  expect(executables.map((p) => relative(SCRIPTS, p))).toEqual(expect.arrayContaining(LAB_SCRIPTS));
  expect(scripts.map((p) => relative(SCRIPTS, p))).toContain('lib/common.sh');
});

test('shellcheck passes on every scripts/**/*.sh', () => {
  const version = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
  if (version.error) {
    throw new Error('shellcheck is not installed: `apt-get install -y shellcheck` (Debian/Ubuntu) or see https://www.shellcheck.net');
  }
  // -x follows `source` into lib/common.sh; every script declares source-path=SCRIPTDIR.
  const result = spawnSync('shellcheck', ['-x', '--severity=style', ...scripts.map((p) => relative(REPO, p))], {
    cwd: REPO,
    encoding: 'utf8',
  });
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
});

describe.each(executables.map((p) => [relative(SCRIPTS, p), p]))('%s', (_name, path) => {
  test('is a bash script with strict mode, executable', () => {
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(text).toMatch(/^set -euo pipefail$/m);
    expect(statSync(path).mode & 0o111).toBe(0o111);
  });
});

describe.each(LAB_SCRIPTS)('%s', (name) => {
  const path = join(SCRIPTS, name);

  test('answers --help without touching a database or the system', () => {
    const result = spawnSync('bash', [path, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage:');
  });
});
