/**
 * Parser of the audit-log CSV format shared by MariaDB's server_audit plugin and Aurora MySQL's
 * advanced auditing:
 *
 *   timestamp,serverhost,username,host,connectionid,queryid,operation,database,object,retcode[,extra...]
 *
 * - timestamp: Aurora writes epoch microseconds (`1704357000123456`), MariaDB `YYYYMMDD HH:MM:SS`.
 * - object: a table name for TABLE events (`READ`, `WRITE`, `CREATE`, ...), or for QUERY events the
 *   statement in single quotes. server_audit escapes inside the quotes with a backslash: `\'` for a
 *   quote, `\\` for a backslash, `\n`, `\r`, `\t` for control characters (checked on MariaDB 10.11),
 *   so a record is one physical line and the statement may hold commas and quotes.
 * - retcode: empty for TABLE events, the error number otherwise (1045 for a failed login).
 * - Aurora may append fields after retcode; they are kept in `extra`, never an error.
 */

export type TimestampFormat = 'epoch-us' | 'epoch-ms' | 'epoch-s' | 'mariadb';

export interface AuditRecord {
  /** Milliseconds since the epoch. MariaDB timestamps carry no zone and are read as UTC. */
  timeMs: number;
  timestampFormat: TimestampFormat;
  serverHost: string;
  username: string;
  host: string;
  connectionId: number;
  queryId: number;
  /** CONNECT, DISCONNECT, FAILED_CONNECT, QUERY, READ, WRITE, CREATE, ALTER, RENAME, DROP, ... */
  operation: string;
  database: string;
  /** Statement text (unescaped) for QUERY events, table name for TABLE events, '' otherwise. */
  object: string;
  /** Whether `object` was written as a quoted string (QUERY events). */
  objectQuoted: boolean;
  /** Undefined when the field is empty (TABLE events). */
  retcode: number | undefined;
  /** Fields after retcode, as written. */
  extra: string[];
}

export type ParseResult =
  | { ok: true; record: AuditRecord }
  | { ok: false; reason: string; /** The quoted field runs past the end of the line. */ unterminated?: boolean };

const LEADING_FIELDS = 8;
const MARIADB_TIMESTAMP = /^(\d{4})(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;
const EPOCH_TIMESTAMP = /^\d{10,19}$/;
const INTEGER = /^-?\d+$/;

/** A line starts a new record when it begins with a timestamp and a comma. */
export const RECORD_START = /^(?:\d{10,19}|\d{8} \d{2}:\d{2}:\d{2}),/;

/** Consecutive records mostly share a timestamp (MariaDB's has whole seconds): reuse the last result. */
let lastTimestamp: { text: string; parsed: { timeMs: number; format: TimestampFormat } | undefined } = { text: '', parsed: undefined };

export function parseTimestamp(text: string): { timeMs: number; format: TimestampFormat } | undefined {
  if (text === lastTimestamp.text) return lastTimestamp.parsed;
  const parsed = parseTimestampUncached(text);
  lastTimestamp = { text, parsed };
  return parsed;
}

function parseTimestampUncached(text: string): { timeMs: number; format: TimestampFormat } | undefined {
  const mariadb = MARIADB_TIMESTAMP.exec(text);
  if (mariadb) {
    const [year, month, day, hour, minute, second] = mariadb.slice(1).map(Number);
    const timeMs = Date.UTC(year, month - 1, day, hour, minute, second);
    const check = new Date(timeMs);
    // Date.UTC silently rolls 20260230 over to March; a real log never holds such a date.
    if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 60) {
      return undefined;
    }
    return { timeMs, format: 'mariadb' };
  }
  if (EPOCH_TIMESTAMP.test(text)) {
    // Digits decide the unit: 16 = microseconds (Aurora), 13 = milliseconds, 10 = seconds.
    const digits = text.length;
    if (digits >= 15) return { timeMs: Math.floor(Number(text.slice(0, digits - 3))), format: 'epoch-us' };
    if (digits >= 12) return { timeMs: Number(text), format: 'epoch-ms' };
    return { timeMs: Number(text) * 1000, format: 'epoch-s' };
  }
  return undefined;
}

const ESCAPES: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t', '0': '\0', '\\': '\\', "'": "'" };

/**
 * Reads a single-quoted field starting at `start` (the opening quote). Returns the decoded text and
 * the index just past the closing quote, or undefined when the line ends inside the quotes.
 */
function readQuoted(line: string, start: number): { text: string; end: number } | undefined {
  let text = '';
  let i = start + 1;
  while (i < line.length) {
    const ch = line[i];
    if (ch === '\\' && i + 1 < line.length) {
      const next = line[i + 1];
      text += ESCAPES[next] ?? next;
      i += 2;
      continue;
    }
    if (ch === "'") {
      // A writer that doubles quotes instead of escaping them ('') is read the SQL way.
      if (line[i + 1] === "'") {
        text += "'";
        i += 2;
        continue;
      }
      return { text, end: i + 1 };
    }
    text += ch;
    i += 1;
  }
  return undefined;
}

export function parseAuditLine(rawLine: string): ParseResult {
  const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
  if (line.trim() === '') return { ok: false, reason: 'empty line' };

  const leading: string[] = [];
  let pos = 0;
  for (let n = 0; n < LEADING_FIELDS; n += 1) {
    const comma = line.indexOf(',', pos);
    if (comma < 0) return { ok: false, reason: `expected at least 10 fields, found ${n + 1}` };
    leading.push(line.slice(pos, comma));
    pos = comma + 1;
  }
  const [timestamp, serverHost, username, host, connectionText, queryText, operation, database] = leading;

  const time = parseTimestamp(timestamp);
  if (!time) return { ok: false, reason: `unrecognised timestamp '${timestamp.slice(0, 40)}'` };
  if (!INTEGER.test(connectionText)) return { ok: false, reason: `connectionid is not a number: '${connectionText}'` };
  if (!INTEGER.test(queryText)) return { ok: false, reason: `queryid is not a number: '${queryText}'` };
  if (!/^[A-Z_]+$/.test(operation)) return { ok: false, reason: `unrecognised operation '${operation.slice(0, 40)}'` };

  let object: string;
  let objectQuoted = false;
  if (line[pos] === "'") {
    const quoted = readQuoted(line, pos);
    if (!quoted) return { ok: false, reason: 'quoted object field is not terminated', unterminated: true };
    object = quoted.text;
    objectQuoted = true;
    pos = quoted.end;
    if (pos < line.length && line[pos] !== ',') {
      return { ok: false, reason: 'unexpected text after the quoted object field' };
    }
    if (pos >= line.length) return { ok: false, reason: 'retcode field missing' };
    pos += 1;
  } else {
    const comma = line.indexOf(',', pos);
    if (comma < 0) return { ok: false, reason: 'retcode field missing' };
    object = line.slice(pos, comma);
    pos = comma + 1;
  }

  const rest = line.slice(pos).split(',');
  const retcodeText = rest[0];
  if (retcodeText !== '' && !INTEGER.test(retcodeText)) {
    return { ok: false, reason: `retcode is not a number: '${retcodeText.slice(0, 40)}'` };
  }

  return {
    ok: true,
    record: {
      timeMs: time.timeMs,
      timestampFormat: time.format,
      serverHost,
      username,
      host,
      connectionId: Number(connectionText),
      queryId: Number(queryText),
      operation,
      database,
      object,
      objectQuoted,
      retcode: retcodeText === '' ? undefined : Number(retcodeText),
      extra: rest.slice(1),
    },
  };
}
