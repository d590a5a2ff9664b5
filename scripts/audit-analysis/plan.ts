/**
 * The test run of test_audit_logs.sh, defined once: the run marker, the throw-away users and table it
 * creates, every statement it executes (tagged with the marker) and every piece of evidence the
 * analyser then expects to find in the audit log. The bash script only executes what this module
 * writes out, so what is run and what is checked cannot drift apart.
 */
import { randomBytes } from 'node:crypto';

/** Bad input from the command line or the environment (a marker, a name, a category). */
export class InvalidInputError extends Error {}

/** Categories in execution order. `reader` runs only when a reader endpoint is tested. */
export const CATEGORIES = ['setup', 'authentication', 'oltp', 'schema', 'privilege', 'reader', 'cleanup'] as const;
export type Category = (typeof CATEGORIES)[number];
export const DEFAULT_CATEGORIES: readonly Category[] = CATEGORIES.filter((c) => c !== 'reader');

const MARKER_PREFIX = 'auditlab';
/**
 * `auditlab_<UTC yyyymmddhhmmss>_<8 hex>`: lowercase letters, digits and underscores only, so it is a
 * valid unquoted identifier part and survives any lower_case_table_names setting; 32 characters.
 */
export const MARKER_PATTERN = /^auditlab_(\d{14})_([0-9a-f]{8})$/;
const TAG_PATTERN = /\/\* (auditlab_\d{14}_[0-9a-f]{8}):([a-z]+):([a-z0-9-]+) \*\//;

