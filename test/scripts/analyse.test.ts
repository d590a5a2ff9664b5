import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditAnalyser, analyse, type AnalysisResult, type CategoryResult } from '../../scripts/audit-analysis/analyse';
import { parseAuditLine, type AuditRecord } from '../../scripts/audit-analysis/parser';
import { CATEGORIES, runNames, type Category } from '../../scripts/audit-analysis/plan';

const MARKER = 'auditlab_20261125132240_3a35e43e';
const ALL = [...CATEGORIES];

function fixtureLines(name: string): string[] {
  return readFileSync(join(__dirname, 'fixtures', name), 'utf8').split('\n').filter((l) => l !== '');
}

function records(lines: string[]): AuditRecord[] {
  return lines.map((line) => {
    const result = parseAuditLine(line);
    if (!result.ok) throw new Error(`fixture line does not parse: ${result.reason}`);
    return result.record;
  });
}

function category(result: AnalysisResult, name: Category): CategoryResult {
  const found = result.categories.find((c) => c.category === name);
  if (!found) throw new Error(`no category ${name} in result`);
  return found;
}

const mariadbRun = fixtureLines('mariadb-run.log');

describe('analyse a real MariaDB run', () => {
  const result = analyse(records(mariadbRun), MARKER, { categories: ALL });

  test('every expectation of every category is found', () => {
    expect(result.missing).toEqual([]);
    expect(result.passed).toBe(true);
    expect(result.categories.map((c) => [c.category, c.passed])).toEqual(ALL.map((c) => [c, true]));
  });

  test('authentication: the login, the tagged statement and the rejected login are counted', () => {
    const auth = category(result, 'authentication');
    expect(auth.byOperation).toEqual({ CONNECT: 1, DISCONNECT: 2, FAILED_CONNECT: 1, QUERY: 1 });
    const failed = auth.expectations.find((e) => e.id === 'failed-connect');
    expect(failed?.evidence).toMatchObject({ operation: 'FAILED_CONNECT', retcode: 1045, username: runNames(MARKER).authUser });
  });

  test('oltp: the sysbench statements of the workload user and their table events are counted', () => {
    const oltp = category(result, 'oltp');
    const sysbench = oltp.expectations.find((e) => e.id === 'sysbench-queries');
    // 70 + 20 workload lines were kept; 4 connects, 4 disconnects and 2 tagged statements are among them.
    expect(oltp.events).toBe(90);
    expect(oltp.byOperation.CONNECT).toBe(4);
    const workloadStatements = mariadbRun.filter((l) => l.includes(',al_3a35e43e_oltp,') && l.includes(',QUERY,') && /sbtest\d/.test(l) && !l.includes(MARKER));
    expect(sysbench?.count).toBe(workloadStatements.length);
    expect(oltp.expectations.find((e) => e.id === 'literal-values')?.evidence?.object).toMatch(/WHERE id=\d+/);
  });

  test('schema: TABLE events that precede their QUERY line are attributed by query id', () => {
    expect(category(result, 'schema').byOperation).toEqual({ ALTER: 1, CREATE: 1, DROP: 1, QUERY: 4, READ: 4, WRITE: 4 });
    // The grant tables written by CREATE USER belong to the tagged DCL statements.
    expect(category(result, 'privilege').byOperation).toEqual({ QUERY: 4, WRITE: 18 });
  });

  test('records of other sessions are read but not attributed to the run', () => {
    expect(result.totals.records).toBe(mariadbRun.length);
    expect(result.totals.runEvents).toBe(result.categories.reduce((n, c) => n + c.events, 0));
    expect(result.totals.runEvents).toBeLessThan(result.totals.records);
    expect(result.totals.byOperation.CONNECT).toBeGreaterThan(result.totals.runByOperation.CONNECT);
    expect(result.totals.firstRunEvent).toBe('2026-11-25T13:22:40.000Z');
    expect(result.totals.lastRunEvent).toBe('2026-11-25T13:22:46.000Z');
  });

  test('the insert with commas, quotes and a line break is found with its text intact', () => {
    const insert = category(result, 'schema').expectations.find((e) => e.id === 'insert-row');
    expect(insert?.evidence?.object).toContain(`(id, note)\nVALUES (1, 'O''Brien, "quoted", back\\\\slash')`);
  });
});

