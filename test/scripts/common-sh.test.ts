/**
 * scripts/lib/common.sh: settings file vs environment, Secrets Manager credentials, client option
 * files. Runs the real functions in bash with a stub `aws` on PATH; no database is needed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const COMMON = join(__dirname, '..', '..', 'scripts', 'lib', 'common.sh');

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'common-sh-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

function bash(script: string, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('bash', ['-c', `set -euo pipefail; . "${COMMON}"; lab_init test; ${script}`], {
    encoding: 'utf8',
    env: { PATH: `${work}/bin:${process.env.PATH ?? ''}`, HOME: work, TMPDIR: work, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function settingsFile(content: string): string {
  const path = join(work, 'settings.env');
  writeFileSync(path, content);
  return path;
}

describe('lab_load_settings', () => {
  test('loads LAB_* and AWS_* keys from the file and exports them; the environment wins', () => {
    const file = settingsFile(
      [
        "LAB_WRITER_HOST='writer.cluster-abc.eu-west-1.rds.amazonaws.com'",
        "LAB_DB_PORT='3306'",
        "LAB_BUCKET=''",
        "AWS_REGION='eu-west-1'",
        "OTHER_KEY='ignored'",
        "LAB_DB_NAME='from-file'",
      ].join('\n'),
    );
    const result = bash(
      'lab_load_settings; env | grep -E "^(LAB_|AWS_REGION|OTHER_KEY)" | sort',
      { LAB_SETTINGS_FILE: file, LAB_DB_NAME: 'from-env' },
    );
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([
      'AWS_REGION=eu-west-1',
      'LAB_BUCKET=',
      'LAB_DB_NAME=from-env',
      'LAB_DB_PORT=3306',
      `LAB_SETTINGS_FILE=${file}`,
      'LAB_WRITER_HOST=writer.cluster-abc.eu-west-1.rds.amazonaws.com',
    ]);
  });

  test('an explicitly named settings file that does not exist is an error', () => {
    const result = bash('lab_load_settings', { LAB_SETTINGS_FILE: join(work, 'missing.env') });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('does not exist');
  });

  test('a settings file that fails to evaluate is an error', () => {
    const result = bash('lab_load_settings', { LAB_SETTINGS_FILE: settingsFile("LAB_DB_PORT='3306\n") });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('could not be read');
  });

  test('lab_require_settings names every missing key', () => {
    const result = bash('lab_require_settings LAB_WRITER_HOST LAB_DB_PORT LAB_READER_HOST', { LAB_DB_PORT: '3306' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('missing setting(s): LAB_WRITER_HOST LAB_READER_HOST');
  });
});

test('scripts read their own LAB_* defaults after the settings file is loaded', () => {
  const file = settingsFile("LAB_SYSBENCH_TABLES='not-a-number'\n");
  const result = spawnSync('bash', [join(__dirname, '..', '..', 'scripts', 'setup_sysbench.sh'), 'run'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', TMPDIR: work, LAB_SETTINGS_FILE: file },
  });
  expect(result.status).toBe(1);
  expect(result.stderr).toContain("--tables must be a positive integer, got 'not-a-number'");
});

describe('lab_resolve_credentials', () => {
  function stubAws(secretString: string): void {
    const bin = join(work, 'bin');
    spawnSync('mkdir', ['-p', bin]);
    const stub = join(bin, 'aws');
    writeFileSync(stub, `#!/usr/bin/env bash\nprintf '%s\\n' "$*" >"${work}/aws-args"\nprintf '%s\\n' '${secretString}'\n`);
    chmodSync(stub, 0o755);
  }

  test('explicit LAB_DB_USER / LAB_DB_PASSWORD win and Secrets Manager is not called', () => {
    stubAws('{"username":"secret-user","password":"secret-pw"}');
    const result = bash('lab_resolve_credentials; echo "$LAB_DB_USER/$LAB_DB_PASSWORD"', {
      LAB_DB_USER: 'local',
      LAB_DB_PASSWORD: 'pw',
      LAB_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lab',
    });
    expect(result.stdout.trim()).toBe('local/pw');
    expect(() => statSync(join(work, 'aws-args'))).toThrow();
  });

  test('otherwise reads username and password from the secret, in the configured region, without exporting them', () => {
    stubAws('{"username":"admin","password":"p@ss w0rd\\\\x","engine":"mysql"}');
    const result = bash('lab_resolve_credentials; echo "$LAB_DB_USER|$LAB_DB_PASSWORD"; env | grep -c "^LAB_DB_PASSWORD=" || true', {
      LAB_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lab',
      AWS_REGION: 'eu-west-1',
    });
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual(['admin|p@ss w0rd\\x', '0']);
    expect(readFileSync(join(work, 'aws-args'), 'utf8').trim()).toBe(
      'secretsmanager get-secret-value --region eu-west-1 --secret-id arn:aws:secretsmanager:eu-west-1:123456789012:secret:lab --query SecretString --output text',
    );
  });

  test('a secret without a password field is a clear error', () => {
    stubAws('{"username":"admin"}');
    const result = bash('lab_resolve_credentials', { LAB_SECRET_ARN: 'arn:x' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("has no string field 'password'");
  });

  test('no credentials at all is a clear error', () => {
    const result = bash('lab_resolve_credentials');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('set LAB_DB_USER and LAB_DB_PASSWORD, or LAB_SECRET_ARN');
  });
});

describe('lab_client_cnf', () => {
  test('writes a private option file with backslashes escaped inside double quotes', () => {
    const result = bash(String.raw`f=$(lab_client_cnf 'admin' 'a\b#c'"'"'d e;f'); stat -c %a "$f"; cat "$f"`);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(`600\n[client]\nuser="admin"\npassword="a\\\\b#c'd e;f"\n`);
  });

  test('refuses a password with a double quote', () => {
    const result = bash(`lab_client_cnf admin 'bad"pw'`);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('double quotes or newlines are not supported');
  });

  test('the scratch folder is removed when the script exits', () => {
    const result = bash('echo "$LAB_TMP_DIR"; lab_client_cnf u p >/dev/null');
    expect(result.status).toBe(0);
    expect(() => statSync(result.stdout.trim())).toThrow();
  });
});