export function newMarker(now: Date = new Date(), random: Buffer = randomBytes(4)): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${MARKER_PREFIX}_${stamp}_${random.subarray(0, 4).toString('hex').padStart(8, '0')}`;
}

export interface ParsedMarker {
  marker: string;
  /** When the run started (from the marker), epoch ms. */
  startedAtMs: number;
  runId: string;
}

export function parseMarker(marker: string): ParsedMarker {
  const match = MARKER_PATTERN.exec(marker);
  if (!match) throw new InvalidInputError(`not a run marker: '${marker}' (expected auditlab_<yyyymmddhhmmss>_<8 hex digits>)`);
  const s = match[1];
  const startedAtMs = Date.UTC(+s.slice(0, 4), +s.slice(4, 6) - 1, +s.slice(6, 8), +s.slice(8, 10), +s.slice(10, 12), +s.slice(12, 14));
  if (Number.isNaN(startedAtMs)) throw new InvalidInputError(`run marker '${marker}' holds an invalid time`);
  return { marker, startedAtMs, runId: match[2] };
}

export interface RunNames {
  marker: string;
  /** Logs in successfully once and fails once with a wrong password. */
  authUser: string;
  /** Runs the sysbench workload, so every sysbench statement is attributable to this run. */
  oltpUser: string;
  /** Created, granted, revoked and dropped by the privilege tests; never logs in. */
  privUser: string;
  /** Created, altered, written and dropped by the schema tests. */
  table: string;
}

/** User names stay within MySQL 8's 32-character limit. */
export function runNames(marker: string): RunNames {
  const { runId } = parseMarker(marker);
  return {
    marker,
    authUser: `al_${runId}_auth`,
    oltpUser: `al_${runId}_oltp`,
    privUser: `al_${runId}_priv`,
    table: `${marker}_t`,
  };
}

export function statementTag(marker: string, category: Category, step: string): string {
  return `${marker}:${category}:${step}`;
}

/** The category and step of a statement carrying this run's tag comment, if any. */
export function findTag(statement: string, marker: string): { category: string; step: string } | undefined {
  if (!statement.includes(marker)) return undefined;
  const match = TAG_PATTERN.exec(statement);
  if (!match || match[1] !== marker) return undefined;
  return { category: match[2], step: match[3] };
}

/** Who runs a block: the lab credentials on the writer or reader, or one of the run's own users. */
export type Session = 'admin' | 'auth-user' | 'oltp-user' | 'reader-admin';

export interface PlanInput {
  marker: string;
  /** Workload schema (LAB_DB_NAME). */
  database: string;
  /** Host part of the run's accounts, '%' unless the server needs a narrower one. */
  userHost: string;
  authPassword: string;
  oltpPassword: string;
  privPassword: string;
}

interface StepDefinition {
  category: Category;
  step: string;
  block: string;
  session: Session;
  description: string;
  sql: (p: PlanInput, n: RunNames) => string;
  /**
   * For statements that carry a password or privileges, MySQL 8 (Aurora MySQL 3) may log a rewritten
   * text (`IDENTIFIED WITH ... AS '<secret>'`) rebuilt without comments, losing the tag: such a
   * statement is also recognised by its verb and the run's account it names.
   */
  untagged?: (n: RunNames) => { verb: RegExp; account: string };
}

const createUserOf = (account: string) => ({ verb: /^\s*CREATE\s+USER\b/i, account });
const grantTo = (account: string) => ({ verb: /^\s*GRANT\b/i, account });

const account = (user: string, p: PlanInput): string => `'${user}'@'${p.userHost}'`;

/** Every statement of a run, in execution order. Blocks are executed as one client call each. */
const STEPS: readonly StepDefinition[] = [
  {
    category: 'setup', step: 'create-auth-user', block: 'setup', session: 'admin',
    description: 'CREATE USER for the login tests',
    sql: (p, n) => `CREATE USER ${account(n.authUser, p)} IDENTIFIED BY '${p.authPassword}'`,
    untagged: (n) => createUserOf(n.authUser),
  },
  {
    category: 'setup', step: 'create-oltp-user', block: 'setup', session: 'admin',
    description: 'CREATE USER for the sysbench workload',
    sql: (p, n) => `CREATE USER ${account(n.oltpUser, p)} IDENTIFIED BY '${p.oltpPassword}'`,
    untagged: (n) => createUserOf(n.oltpUser),
  },
  {
    category: 'setup', step: 'grant-oltp-user', block: 'setup', session: 'admin',
    description: 'GRANT the workload privileges',
    sql: (p, n) => `GRANT SELECT, INSERT, UPDATE, DELETE ON \`${p.database}\`.* TO ${account(n.oltpUser, p)}`,
    untagged: (n) => grantTo(n.oltpUser),
  },
  {
    category: 'authentication', step: 'login-ok', block: 'auth-login-ok', session: 'auth-user',
    description: 'statement in the session of the successful login',
    sql: () => 'SELECT CURRENT_USER()',
  },
  {
    category: 'oltp', step: 'begin', block: 'oltp-begin', session: 'oltp-user',
    description: 'marker statement before the sysbench run',
    sql: () => 'SELECT NOW()',
  },
  {
    category: 'oltp', step: 'end', block: 'oltp-end', session: 'oltp-user',
    description: 'marker statement after the sysbench run',
    sql: () => 'SELECT NOW()',
  },
  {
    category: 'schema', step: 'create-table', block: 'schema', session: 'admin',
    description: 'CREATE TABLE',
    sql: (_p, n) => `CREATE TABLE \`${n.table}\` (id INT NOT NULL PRIMARY KEY, note VARCHAR(200) NOT NULL)`,
  },
  {
    category: 'schema', step: 'alter-table', block: 'schema', session: 'admin',
    description: 'ALTER TABLE',
    sql: (_p, n) => `ALTER TABLE \`${n.table}\` ADD COLUMN added_at DATETIME NULL`,
  },
  {
    // Commas, both quote kinds, a backslash and a line break: what the audit-log escaping must carry.
    category: 'schema', step: 'insert-row', block: 'schema', session: 'admin',
    description: 'INSERT with commas, quotes, a backslash and a line break in the statement',
    sql: (_p, n) => `INSERT INTO \`${n.table}\` (id, note)\nVALUES (1, 'O''Brien, "quoted", back\\\\slash')`,
  },
  {
    category: 'schema', step: 'drop-table', block: 'schema', session: 'admin',
    description: 'DROP TABLE',
    sql: (_p, n) => `DROP TABLE \`${n.table}\``,
  },
  {
    category: 'privilege', step: 'create-user', block: 'privilege', session: 'admin',
    description: 'CREATE USER',
    sql: (p, n) => `CREATE USER ${account(n.privUser, p)} IDENTIFIED BY '${p.privPassword}'`,
    untagged: (n) => createUserOf(n.privUser),
  },
  {
    category: 'privilege', step: 'grant', block: 'privilege', session: 'admin',
    description: 'GRANT',
    sql: (p, n) => `GRANT SELECT ON \`${p.database}\`.* TO ${account(n.privUser, p)}`,
    untagged: (n) => grantTo(n.privUser),
  },
  {
    category: 'privilege', step: 'revoke', block: 'privilege', session: 'admin',
    description: 'REVOKE',
    sql: (p, n) => `REVOKE SELECT ON \`${p.database}\`.* FROM ${account(n.privUser, p)}`,
  },
  {
    category: 'privilege', step: 'drop-user', block: 'privilege', session: 'admin',
    description: 'DROP USER',
    sql: (p, n) => `DROP USER ${account(n.privUser, p)}`,
  },
  {
    category: 'reader', step: 'select', block: 'reader', session: 'reader-admin',
    description: 'statement on the reader instance',
    sql: () => 'SELECT CURRENT_USER(), @@hostname',
  },
  // Cleanup is idempotent so the script can also run it after a failure half-way through.
  {
    category: 'cleanup', step: 'drop-auth-user', block: 'cleanup', session: 'admin',
    description: 'DROP USER of the login-test user',
    sql: (p, n) => `DROP USER IF EXISTS ${account(n.authUser, p)}`,
  },
  {
    category: 'cleanup', step: 'drop-oltp-user', block: 'cleanup', session: 'admin',
    description: 'DROP USER of the workload user',
    sql: (p, n) => `DROP USER IF EXISTS ${account(n.oltpUser, p)}`,
  },
  {
    category: 'cleanup', step: 'drop-priv-user', block: 'cleanup', session: 'admin',
    description: 'DROP USER IF EXISTS of the privilege-test user',
    sql: (p, n) => `DROP USER IF EXISTS ${account(n.privUser, p)}`,
  },
  {
    category: 'cleanup', step: 'drop-table', block: 'cleanup', session: 'admin',
    description: 'DROP TABLE IF EXISTS of the schema-test table',
    sql: (_p, n) => `DROP TABLE IF EXISTS \`${n.table}\``,
  },
];