describe('missing evidence fails the category that lacks it', () => {
  test('without the privilege statements exactly those four are missing', () => {
    const result = analyse(records(mariadbRun.filter((l) => !l.includes(':privilege:'))), MARKER, { categories: ALL });
    expect(result.passed).toBe(false);
    expect(result.missing).toEqual(['privilege/create-user', 'privilege/grant', 'privilege/revoke', 'privilege/drop-user']);
    expect(category(result, 'privilege').passed).toBe(false);
    expect(category(result, 'schema').passed).toBe(true);
  });

  test('without the FAILED_CONNECT line the rejected login is missing', () => {
    const result = analyse(records(mariadbRun.filter((l) => !l.includes('FAILED_CONNECT'))), MARKER);
    expect(result.missing).toEqual(['authentication/failed-connect']);
  });

  test('a rejected login of another user does not count', () => {
    const lines = mariadbRun.map((l) => (l.includes('FAILED_CONNECT') ? l.replace('al_3a35e43e_auth', 'someone_else') : l));
    expect(analyse(records(lines), MARKER).missing).toEqual(['authentication/failed-connect']);
  });

  test('a tagged statement that failed (non-zero retcode) does not count', () => {
    const lines = mariadbRun.map((l) => (l.includes(':schema:alter-table */') ? l.replace(/,0$/, ',1064') : l));
    expect(analyse(records(lines), MARKER).missing).toEqual(['schema/alter-table']);
  });

  test('sysbench statements with placeholders (prepared statements) fail the literal-values check', () => {
    const lines = mariadbRun.map((l) => (l.includes('al_3a35e43e_oltp') ? l.replace(/id=\d+/g, 'id=?') : l));
    expect(analyse(records(lines), MARKER).missing).toEqual(['oltp/literal-values']);
  });

  test("another run's marker finds nothing and attributes nothing", () => {
    const result = analyse(records(mariadbRun), 'auditlab_20261125132240_00000000');
    expect(result.passed).toBe(false);
    expect(result.categories.every((c) => !c.passed)).toBe(true);
    expect(result.totals.runEvents).toBe(0);
  });

  test('the reader category is only expected when asked for', () => {
    const lines = mariadbRun.filter((l) => !l.includes(':reader:'));
    expect(analyse(records(lines), MARKER).passed).toBe(true);
    expect(analyse(records(lines), MARKER, { categories: ALL }).missing).toEqual(['reader/select']);
  });

  test('without TABLE events in the log, --no-table-events still passes and the default fails', () => {
    const tableOps = /,(READ|WRITE|CREATE|ALTER|DROP|RENAME),/;
    const lines = mariadbRun.filter((l) => !tableOps.test(l));
    expect(analyse(records(lines), MARKER, { tableEvents: false }).passed).toBe(true);
    expect(analyse(records(lines), MARKER).missing).toEqual([
      'oltp/table-read',
      'oltp/table-write',
      'schema/table-create',
      'schema/table-alter',
      'schema/table-write',
      'schema/table-drop',
    ]);
  });
});

