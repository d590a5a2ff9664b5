/**
 * The database workload: the lab host's own scripts (setup_sysbench.sh, test_audit_logs.sh) pointed at
 * the local MariaDB instances through the lab settings variables (lab-settings.md), plus a few DDL and
 * DCL statements so every audited event class shows up in the logs.
 */
import { join } from 'node:path';
import type { MariaDbInstance } from './mariadb';
import type { ProcessRegistry } from './processes';

const SCRIPTS_DIR = join(__dirname, '..');
export const SETUP_SYSBENCH = join(SCRIPTS_DIR, 'setup_sysbench.sh');
export const TEST_AUDIT_LOGS = join(SCRIPTS_DIR, 'test_audit_logs.sh');

export interface WorkloadSettings {
  durationSeconds: number;
  threads: number;
  tables: number;
  tableSize: number;
  logDir: string;
}

/**
 * Lab settings (lab-settings.md) for one instance. Each instance has its own port, and the settings
 * carry one LAB_DB_PORT, so a script talks to one instance per invocation: the instance is both
 * "writer" and "reader" host for that call.
 */
export function labSettingsEnv(instance: MariaDbInstance, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LAB_WRITER_HOST: instance.host,
    LAB_READER_HOST: instance.host,
    LAB_DB_PORT: String(instance.port),
    LAB_DB_NAME: instance.database,
    LAB_DB_USER: instance.user,
    LAB_DB_PASSWORD: instance.password,
    ...extra,
  };
}

async function runScript(
  registry: ProcessRegistry,
  name: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
): Promise<void> {
  const tracked = registry.start(name, script, args, { env, logFile });
  const code = await tracked.exited;
  if (code !== 0) throw new Error(`${name} (${script} ${args.join(' ')}) ended with ${code}; see ${logFile}`);
}

export async function prepareSysbench(registry: ProcessRegistry, instance: MariaDbInstance, settings: WorkloadSettings): Promise<void> {
  await runScript(
    registry,
    `sysbench-prepare-${instance.role}`,
    SETUP_SYSBENCH,
    ['prepare', '--tables', String(settings.tables), '--table-size', String(settings.tableSize), '--threads', '1'],
    labSettingsEnv(instance),
    join(settings.logDir, `sysbench-${instance.role}.log`),
  );
}

/** oltp_read_write on the writer or oltp_read_only on the reader, for the configured duration. */
export function runSysbench(
  registry: ProcessRegistry,
  instance: MariaDbInstance,
  target: 'writer' | 'reader',
  threads: number,
  settings: WorkloadSettings,
): Promise<void> {
  return runScript(
    registry,
    `sysbench-run-${instance.role}`,
    SETUP_SYSBENCH,
    [
      'run',
      '--target', target,
      '--time', String(settings.durationSeconds),
      '--threads', String(threads),
      '--tables', String(settings.tables),
      '--table-size', String(settings.tableSize),
      '--report-interval', '10',
    ],
    labSettingsEnv(instance),
    join(settings.logDir, `sysbench-${instance.role}.log`),
  );
}

/**
 * Schema and privilege changes (QUERY_DDL, QUERY_DCL) and a statement with multi-byte UTF-8, run as
 * the lab user so they are audited like an application's.
 */
export async function runDdlAndDcl(writer: MariaDbInstance, round: number): Promise<void> {
  const table = `lab_ddl_${round}`;
  const user = `lab_dcl_${round}`;
  await writer.userSql(
    [
      `CREATE TABLE ${table} (id INT PRIMARY KEY, note VARCHAR(64)) DEFAULT CHARSET=utf8mb4`,
      `ALTER TABLE ${table} ADD COLUMN created TIMESTAMP NULL`,
      `INSERT INTO ${table} (id, note) VALUES (1, 'caf\u00e9 \u2615 \u65e5\u672c\u8a9e \ud83d\udc2c')`,
      `CREATE USER '${user}'@'%' IDENTIFIED BY 'Lab-${round}-pw'`,
      `GRANT SELECT ON ${writer.database}.${table} TO '${user}'@'%'`,
      `REVOKE SELECT ON ${writer.database}.${table} FROM '${user}'@'%'`,
      `DROP USER '${user}'@'%'`,
      `DROP TABLE ${table}`,
    ].join(';\n'),
  );
}

export interface AuditTestSettings {
  bucket: string;
  region: string;
  s3Endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  reportDir: string;
  timeoutSeconds: number;
  logFile: string;
}

/**
 * test_audit_logs.sh against the local writer, reading the records back from the local bucket: the
 * lab host's verification, proven on real audit output. Runs while the pipeline keeps cycling.
 */
export function runAuditLogTest(registry: ProcessRegistry, writer: MariaDbInstance, settings: AuditTestSettings): Promise<void> {
  return runScript(
    registry,
    'test_audit_logs',
    TEST_AUDIT_LOGS,
    [
      '--timeout', String(settings.timeoutSeconds),
      '--interval', '5',
      '--report-dir', settings.reportDir,
      '--sysbench-time', '5',
      '--sysbench-threads', '1',
    ],
    labSettingsEnv(writer, {
      AWS_REGION: settings.region,
      LAB_BUCKET: settings.bucket,
      AWS_ENDPOINT_URL_S3: settings.s3Endpoint,
      AWS_ACCESS_KEY_ID: settings.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: settings.credentials.secretAccessKey,
    }),
    settings.logFile,
  );
}
