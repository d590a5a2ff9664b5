/**
 * One unprivileged MariaDB server per lab instance: own datadir, socket and loopback port, the
 * server_audit plugin writing CSV audit files into its own folder with a small rotate size, so a short
 * workload already produces several files (and MariaDB's rename-on-rotate is exercised).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { positiveWholeNumber, UsageError } from '../cli/args';
import { freePort, LOOPBACK, waitUntil } from './net';
import type { DatabaseTools } from './preflight';
import { runsAsRoot } from './preflight';
import type { ProcessRegistry, TrackedProcess } from './processes';

const execFileAsync = promisify(execFile);

/** server_audit's own limits (mariadbd --help --verbose with the plugin loaded). */
export const MAX_AUDIT_FILE_ROTATIONS = 999;
export const MIN_AUDIT_FILE_ROTATE_SIZE = 100;

/**
 * `--rotate-size`: below server_audit's minimum MariaDB would quietly rotate at the minimum instead
 * (a warning in its error log), and the lab would report a size it does not run with.
 */
export function rotateSizeOption(raw: string | undefined, fallback: number): number {
  const bytes = positiveWholeNumber('--rotate-size', raw, fallback);
  if (bytes < MIN_AUDIT_FILE_ROTATE_SIZE) {
    throw new UsageError(`--rotate-size must be at least ${MIN_AUDIT_FILE_ROTATE_SIZE} bytes (server_audit's minimum), got ${bytes}`);
  }
  return bytes;
}
export const AUDIT_FILE_BASENAME = 'server_audit.log';

export interface AuditSettings {
  /** Comma list as the DatabaseStack's cluster parameter group sets it. */
  events: string;
  rotateSizeBytes: number;
  /** How many rotated files server_audit keeps before deleting the oldest. */
  rotations: number;
}

export interface MariaDbOptions {
  /** Lab instance role, used in folder names ("writer", "reader"). */
  role: string;
  workDir: string;
  tools: DatabaseTools;
  registry: ProcessRegistry;
  audit: AuditSettings;
  /** The account the workload and lab scripts use (created with a fresh password). */
  user: string;
  database: string;
}

export class MariaDbInstance {
  readonly dir: string;
  readonly dataDir: string;
  readonly auditDir: string;
  readonly socket: string;
  /**
   * Private tmpdir: at start-up (bootstrap included) MariaDB deletes every `#sql*` file in its tmpdir,
   * so servers sharing /tmp remove each other's temporary tables (mariadb-install-db then fails).
   */
  readonly tmpDir: string;
  readonly host = LOOPBACK;
  readonly password = randomBytes(12).toString('hex');
  port = 0;
  private process: TrackedProcess | undefined;

  constructor(readonly options: MariaDbOptions) {
    this.dir = join(options.workDir, options.role);
    this.dataDir = join(this.dir, 'data');
    this.auditDir = join(this.dir, 'audit');
    this.socket = join(this.dir, 'mysqld.sock');
    this.tmpDir = join(this.dir, 'tmp');
  }

  get role(): string {
    return this.options.role;
  }

  get user(): string {
    return this.options.user;
  }

  get database(): string {
    return this.options.database;
  }

  async start(): Promise<void> {
    const { tools, registry, audit } = this.options;
    mkdirSync(this.auditDir, { recursive: true });
    mkdirSync(this.tmpDir, { recursive: true });
    const asRoot = runsAsRoot() ? ['--user=root'] : [];
    await execFileAsync(tools.installDb, [
      '--no-defaults',
      `--datadir=${this.dataDir}`,
      `--tmpdir=${this.tmpDir}`,
      ...asRoot,
      // Root gets a password-less account reachable only on the private socket (instead of unix_socket
      // auth, which would tie it to the OS user running the lab).
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
    ]);
    this.port = await freePort();
    this.process = registry.start(
      `mariadbd-${this.role}`,
      tools.mariadbd,
      [
        '--no-defaults',
        ...asRoot,
        `--datadir=${this.dataDir}`,
        `--tmpdir=${this.tmpDir}`,
        `--socket=${this.socket}`,
        `--port=${this.port}`,
        `--bind-address=${LOOPBACK}`,
        `--pid-file=${join(this.dir, 'mysqld.pid')}`,
        `--log-error=${join(this.dir, 'error.log')}`,
        '--skip-name-resolve',
        '--skip-log-bin',
        // A lab database: small memory, no fsync per commit, so two servers fit next to the runner.
        '--innodb-buffer-pool-size=64M',
        '--innodb-log-file-size=48M',
        '--innodb-flush-log-at-trx-commit=2',
        '--plugin-load-add=server_audit',
        '--server-audit-logging=ON',
        `--server-audit-events=${audit.events}`,
        `--server-audit-file-path=${join(this.auditDir, AUDIT_FILE_BASENAME)}`,
        `--server-audit-file-rotate-size=${audit.rotateSizeBytes}`,
        `--server-audit-file-rotations=${audit.rotations}`,
      ],
      { logFile: join(this.dir, 'mariadbd.out') },
    );
    const started = this.process;
    await waitUntil(
      `MariaDB ${this.role} on port ${this.port}`,
      async () => {
        try {
          await this.rootSql('SELECT 1');
          return true;
        } catch {
          return false;
        }
      },
      {
        timeoutMs: 60_000,
        abortIf: () =>
          started.child.exitCode !== null
            ? `mariadbd exited early (code ${started.child.exitCode}); see ${join(this.dir, 'error.log')}`
            : undefined,
      },
    );
    await this.rootSql(
      [
        `CREATE DATABASE IF NOT EXISTS \`${this.database}\``,
        `CREATE USER '${this.user}'@'%' IDENTIFIED BY '${this.password}'`,
        `GRANT ALL PRIVILEGES ON *.* TO '${this.user}'@'%' WITH GRANT OPTION`,
      ].join(';'),
    );
  }

  /** Runs SQL as the server's root over the private socket; returns the tab-separated rows. */
  async rootSql(sql: string): Promise<string> {
    const { stdout } = await execFileAsync(this.options.tools.client, [
      '--no-defaults',
      `--socket=${this.socket}`,
      '--user=root',
      '--default-character-set=utf8mb4',
      '--batch',
      '--skip-column-names',
      '--connect-timeout=2',
      '-e',
      sql,
    ]);
    return stdout;
  }

  /** Runs SQL as the lab user over TCP, the way a client of the database would (and is audited). */
  async userSql(sql: string): Promise<string> {
    const { stdout } = await execFileAsync(
      this.options.tools.client,
      [
        '--no-defaults',
        `--host=${this.host}`,
        `--port=${this.port}`,
        `--user=${this.user}`,
        '--default-character-set=utf8mb4',
        '--batch',
        '--skip-column-names',
        this.database,
        '-e',
        sql,
      ],
      { env: { ...process.env, MYSQL_PWD: this.password } },
    );
    return stdout;
  }

  /** Changes a global setting at runtime (a fault scenario lowers the rotation count, for example). */
  async setGlobal(name: string, value: string | number): Promise<void> {
    const literal = typeof value === 'number' ? String(value) : `'${value.replace(/'/g, "''")}'`;
    await this.rootSql(`SET GLOBAL ${name} = ${literal}`);
  }

  async stop(): Promise<void> {
    if (this.process) await this.options.registry.stop(this.process, 30_000);
  }
}