export interface SqlBlock {
  name: string;
  category: Category;
  session: Session;
  /** Statements, each ending with `;` and starting with its tag comment. */
  sql: string;
}

const PASSWORD_PATTERN = /^[A-Za-z0-9]{16,64}$/;
const IDENTIFIER_PATTERN = /^[A-Za-z0-9_]{1,64}$/;
const USER_HOST_PATTERN = /^[A-Za-z0-9._%:-]{1,255}$/;

/** Alphanumeric (safe in SQL and option files) with all character classes a password policy may want. */
export function newPassword(random: Buffer = randomBytes(24)): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const body = [...random].map((b) => alphabet[b % alphabet.length]).join('');
  return `Aa9${body}`;
}

function validateInput(p: PlanInput): void {
  parseMarker(p.marker);
  if (!IDENTIFIER_PATTERN.test(p.database)) throw new InvalidInputError(`database name must match ${IDENTIFIER_PATTERN}: '${p.database}'`);
  if (!USER_HOST_PATTERN.test(p.userHost)) throw new InvalidInputError(`user host must match ${USER_HOST_PATTERN}: '${p.userHost}'`);
  for (const [name, value] of [['auth', p.authPassword], ['oltp', p.oltpPassword], ['priv', p.privPassword]] as const) {
    if (!PASSWORD_PATTERN.test(value)) throw new InvalidInputError(`${name} password must match ${PASSWORD_PATTERN}`);
  }
}

/** The SQL of every block of the run, in execution order. */
export function sqlBlocks(input: PlanInput, categories: readonly Category[] = CATEGORIES): SqlBlock[] {
  validateInput(input);
  const names = runNames(input.marker);
  const blocks: SqlBlock[] = [];
  for (const step of STEPS) {
    if (!categories.includes(step.category)) continue;
    const statement = `/* ${statementTag(input.marker, step.category, step.step)} */ ${step.sql(input, names)};\n`;
    const last = blocks[blocks.length - 1];
    if (last && last.name === step.block) last.sql += statement;
    else blocks.push({ name: step.block, category: step.category, session: step.session, sql: statement });
  }
  return blocks;
}