describe('statements the server logs rewritten, without their tag comment (MySQL 8 / Aurora MySQL 3)', () => {
  const rewritable = /:(setup:create-auth-user|setup:create-oltp-user|setup:grant-oltp-user|privilege:create-user|privilege:grant) \*\//;
  /** What MySQL 8 writes for CREATE USER / GRANT: the statement rebuilt from the parse tree, comment gone. */
  const rewrite = (line: string): string =>
    line
      .replace(/'\/\* auditlab_[^*]+ \*\/ /, "'")
      .replace('IDENTIFIED BY *****', "IDENTIFIED WITH \\'mysql_native_password\\' AS \\'<secret>\\'");

  test('CREATE USER and GRANT are still recognised by verb and run account, and keep their category', () => {
    const lines = mariadbRun.map((l) => (rewritable.test(l) ? rewrite(l) : l));
    expect(lines.filter((l) => l.includes('<secret>'))).toHaveLength(3);
    const result = analyse(records(lines), MARKER);
    expect(result.missing).toEqual([]);
    expect(category(result, 'setup').byOperation).toEqual({ QUERY: 3, WRITE: 16 });
    expect(category(result, 'privilege').byOperation).toEqual({ QUERY: 4, WRITE: 18 });
    const createUser = category(result, 'setup').expectations.find((e) => e.id === 'create-auth-user');
    expect(createUser?.evidence?.object).toBe("CREATE USER 'al_3a35e43e_auth'@'%' IDENTIFIED WITH 'mysql_native_password' AS '<secret>'");
  });

  test("another run's account does not stand in for this run's", () => {
    const lines = mariadbRun.map((l) => (l.includes(':privilege:create-user */') ? rewrite(l).replace('al_3a35e43e_priv', 'al_00000000_priv') : l));
    expect(analyse(records(lines), MARKER).missing).toEqual(['privilege/create-user']);
  });

  test('statements without a run account still need their tag', () => {
    const lines = mariadbRun.map((l) => (l.includes(':oltp:begin */') ? l.replace(/'\/\* auditlab_[^*]+ \*\/ /, "'") : l));
    expect(analyse(records(lines), MARKER).missing).toEqual(['oltp/begin']);
  });
});

describe('analyse the Aurora-format run', () => {
  const result = analyse(records(fixtureLines('aurora-run.log')), MARKER, { categories: ALL });

  test('epoch timestamps, CONNECT with retcode 1045 and trailing fields pass every expectation', () => {
    expect(result.missing).toEqual([]);
    const failed = category(result, 'authentication').expectations.find((e) => e.id === 'failed-connect');
    expect(failed?.evidence).toMatchObject({ operation: 'CONNECT', retcode: 1045 });
    expect(result.totals.firstRunEvent).toMatch(/^2026-11-25T13:22:40\.\d{3}Z$/);
  });

  test('TABLE events written after their QUERY line are attributed too', () => {
    expect(category(result, 'schema').byOperation).toEqual({ ALTER: 1, CREATE: 1, DROP: 1, QUERY: 4, READ: 4, WRITE: 4 });
  });
});

describe('AuditAnalyser', () => {
  test('keeps at most five unparseable samples but counts them all', () => {
    const analyser = AuditAnalyser.forRun(MARKER);
    for (let i = 1; i <= 8; i += 1) analyser.addUnparseable('bad', `line ${i}`, { source: 'f', lineNumber: i });
    const result = analyser.result();
    expect(result.totals.unparseable).toBe(8);
    expect(result.unparseableSamples.map((s) => s.lineNumber)).toEqual([1, 2, 3, 4, 5]);
  });

  test('a table event after a tagged query of the same connection and query id joins its category', () => {
    const analyser = AuditAnalyser.forRun(MARKER);
    const base: AuditRecord = {
      timeMs: 0, timestampFormat: 'epoch-us', serverHost: 'h', username: 'admin', host: 'x', connectionId: 9, queryId: 0,
      operation: 'QUERY', database: 'mysql', object: '', objectQuoted: false, retcode: undefined, extra: [],
    };
    const origin = { source: 's', lineNumber: 1 };
    analyser.addRecord({ ...base, queryId: 5, operation: 'QUERY', object: `/* ${MARKER}:privilege:grant */ GRANT ...`, objectQuoted: true, retcode: 0 }, origin);
    analyser.addRecord({ ...base, queryId: 5, operation: 'WRITE', object: 'global_priv', retcode: undefined }, origin);
    // Same connection, the next statement (untagged): not part of the run.
    analyser.addRecord({ ...base, queryId: 6, operation: 'WRITE', object: 'global_priv', retcode: undefined }, origin);
    expect(category(analyser.result(), 'privilege').byOperation).toEqual({ QUERY: 1, WRITE: 1 });
  });
});
