/**
 * Command line of the audit-log analyser. On the lab host it runs bundled as
 * `node /home/ec2-user/scripts/audit-analysis.js`, from the repository as
 * `node --import tsx scripts/audit-analysis/cli.ts`.
 *
 *   plan    writes the SQL of a test run and prints its marker, users and passwords (KEY=value)
 *   verify  reads audit logs (bucket or local folder), checks a run's expectations, writes reports
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LOG_OBJECT_PREFIX } from '../../lambda/shared/contract';
import { parseOptions, UsageError } from '../cli/args';
import { CATEGORIES, DEFAULT_CATEGORIES, InvalidInputError, newMarker, newPassword, parseCategories, parseMarker, runNames, sqlBlocks } from './plan';
import { renderJson, renderText } from './report';
import { directorySource, s3Source, type LogSource } from './sources';
import { verify } from './verify';

const USAGE = `Usage:
  audit-analysis plan --sql-dir DIR [--marker M] [--database sbtest] [--user-host %] [--categories LIST]
      Writes DIR/<block>.sql (mode 600) for every block of a test run and prints KEY=value lines:
      marker, auth_user, auth_password, oltp_user, oltp_password, priv_user, table, blocks.
      A new marker (auditlab_<utc yyyymmddhhmmss>_<8 hex>) is generated unless --marker is given.

  audit-analysis verify --marker M [--source-dir DIR ... | --bucket B [--prefix ${LOG_OBJECT_PREFIX}]]
                        [--since TIME] [--timeout SECONDS] [--interval SECONDS]
                        [--categories LIST] [--no-table-events] [--report-dir DIR]
      Reads audit logs from local folders (raw audit files) or from the backup bucket (objects
      modified since TIME; default: the marker's start time minus 5 minutes), polls until every
      expectation of the run is found or the timeout passes, prints the report and writes
      <report-dir>/<marker>.txt and .json. Exit status 0 when everything was found, 1 when not.
      Defaults: --bucket from LAB_BUCKET; --timeout AUDITLAB_VERIFY_TIMEOUT or 1200 (bucket) / 60
      (folder); --interval AUDITLAB_VERIFY_INTERVAL or 60 (bucket) / 5 (folder); --report-dir
      ./audit-reports; --categories ${DEFAULT_CATEGORIES.join(',')} (also: ${CATEGORIES.filter((c) => !DEFAULT_CATEGORIES.includes(c)).join(',')}).
`;

const SINCE_SLACK_MS = 5 * 60 * 1000;

function positiveSeconds(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback * 1000;
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a whole number of seconds, got '${value}'`);
  return Number(value) * 1000;
}

function parseSince(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError(`--since must be an ISO time or epoch milliseconds, got '${value}'`);
  return ms;
}

async function planCommand(args: string[]): Promise<number> {
  const { values } = parseOptions({
    args,
    options: {
      'sql-dir': { type: 'string' },
      marker: { type: 'string' },
      database: { type: 'string', default: 'sbtest' },
      'user-host': { type: 'string', default: '%' },
      categories: { type: 'string' },
    },
    strict: true,
  });
  const sqlDir = values['sql-dir'];
  if (!sqlDir) throw new UsageError('plan needs --sql-dir');
  const marker = values.marker ?? newMarker();
  parseMarker(marker);
  const categories = values.categories ? parseCategories(values.categories) : [...CATEGORIES];
  const input = {
    marker,
    database: values.database,
    userHost: values['user-host'],
    authPassword: newPassword(),
    oltpPassword: newPassword(),
    privPassword: newPassword(),
  };
  const blocks = sqlBlocks(input, categories);
  await mkdir(sqlDir, { recursive: true, mode: 0o700 });
  for (const block of blocks) {
    const path = join(sqlDir, `${block.name}.sql`);
    await writeFile(path, block.sql, { mode: 0o600 });
    await chmod(path, 0o600);
  }
  const names = runNames(marker);
  const output: Array<[string, string]> = [
    ['marker', marker],
    ['auth_user', names.authUser],
    ['auth_password', input.authPassword],
    ['oltp_user', names.oltpUser],
    ['oltp_password', input.oltpPassword],
    ['priv_user', names.privUser],
    ['table', names.table],
    ['blocks', blocks.map((b) => b.name).join(' ')],
  ];
  process.stdout.write(output.map(([k, v]) => `${k}=${v}\n`).join(''));
  return 0;
}

async function verifyCommand(args: string[]): Promise<number> {
  const { values } = parseOptions({
    args,
    options: {
      marker: { type: 'string' },
      'source-dir': { type: 'string', multiple: true },
      bucket: { type: 'string' },
      prefix: { type: 'string', default: LOG_OBJECT_PREFIX },
      since: { type: 'string' },
      timeout: { type: 'string' },
      interval: { type: 'string' },
      categories: { type: 'string' },
      'no-table-events': { type: 'boolean', default: false },
      'report-dir': { type: 'string', default: 'audit-reports' },
    },
    strict: true,
  });
  if (!values.marker) throw new UsageError('verify needs --marker');
  const { marker, startedAtMs } = parseMarker(values.marker);
  const sinceMs = values.since ? parseSince(values.since) : startedAtMs - SINCE_SLACK_MS;
  const dirs = values['source-dir'] ?? [];
  const bucket = values.bucket ?? process.env.LAB_BUCKET ?? '';
  if (dirs.length > 0 && values.bucket) throw new UsageError('give either --source-dir or --bucket, not both');
  if (dirs.length === 0 && bucket === '') {
    throw new UsageError('no audit logs to read: give --source-dir DIR, or --bucket / LAB_BUCKET (the backup bucket)');
  }
  const fromBucket = dirs.length === 0;
  const timeoutMs = positiveSeconds('--timeout', values.timeout ?? process.env.AUDITLAB_VERIFY_TIMEOUT, fromBucket ? 1200 : 60);
  const intervalMs = positiveSeconds('--interval', values.interval ?? process.env.AUDITLAB_VERIFY_INTERVAL, fromBucket ? 60 : 5);
  const categories = values.categories ? parseCategories(values.categories) : [...DEFAULT_CATEGORIES];

  const sources: LogSource[] = fromBucket ? [s3Source(bucket, values.prefix, sinceMs)] : dirs.map((dir) => directorySource(resolve(dir), sinceMs));
  const source: LogSource =
    sources.length === 1
      ? sources[0]
      : {
          appendOnly: false,
          describe: () => sources.map((s) => s.describe()).join('; '),
          list: async () => (await Promise.all(sources.map((s) => s.list()))).flat(),
        };

  process.stderr.write(`verifying run ${marker} from ${source.describe()}, timeout ${timeoutMs / 1000}s\n`);
  const result = await verify({
    source,
    marker,
    expectationOptions: { categories, tableEvents: !values['no-table-events'] },
    timeoutMs,
    intervalMs,
    onProgress: (p) => {
      const missing = p.missing.length > 0 ? `; missing: ${p.missing.slice(0, 8).join(', ')}${p.missing.length > 8 ? ', ...' : ''}` : '';
      process.stderr.write(
        `poll ${p.poll} at ${Math.round(p.elapsedMs / 1000)}s: read ${p.newParts} file(s)/object(s) (${p.newBytes} bytes); ${p.found}/${p.expected} found${missing}\n`,
      );
    },
  });

  const text = renderText(result);
  const reportDir = resolve(values['report-dir']);
  await mkdir(reportDir, { recursive: true });
  const textPath = join(reportDir, `${marker}.txt`);
  const jsonPath = join(reportDir, `${marker}.json`);
  await writeFile(textPath, text);
  await writeFile(jsonPath, renderJson(result));
  process.stdout.write(text);
  process.stdout.write(`\nReports: ${textPath} ${jsonPath}\n`);
  return result.passed ? 0 : 1;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'plan':
        return await planCommand(rest);
      case 'verify':
        return await verifyCommand(rest);
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      default:
        throw new UsageError(command ? `unknown command '${command}'` : 'missing command');
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof InvalidInputError) {
      process.stderr.write(`audit-analysis: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    throw error;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`audit-analysis: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 2;
    },
  );
}
