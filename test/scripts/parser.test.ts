import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAuditLines, splitLines, type AuditLineEvent } from '../../scripts/audit-analysis/lines';
import { parseAuditLine, parseTimestamp, type AuditRecord } from '../../scripts/audit-analysis/parser';

const FIXTURES = join(__dirname, 'fixtures');
const escapingLines = readFileSync(join(FIXTURES, 'mariadb-escaping.log'), 'utf8').split('\n').filter((l) => l !== '');

function record(line: string): AuditRecord {
  const result = parseAuditLine(line);
  if (!result.ok) throw new Error(`expected a record, got: ${result.reason}`);
  return result.record;
}

function fixtureLine(fragment: string): string {
  const line = escapingLines.find((l) => l.includes(fragment));
  if (!line) throw new Error(`fixture has no line with ${fragment}`);
  return line;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function* chunksOf<T extends string | Buffer>(...chunks: T[]): AsyncGenerator<T> {
  yield* chunks;
}

describe('parseAuditLine on real MariaDB server_audit lines', () => {
  test('a CONNECT record: every field, empty object, retcode 0', () => {
    const r = record(fixtureLine(',CONNECT,sbtest,,0'));
    expect(r).toMatchObject({
      timestampFormat: 'mariadb',
      timeMs: Date.UTC(2026, 10, 25, 13, 23, 25),
      serverHost: 'vm',
      username: 'labadmin',
      host: 'localhost',
      connectionId: 77,
      queryId: 0,
      operation: 'CONNECT',
      database: 'sbtest',
      object: '',
      objectQuoted: false,
      retcode: 0,
      extra: [],
    });
  });

  test('a TABLE event has the table as object and no retcode', () => {
    const r = record(fixtureLine(',CREATE,sbtest,fx_quotes,'));
    expect(r).toMatchObject({ operation: 'CREATE', database: 'sbtest', object: 'fx_quotes', retcode: undefined, queryId: 175289 });
  });

  test('escaped quotes, doubled SQL quotes, double quotes and commas inside the statement', () => {
    const r = record(fixtureLine('INSERT INTO fx_quotes'));
    expect(r.operation).toBe('QUERY');
    expect(r.objectQuoted).toBe(true);
    // The client sent: INSERT INTO fx_quotes VALUES (1, 'it''s, a "test", with commas'), (2, 'back\\slash')
    expect(r.object).toBe(`INSERT INTO fx_quotes VALUES (1, 'it''s, a "test", with commas'), (2, 'back\\\\slash')`);
    expect(r.retcode).toBe(0);
  });

  test('line break and tab written as \\n and \\t come back as the characters', () => {
    const r = record(fixtureLine('AS nl'));
    expect(r.object).toBe("SELECT 'line1\nline2\ttab' AS nl");
  });

  test('an escaped backslash right before the closing quote of a literal', () => {
    const r = record(fixtureLine('trailing backslash'));
    expect(r.object).toBe("SELECT 'trailing backslash \\\\' AS t, 'x' AS y");
  });

  test('non-ASCII text and a comment stay intact', () => {
    expect(record(fixtureLine('AS u')).object).toBe("SELECT 'ünïcødé, 日本語' AS u");
    expect(record(fixtureLine('/* keep */')).object).toBe("SELECT /* keep */ v FROM fx_quotes WHERE v LIKE '%,%'");
  });

  test('RENAME names old and new table in one object', () => {
    expect(record(fixtureLine(',RENAME,')).object).toBe('fx_quotes|sbtest.fx_quotes2');
  });

  test('a failed statement keeps its error number; a failed login is FAILED_CONNECT 1045', () => {
    expect(record(fixtureLine('no_such_table')).retcode).toBe(1146);
    const failed = record(fixtureLine('nosuchuser,localhost,78,0,FAILED_CONNECT'));
    expect(failed).toMatchObject({ operation: 'FAILED_CONNECT', username: 'nosuchuser', retcode: 1045, database: '' });
  });

  test('a statement cut at server_audit_query_log_limit still parses', () => {
    const r = record(fixtureLine("SELECT \\'xxxx"));
    // The limit counts the escaped text: 1024 characters in the log, one of them the escaping backslash.
    expect(r.object).toBe(`SELECT '${'x'.repeat(1015)}`);
    expect(r.retcode).toBe(0);
  });

  test('every line of the real fixtures parses', async () => {
    for (const name of ['mariadb-run.log', 'mariadb-escaping.log', 'aurora-run.log']) {
      const events = await collect(parseAuditLines(splitLines(createReadStream(join(FIXTURES, name)))));
      expect(events.filter((e) => e.kind === 'unparseable')).toEqual([]);
      expect(events.length).toBeGreaterThan(30);
    }
  });
});

describe('parseAuditLine on Aurora-format lines', () => {
  test('epoch-microsecond timestamp and an extra trailing field', () => {
    const r = record("1704357000123456,ip-10-0-2-45,admin,10.0.0.157,26,0,CONNECT,,,0,tcp");
    expect(r.timestampFormat).toBe('epoch-us');
    expect(r.timeMs).toBe(1704357000123);
    expect(new Date(r.timeMs).toISOString()).toBe('2024-01-04T08:30:00.123Z');
    expect(r.retcode).toBe(0);
    expect(r.extra).toEqual(['tcp']);
  });

  test('a quoted statement followed by extra fields', () => {
    const r = record("1704357000123456,ip-10-0-2-45,admin,10.0.0.157,26,31,QUERY,sbtest,'SELECT \\'a,b\\', 2',0,x,y");
    expect(r.object).toBe("SELECT 'a,b', 2");
    expect(r.retcode).toBe(0);
    expect(r.extra).toEqual(['x', 'y']);
  });

  test('a writer that doubles quotes instead of escaping them', () => {
    expect(record("1704357000123456,h,u,h,1,2,QUERY,db,'SELECT ''x'', 1',0").object).toBe("SELECT 'x', 1");
  });

  test('an empty quoted statement', () => {
    expect(record("1704357000123456,h,u,h,1,2,QUERY,db,'',0").object).toBe('');
  });
});

describe('parseTimestamp', () => {
  test.each([
    ['20240104 08:30:00', Date.UTC(2024, 0, 4, 8, 30, 0), 'mariadb'],
    ['1704357000123456', 1704357000123, 'epoch-us'],
    ['1704357000123', 1704357000123, 'epoch-ms'],
    ['1704357000', 1704357000000, 'epoch-s'],
  ])('%s', (text, timeMs, format) => {
    expect(parseTimestamp(text)).toEqual({ timeMs, format });
  });

  test.each(['20261330 10:00:00', '20260230 10:00:00', '20260101 24:00:00', '2026-01-01 10:00:00', '12345', 'abc'])(
    'rejects %s',
    (text) => {
      expect(parseTimestamp(text)).toBeUndefined();
    },
  );
});

describe('malformed lines are reported, never thrown', () => {
  test.each([
    ['', 'empty line'],
    ['20261125 13:23:25,vm,labadmin,localhost,77,0,CONNECT', 'expected at least 10 fields'],
    ['not a timestamp,vm,u,h,1,0,CONNECT,,,0', 'unrecognised timestamp'],
    ['20261125 13:23:25,vm,u,h,x1,0,CONNECT,,,0', 'connectionid is not a number'],
    ['20261125 13:23:25,vm,u,h,1,q,CONNECT,,,0', 'queryid is not a number'],
    ['20261125 13:23:25,vm,u,h,1,0,connect?,,,0', 'unrecognised operation'],
    ["20261125 13:23:25,vm,u,h,1,2,QUERY,db,'SELECT 1", 'not terminated'],
    ["20261125 13:23:25,vm,u,h,1,2,QUERY,db,'SELECT 1'x,0", 'unexpected text after the quoted object'],
    ["20261125 13:23:25,vm,u,h,1,2,QUERY,db,'SELECT 1'", 'retcode field missing'],
    ['20261125 13:23:25,vm,u,h,1,2,READ,db,t1', 'retcode field missing'],
    ["20261125 13:23:25,vm,u,h,1,2,QUERY,db,'SELECT 1',ok", 'retcode is not a number'],
    ["1704357000123456,h,u,h,1,2,QUERY,db,'SELECT aaaa [Your log message was truncated]", 'not terminated'],
  ])('%j', (line, reason) => {
    const result = parseAuditLine(line);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });
});

describe('splitLines', () => {
  test('joins lines and multi-byte characters cut across chunks; CRLF and a missing final newline', async () => {
    const text = Buffer.from("a,1\r\nb 日本\nlast", 'utf8');
    const cut = text.indexOf(Buffer.from('本')) + 1; // inside the 3-byte character
    const lines = await collect(splitLines(chunksOf(text.subarray(0, 2), text.subarray(2, cut), text.subarray(cut))));
    expect(lines).toEqual(['a,1\r', 'b 日本', 'last']);
  });

  test('an empty stream yields nothing', async () => {
    expect(await collect(splitLines(chunksOf<Buffer>()))).toEqual([]);
  });
});

describe('parseAuditLines', () => {
  const kinds = (events: AuditLineEvent[]): string[] => events.map((e) => (e.kind === 'record' ? `record@${e.lineNumber}` : `bad@${e.lineNumber}`));

  test('re-joins a statement whose line break was not escaped, and numbers lines', async () => {
    const lines = [
      '20261125 13:23:25,vm,u,h,1,0,CONNECT,db,,0',
      "20261125 13:23:25,vm,u,h,1,2,QUERY,db,'SELECT 1,",
      "  2 FROM t',0",
      '20261125 13:23:25,vm,u,h,1,0,DISCONNECT,db,,0',
    ];
    const events = await collect(parseAuditLines(chunksOf(...lines)));
    expect(kinds(events)).toEqual(['record@1', 'record@2', 'record@4']);
    const joined = events[1];
    expect(joined.kind === 'record' && joined.record.object).toBe('SELECT 1,\n  2 FROM t');
  });

  test('an unterminated quote followed by the next record is reported, and the next record survives', async () => {
    const lines = ["1704357000123456,h,u,h,1,2,QUERY,db,'SELECT [Your log message was truncated]", '1704357000123457,h,u,h,1,0,DISCONNECT,,,0', ''];
    const events = await collect(parseAuditLines(chunksOf(...lines)));
    expect(kinds(events)).toEqual(['bad@1', 'record@2']);
    expect(events[0].kind === 'unparseable' && events[0].reason).toContain('not terminated');
  });

  test('an unterminated quote at the end of the input is reported', async () => {
    const events = await collect(parseAuditLines(chunksOf("1704357000123456,h,u,h,1,2,QUERY,db,'SELECT", 'more text')));
    expect(kinds(events)).toEqual(['bad@1']);
  });

  test('blank lines are skipped, garbage lines reported with their number', async () => {
    const events = await collect(parseAuditLines(chunksOf('', 'garbage', '1704357000123457,h,u,h,1,0,DISCONNECT,,,0')));
    expect(kinds(events)).toEqual(['bad@2', 'record@3']);
  });
});
