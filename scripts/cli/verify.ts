/**
 * `npm run verify`: the completeness verifier (lambda/shared/verify.ts) from an operator's or
 * auditor's shell, against AWS with the normal credential chain or against the local lab through the
 * standard endpoint variables. Read-only: it never writes to the ledger or the bucket (the scheduled
 * reconciler is the one that re-drives).
 */
import { writeFile } from 'node:fs/promises';
import { BackupObjects } from '../../lambda/shared/backup-objects';
import { CONFIG_DEFAULTS } from '../../lambda/shared/config';
import { ENV } from '../../lambda/shared/contract';
import { Ledger } from '../../lambda/shared/ledger';
import { RdsLogReader } from '../../lambda/shared/rds-log-reader';
import { discoverAuditEnabledInstances } from '../../lambda/shared/scan';
import { type VerifyDependencies, FINDING_CODES, verifyBackups } from '../../lambda/shared/verify';
import {
  type CliClients,
  type CliIo,
  EXIT,
  STACK_OUTPUTS_HINT,
  UsageError,
  createCliClients,
  runAsMain,
  runCommand,
  optionOrEnv,
  parseOptions,
  positiveNumber,
  processIo,
} from './common';
import { renderVerifyReport } from './verify-report';

const DEFAULT_STALE_MINUTES = CONFIG_DEFAULTS.staleClaimMs / 60_000;

export const VERIFY_USAGE = `Usage: npm run verify -- --bucket BUCKET --table TABLE [options]

Proves from the ledger, the bucket and RDS's current listing that every backed-up audit log byte is
in S3, contiguous from byte 0, with the SHA-256 S3 reports equal to the ledger's, and that no file RDS
lists is unknown, LOST, FAILED or stuck. Read-only. Prints a report; exit status 0 when clean,
1 when there are findings, 2 on a usage or infrastructure error (credentials, permissions, endpoint).

Options:
  --bucket NAME          backup bucket (default: $${ENV.bucket})
  --table NAME           ledger table (default: $${ENV.ledgerTable})
  --region REGION        AWS region (default: the SDK's: AWS_REGION, the profile's region)
  --instance ID          only this DB instance (repeatable); RDS is asked for exactly these
  --deep                 also read every object back and recompute its SHA-256
  --json FILE            also write the full report as JSON to FILE ('-' for stdout instead of the text)
  --stale-minutes N      PENDING/IN_PROGRESS/open intents older than this are stale, and RDS bytes
                         unstored this long are findings (default ${DEFAULT_STALE_MINUTES})
  --window-hours N       inspect the objects of DONE files only if they changed within N hours
                         (default: every file)
  --skip-rds             do not call RDS (no comparison of RDS's files with the ledger)
  --concurrency N        files inspected in parallel (default 8)
  -h, --help             this text

${STACK_OUTPUTS_HINT}

Local lab: point the SDK at its endpoints, e.g.
  AWS_ENDPOINT_URL=http://127.0.0.1:<moto port> AWS_ENDPOINT_URL_RDS=http://127.0.0.1:<rds port> \\
  AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=lablocal AWS_SECRET_ACCESS_KEY=lablocal \\
  npm run verify -- --bucket <lab bucket> --table <lab ledger>

Finding codes:
${Object.entries(FINDING_CODES)
  .map(([code, meaning]) => `  ${code.padEnd(22)} ${meaning}`)
  .join('\n')}
`;

/** Runs the command; returns the exit status. `clientsFor` lets tests supply their clients. */
export async function runVerify(
  argv: string[],
  io: CliIo = processIo,
  clientsFor: (region: string | undefined) => CliClients = createCliClients,
): Promise<number> {
  return runCommand('verify', 'verification', io, async () => {
    const { values } = parseOptions({
      args: argv,
      options: {
        bucket: { type: 'string' },
        table: { type: 'string' },
        region: { type: 'string' },
        instance: { type: 'string', multiple: true },
        deep: { type: 'boolean', default: false },
        json: { type: 'string' },
        'stale-minutes': { type: 'string' },
        'window-hours': { type: 'string' },
        'skip-rds': { type: 'boolean', default: false },
        concurrency: { type: 'string' },
        stack: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      io.stdout.write(VERIFY_USAGE);
      return EXIT.ok;
    }
    if (values.stack !== undefined) throw new UsageError(`--stack is not supported; pass --bucket and --table.\n${STACK_OUTPUTS_HINT}`);
    const bucket = optionOrEnv(io, values.bucket, '--bucket', ENV.bucket);
    const table = optionOrEnv(io, values.table, '--table', ENV.ledgerTable);
    const staleMs = positiveNumber('--stale-minutes', values['stale-minutes'], DEFAULT_STALE_MINUTES) * 60_000;
    const windowHours = values['window-hours'] === undefined ? undefined : positiveNumber('--window-hours', values['window-hours'], 1);
    const concurrency = Math.floor(positiveNumber('--concurrency', values.concurrency, 8));
    const instances = values.instance;

    const clients = clientsFor(values.region);
    const rds = clients.rds;
    // Discovery warns through Powertools in Lambda; here its warnings go to stderr.
    const warnings = {
      warn: (message: unknown, ...details: unknown[]) => io.stderr.write(`verify: ${String(message)} ${JSON.stringify(details)}\n`),
    };
    const deps: VerifyDependencies = {
      ledger: new Ledger(clients.ledger, table),
      objects: new BackupObjects(clients.s3, bucket),
      ...(values['skip-rds']
        ? {}
        : {
            rds: {
              reader: new RdsLogReader(rds),
              instances: async () =>
                instances ??
                (await discoverAuditEnabledInstances(rds, { includeInstances: new Set(), excludeInstances: new Set() }, warnings)).sources.map(
                  (source) => source.DBInstanceIdentifier,
                ),
            },
          }),
    };
    const { report } = await verifyBackups(deps, {
      now: Date.now(),
      staleMs,
      deep: values.deep,
      concurrency,
      ...(instances ? { instances } : {}),
      ...(windowHours !== undefined ? { windowMs: windowHours * 3_600_000 } : {}),
    });

    const json = `${JSON.stringify({ bucket, table, region: values.region ?? null, ...report }, null, 2)}\n`;
    if (values.json === '-') {
      io.stdout.write(json);
    } else {
      io.stdout.write(renderVerifyReport(report, { bucket, table, region: values.region }));
      if (values.json !== undefined) {
        await writeFile(values.json, json);
        io.stdout.write(`JSON report: ${values.json}\n`);
      }
    }
    return report.findings.length === 0 ? EXIT.ok : EXIT.findings;
  });
}

if (require.main === module) runAsMain(runVerify);