/** What one expectation looks for in the audit records. */
export type EvidenceRule =
  /** A QUERY record carrying the tag comment, retcode 0 (optionally by a given user). */
  | { kind: 'statement'; tag: string; username?: string; untagged?: { verb: RegExp; account: string } }
  /** A successful CONNECT of the user. */
  | { kind: 'connect'; username: string }
  /** A rejected login of the user: FAILED_CONNECT, or CONNECT with a non-zero retcode. */
  | { kind: 'failed-connect'; username: string }
  /** A TABLE event (READ, WRITE, CREATE, ALTER, DROP, ...) on a table, optionally by a user. */
  | { kind: 'table-event'; operation: string; table: string | RegExp; username?: string }
  /** Untagged QUERY records of the user whose statement matches the pattern. */
  | { kind: 'user-queries'; username: string; pattern: RegExp };

export interface Expectation {
  category: Category;
  id: string;
  description: string;
  rule: EvidenceRule;
}

export interface ExpectationOptions {
  categories?: readonly Category[];
  /** Expect TABLE events too (the cluster logs the TABLE event class). */
  tableEvents?: boolean;
}

const SYSBENCH_TABLE = /^sbtest\d+$/;

/** Everything a complete run leaves in the audit log. */
export function expectations(marker: string, options: ExpectationOptions = {}): Expectation[] {
  const categories = options.categories ?? DEFAULT_CATEGORIES;
  const tableEvents = options.tableEvents ?? true;
  const n = runNames(marker);
  const sessionUser: Record<Session, string | undefined> = {
    admin: undefined,
    'reader-admin': undefined,
    'auth-user': n.authUser,
    'oltp-user': n.oltpUser,
  };
  const extra: Partial<Record<Category, Expectation[]>> = {
    authentication: [
      { category: 'authentication', id: 'connect', description: `successful login of ${n.authUser}`, rule: { kind: 'connect', username: n.authUser } },
      {
        category: 'authentication', id: 'failed-connect', description: `rejected login of ${n.authUser} (wrong password)`,
        rule: { kind: 'failed-connect', username: n.authUser },
      },
    ],
    oltp: [
      { category: 'oltp', id: 'connect', description: `sysbench login of ${n.oltpUser}`, rule: { kind: 'connect', username: n.oltpUser } },
      {
        category: 'oltp', id: 'sysbench-queries', description: `sysbench statements of ${n.oltpUser} on sbtest tables`,
        rule: { kind: 'user-queries', username: n.oltpUser, pattern: /\bsbtest\d+\b/ },
      },
      {
        category: 'oltp', id: 'literal-values', description: 'sysbench statements logged with literal values (--db-ps-mode=disable)',
        rule: { kind: 'user-queries', username: n.oltpUser, pattern: /\bWHERE\s+id\s*=\s*\d+/i },
      },
      ...(tableEvents
        ? (['READ', 'WRITE'] as const).map((operation): Expectation => ({
            category: 'oltp', id: `table-${operation.toLowerCase()}`, description: `${operation} table events of ${n.oltpUser} on sbtest tables`,
            rule: { kind: 'table-event', operation, table: SYSBENCH_TABLE, username: n.oltpUser },
          }))
        : []),
    ],
    schema: tableEvents
      ? (['CREATE', 'ALTER', 'WRITE', 'DROP'] as const).map((operation): Expectation => ({
          category: 'schema', id: `table-${operation.toLowerCase()}`, description: `${operation} table event on ${n.table}`,
          rule: { kind: 'table-event', operation, table: n.table },
        }))
      : [],
  };

  const result: Expectation[] = [];
  for (const category of CATEGORIES) {
    if (!categories.includes(category)) continue;
    for (const step of STEPS.filter((s) => s.category === category)) {
      result.push({
        category,
        id: step.step,
        description: `tagged statement: ${step.description}`,
        rule: {
          kind: 'statement',
          tag: statementTag(marker, category, step.step),
          username: sessionUser[step.session],
          ...(step.untagged ? { untagged: step.untagged(n) } : {}),
        },
      });
    }
    result.push(...(extra[category] ?? []));
  }
  return result;
}

export function parseCategories(list: string): Category[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const name of names) {
    if (!(CATEGORIES as readonly string[]).includes(name)) {
      throw new InvalidInputError(`unknown category '${name}' (accepted: ${CATEGORIES.join(', ')})`);
    }
  }
  return names as Category[];
}
