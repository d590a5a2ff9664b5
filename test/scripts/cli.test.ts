import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../scripts/audit-analysis/cli';
import { findTag, MARKER_PATTERN } from '../../scripts/audit-analysis/plan';

const MARKER = 'auditlab_20261125132240_3a35e43e';
const RUN_LOG = readFileSync(join(__dirname, 'fixtures', 'mariadb-run.log'), 'utf8');

let work: string;
let stdout: string;
let stderr: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'audit-cli-'));
  stdout = '';
  stderr = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
});

afterEach(() => {
  jest.restoreAllMocks();
  rmSync(work, { recursive: true, force: true });
});

function keyValues(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

describe('audit-analysis plan', () => {
  test('writes one private SQL file per block and prints the run names and passwords', async () => {
    const sqlDir = join(work, 'sql');
    expect(await main(['plan', '--sql-dir', sqlDir, '--database', 'labdb', '--user-host', 'localhost', '--categories', 'setup,authentication,cleanup'])).toBe(0);
    const plan = keyValues(stdout);
    expect(plan.marker).toMatch(MARKER_PATTERN);
    const runId = plan.marker.slice(-8);
    expect(plan).toMatchObject({ auth_user: `al_${runId}_auth`, oltp_user: `al_${runId}_oltp`, priv_user: `al_${runId}_priv`, table: `${plan.marker}_t` });
    expect(plan.blocks).toBe('setup auth-login-ok cleanup');
    expect(readdirSync(sqlDir).sort()).toEqual(['auth-login-ok.sql', 'cleanup.sql', 'setup.sql']);
    for (const file of readdirSync(sqlDir)) expect(statSync(join(sqlDir, file)).mode & 0o777).toBe(0o600);
    const setup = readFileSync(join(sqlDir, 'setup.sql'), 'utf8');
    expect(setup).toContain(`'al_${runId}_auth'@'localhost' IDENTIFIED BY '${plan.auth_password}'`);
    expect(setup).toContain(`IDENTIFIED BY '${plan.oltp_password}'`);
    expect(setup).toContain('ON `labdb`.*');
    expect(findTag(setup, plan.marker)).toEqual({ category: 'setup', step: 'create-auth-user' });
  });

  test('keeps a given marker', async () => {
    expect(await main(['plan', '--sql-dir', join(work, 'sql'), '--marker', MARKER])).toBe(0);
    expect(keyValues(stdout).marker).toBe(MARKER);
  });
});

describe('audit-analysis verify', () => {
  function logDir(content: string): string {
    const dir = join(work, 'logs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'server_audit.log'), content);
    return dir;
  }

  test('passes on a complete run and writes the text and JSON reports', async () => {
    const reports = join(work, 'reports');
    const code = await main(['verify', '--marker', MARKER, '--source-dir', logDir(RUN_LOG), '--timeout', '0', '--report-dir', reports, '--categories', 'setup,authentication,oltp,schema,privilege,reader,cleanup']);
    expect(code).toBe(0);
    expect(stdout).toContain('Result:  PASSED (30 of 30 expectations found)');
    expect(stderr).toContain('poll 1 at 0s: read 1 file(s)/object(s)');
    const json = JSON.parse(readFileSync(join(reports, `${MARKER}.json`), 'utf8'));
    expect(json).toMatchObject({ marker: MARKER, passed: true, missing: [] });
    expect(json.categories.map((c: { category: string }) => c.category)).toEqual(['setup', 'authentication', 'oltp', 'schema', 'privilege', 'reader', 'cleanup']);
    expect(readFileSync(join(reports, `${MARKER}.txt`), 'utf8')).toBe(stdout.slice(0, stdout.indexOf('\nReports: ')));
  });

  test('exits 1 and names the missing category when its records are absent', async () => {
    const reports = join(work, 'reports');
    const withoutSchema = RUN_LOG.split('\n').filter((l) => !l.includes(':schema:') && !l.includes(`${MARKER}_t,`)).join('\n');
    const code = await main(['verify', '--marker', MARKER, '--source-dir', logDir(withoutSchema), '--timeout', '0', '--report-dir', reports]);
    expect(code).toBe(1);
    expect(stdout).toContain('[FAIL] schema');
    expect(stdout).toContain('MISSING create-table');
    const json = JSON.parse(readFileSync(join(reports, `${MARKER}.json`), 'utf8'));
    expect(json.passed).toBe(false);
    expect(json.missing).toEqual([
      'schema/create-table', 'schema/alter-table', 'schema/insert-row', 'schema/drop-table',
      'schema/table-create', 'schema/table-alter', 'schema/table-write', 'schema/table-drop',
    ]);
  });

  test.each([
    [['verify'], 'verify needs --marker'],
    [['verify', '--marker', 'nope', '--source-dir', '.'], 'not a run marker'],
    [['verify', '--marker', MARKER], 'no audit logs to read'],
    [['verify', '--marker', MARKER, '--source-dir', '.', '--bucket', 'b'], 'either --source-dir or --bucket'],
    [['verify', '--marker', MARKER, '--source-dir', '.', '--timeout', 'soon'], '--timeout must be a whole number'],
    [['verify', '--marker', MARKER, '--source-dir', '.', '--categories', 'nope'], "unknown category 'nope'"],
    [['verify', '--bogus'], 'bogus'],
    [['plan'], 'plan needs --sql-dir'],
    [['frobnicate'], "unknown command 'frobnicate'"],
    [[], 'missing command'],
  ])('usage error %j exits 2', async (args, message) => {
    const saved = process.env.LAB_BUCKET;
    delete process.env.LAB_BUCKET;
    try {
      expect(await main(args)).toBe(2);
    } finally {
      if (saved !== undefined) process.env.LAB_BUCKET = saved;
    }
    expect(stderr).toContain(message);
    expect(stderr).toContain('Usage:');
  });
});
