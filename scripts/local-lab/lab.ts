/**
 * `npm run lab`: the whole backup pipeline end to end on one machine, on real MariaDB audit logs.
 * Run with --help for the options; the README's "Local lab" section explains the pieces.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { httpUrl, parseOptions as parseArgs, positiveNumber, positiveWholeNumber, UsageError } from '../cli/args';
import { LAB_CREDENTIALS } from './aws-services';
import { deadLetterQueueUrls, LabSession, startLabSession } from './lab-session';
import { MAX_AUDIT_FILE_ROTATIONS, rotateSizeOption } from './mariadb';
import { sleep } from './net';
import { PreflightError } from './preflight';
import { beginRun, parseCommandLine, WORK_FOLDER_MARKER } from './processes';
import { formatBytes, formatDuration, progressLine, reconcilerText, reportLines } from './progress';
import type { DeliveryStats, ReconcilerRun, TickStats } from './runner/lambda-service';
import { FUNCTION_ROLES, type FunctionRole } from './stack-definition';
import { prepareSysbench, runAuditLogTest, runDdlAndDcl, runSysbench, TEST_AUDIT_LOGS, WorkloadSettings } from './workload';
import {
  catchUpState,
  ledgerCatchUpSources,
  newLedgerViolations,
  Problem,
  scanLedger,
  SourceFile,
  unexplainedReconcilerFindings,
  verifyBackup,
  VerificationReport,
} from './verify';

const REPO_ROOT = join(__dirname, '..', '..');
/** The lab's own folder in the repository (ignored by git). */
const DEFAULT_WORK_DIR = resolve(REPO_ROOT, '.lab');

const HELP = `Usage: npm run lab -- [options]

Runs the audit-log backup pipeline end to end on this machine: two MariaDB instances with
server_audit (writer, reader) under sysbench, moto_server (S3, DynamoDB + Streams, SQS), the
project's RDS log endpoint, and the real scanner/detector/downloader/reconciler handlers driven like
Lambda and EventBridge Scheduler would. Then verifies every audit byte is in the bucket exactly once,
byte-identical, runs the reconciler once more (it must report no finding), and writes
<workdir>/report.json. Exit status 0 only when the verification passes.

Options:
  --duration SECONDS         workload length (default 60)
  --cycle-interval SECONDS   time between scan-schedule ticks (default 5); the detector and the
                             downloader run whenever there is work, as Lambda's pollers deliver it
  --reconcile-every N        reconcile-schedule tick with every N-th scan tick (default: the stack's
                             reconcile rate over its scan rate); 0: only the final run after catch-up
  --catch-up-timeout SECONDS how long to wait for the pipeline to catch up (default 300)
  --workdir DIR              lab working folder, emptied at start: a new or empty folder, or one an
                             earlier run used (default .lab in the repository)
  --keep                     keep everything in the working folder afterwards (datadirs, audit files)
  --threads N                sysbench threads on the writer (default 2; the reader gets 1)
  --tables N / --table-size N  sysbench tables and rows per table (default 2 / 5000)
  --rotate-size BYTES        server_audit_file_rotate_size, 100 or more (default 1000000)
  --rotations N              server_audit_file_rotations (default ${MAX_AUDIT_FILE_ROTATIONS}, the most: nothing is
                             deleted unless a run rotates more often); with fewer, deleted files are
                             compared through links in <workdir>/retained, and a file deleted before it
                             was backed up fails the run
  --region REGION            AWS region the handlers see (default us-east-1)
  --rds-endpoint URL         use this RDS-API-compatible endpoint instead of the local one
                             (no local MariaDB then; also taken from AWS_ENDPOINT_URL_RDS)
  --aws-endpoint URL         use this endpoint for S3/DynamoDB/SQS instead of starting moto_server
                             (also taken from AWS_ENDPOINT_URL; AWS_ENDPOINT_URL_<SERVICE> still win)
  --timeout ROLE=MS          invocation budget of scanner|detector|downloader|reconciler (default: the stack's)
  --env ROLE:NAME=VALUE      extra/overridden environment variable of a function (repeatable)
  --no-audit-test            skip scripts/test_audit_logs.sh after the workload
  -h, --help                 this text
`;

interface LabOptions {
  durationSeconds: number;
  cycleIntervalMs: number;
  /** Undefined: the service's default (derived from the template's rates). */
  reconcileEveryCycles?: number;
  catchUpTimeoutMs: number;
  workDir: string;
  keep: boolean;
  threads: number;
  tables: number;
  tableSize: number;
  rotateSize: number;
  rotations: number;
  region: string;
  rdsEndpointUrl?: string;
  awsEndpointUrl?: string;
  timeouts: Partial<Record<FunctionRole, number>>;
  envOverrides: Partial<Record<FunctionRole, Record<string, string>>>;
  auditTest: boolean;
}

function role(raw: string, option: string): FunctionRole {
  if (!(FUNCTION_ROLES as readonly string[]).includes(raw)) throw new UsageError(`${option}: unknown function "${raw}" (${FUNCTION_ROLES.join(', ')})`);
  return raw as FunctionRole;
}

export function parseLabOptions(argv: string[]): LabOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      'cycle-interval': { type: 'string' },
      'reconcile-every': { type: 'string' },
      'catch-up-timeout': { type: 'string' },
      workdir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      threads: { type: 'string' },
      tables: { type: 'string' },
      'table-size': { type: 'string' },
      'rotate-size': { type: 'string' },
      rotations: { type: 'string' },
      region: { type: 'string' },
      'rds-endpoint': { type: 'string' },
      'aws-endpoint': { type: 'string' },
      timeout: { type: 'string', multiple: true },
      env: { type: 'string', multiple: true },
      'no-audit-test': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const timeouts: LabOptions['timeouts'] = {};
  for (const entry of values.timeout ?? []) {
    const match = /^(\w+)=(.*)$/.exec(entry);
    if (!match?.[1] || match[2] === undefined) throw new UsageError(`--timeout takes ROLE=MS, got "${entry}"`);
    const timed = role(match[1], '--timeout');
    timeouts[timed] = positiveWholeNumber(`--timeout ${timed}`, match[2], 0);
  }
  const envOverrides: LabOptions['envOverrides'] = {};
  for (const entry of values.env ?? []) {
    const match = /^(\w+):([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(entry);
    if (!match?.[1] || !match[2] || match[3] === undefined) throw new UsageError(`--env takes ROLE:NAME=VALUE, got "${entry}"`);
    (envOverrides[role(match[1], '--env')] ??= {})[match[2]] = match[3];
  }
  const rotations = positiveWholeNumber('--rotations', values.rotations, MAX_AUDIT_FILE_ROTATIONS);
  if (rotations > MAX_AUDIT_FILE_ROTATIONS) {
    throw new UsageError(`--rotations must be an integer from 1 to ${MAX_AUDIT_FILE_ROTATIONS}`);
  }
  const reconcileEvery = values['reconcile-every'];
  if (reconcileEvery !== undefined && !/^\d+$/.test(reconcileEvery)) {
    throw new UsageError(`--reconcile-every must be a whole number of cycles (0: never during the run), got "${reconcileEvery}"`);
  }
  // Checked here: a bad URL would otherwise surface as every handler failing, cycle after cycle.
  const endpoint = (option: string, value: string | undefined, envName: string): string | undefined =>
    value !== undefined ? httpUrl(option, value) : httpUrl(envName, process.env[envName] || undefined);
  const rdsEndpointUrl = endpoint('--rds-endpoint', values['rds-endpoint'], 'AWS_ENDPOINT_URL_RDS');
  const awsEndpointUrl = endpoint('--aws-endpoint', values['aws-endpoint'], 'AWS_ENDPOINT_URL');
  return {
    durationSeconds: positiveNumber('--duration', values.duration, 60),
    cycleIntervalMs: positiveNumber('--cycle-interval', values['cycle-interval'], 5) * 1000,
    ...(reconcileEvery !== undefined ? { reconcileEveryCycles: Number(reconcileEvery) } : {}),
    catchUpTimeoutMs: positiveNumber('--catch-up-timeout', values['catch-up-timeout'], 300) * 1000,
    workDir: resolve(values.workdir ?? DEFAULT_WORK_DIR),
    keep: values.keep ?? false,
    threads: positiveWholeNumber('--threads', values.threads, 2),
    tables: positiveWholeNumber('--tables', values.tables, 2),
    tableSize: positiveWholeNumber('--table-size', values['table-size'], 5000),
    rotateSize: rotateSizeOption(values['rotate-size'], 1_000_000),
    rotations,
    region: values.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(rdsEndpointUrl ? { rdsEndpointUrl } : {}),
    ...(awsEndpointUrl ? { awsEndpointUrl } : {}),
    timeouts,
    envOverrides,
    auditTest: !values['no-audit-test'],
  };
}

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Files to verify: the local audit files, or (another endpoint) reference copies read through the RDS API. */
async function sourceFiles(session: LabSession): Promise<Array<SourceFile & { size: number }>> {
  if (session.endpoint) return session.localSourceFiles();
  const { downloadReferenceCopies } = await import('./rds-api-source');
  return downloadReferenceCopies(session, join(session.options.workDir, 'reference'));
}

/** One reconciler run as the report keeps it. */
interface ReconcileRecord extends ReconcilerRun {
  cycle: number;
  phase: string;
}

interface CycleLoopState {
  cycle: number;
  startedAt: number;
  functionErrors: string[];
  reconcileRuns: ReconcileRecord[];
  /** Ledger invariants found broken on some tick (each once). */
  ledgerViolations: string[];
}

/** Keeps a reconciler run and its error (if it failed after Lambda's retries), like any function's. */
function recordReconcile(loop: CycleLoopState, phase: string, run: ReconcilerRun): void {
  loop.reconcileRuns.push({ cycle: loop.cycle, phase, ...run });
  if (!run.ok) loop.functionErrors.push(`reconciler: ${run.error ?? 'failed'}`);
}

/**
 * Ticks the schedules every interval until `stop()` says so, while Lambda's pollers deliver on their own
 * (the detector and the downloader run whenever there is work, also during a tick); returns whether the
 * stop condition held. Each line reports the tick and what the pollers delivered since the last line.
 */
async function runCycles(
  session: LabSession,
  loop: CycleLoopState,
  options: { phase: string; intervalMs: number; deadline?: number; stop: (caughtUp: boolean) => boolean },
): Promise<boolean> {
  for (;;) {
    const begin = Date.now();
    loop.cycle += 1;
    const ticked = await session.service.tick();
    const tickMs = Date.now() - begin;
    await sleep(Math.max(0, options.intervalMs - tickMs));
    const stats = { ...ticked, ...session.service.takeDelivered() };
    recordCycleErrors(loop, options.phase, stats);
    // The ledger before the files: they only grow, so bytes stored meanwhile cannot look beyond the source.
    const ledger = await scanLedger(session.clients.ledger, session.resources.ledgerTable);
    const files = session.endpoint ? await session.localSourceFiles() : [];
    const state = catchUpState(session.endpoint ? files : ledgerCatchUpSources(ledger), ledger);
    for (const violation of newLedgerViolations(loop.ledgerViolations, ledger, files)) log(`    LEDGER INVARIANT VIOLATED: ${violation}`);
    log(progressLine({ cycle: loop.cycle, elapsedMs: Date.now() - loop.startedAt, phase: options.phase, stats, state, cycleMs: tickMs }));
    for (const error of [...stats.sqs.functionErrors, ...stats.stream.functionErrors].slice(0, 3)) log(`    function error: ${error}`);
    if (options.stop(state.caughtUp)) return true;
    if (options.deadline !== undefined && Date.now() > options.deadline) {
      log(`[lab] not caught up by the deadline; behind: ${state.behind.slice(0, 10).join(', ')}`);
      return false;
    }
  }
}

/** Keeps a cycle's function errors (and its reconciler run) for the report. */
function recordCycleErrors(loop: CycleLoopState, phase: string, stats: Partial<TickStats> & DeliveryStats): void {
  loop.functionErrors.push(...stats.sqs.functionErrors, ...stats.stream.functionErrors);
  if (stats.scanner && !stats.scanner.ok) loop.functionErrors.push(`scanner: ${stats.scanner.error ?? 'failed'}`);
  if (stats.reconciler) recordReconcile(loop, phase, stats.reconciler);
}

/**
 * In a healthy lab every reconciler run succeeds and reports no finding: with the stack's staleness
 * nothing is stale within a lab run, so any finding is a real defect or a verifier false positive. The
 * one exception is a file the verification expects FAILED (a line longer than a page).
 */
function reconcileChecks(runs: readonly ReconcileRecord[], logFile: string, filesExpectedFailed: number): Problem[] {
  const problems: Problem[] = [];
  for (const run of runs) {
    const when = run.phase === 'final' ? 'the final run' : `cycle ${run.cycle} (${run.phase})`;
    if (!run.ok || !run.summary) problems.push({ code: 'RECONCILER_FAILED', detail: `${when}: ${run.error ?? 'failed'}` });
    else if (unexplainedReconcilerFindings(run.summary, filesExpectedFailed) > 0) {
      problems.push({ code: 'RECONCILER_FINDINGS', detail: `${when}: ${reconcilerText(run)}; see ${logFile}` });
    }
  }
  return problems;
}

/** Work the pipeline gave up on lands in a dead-letter queue: in a clean run they all stay empty. */
async function deadLetterChecks(session: LabSession): Promise<Problem[]> {
  const queues = deadLetterQueueUrls(session.definition, session.resources);
  const labelled: Array<[string, string | undefined]> = [
    ['scan dead-letter queue', queues.scan],
    ['downloader on-failure queue', queues.downloaderOnFailure],
    ...queues.scheduled.map((url): [string, string] => ['scheduled-run dead-letter queue', url]),
  ];
  const problems: Problem[] = [];
  for (const [label, url] of labelled) {
    if (!url) continue;
    const { Attributes } = await session.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    const count = Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    if (count > 0) problems.push({ code: 'DEAD_LETTERS', detail: `${count} message(s) in the ${label}` });
  }
  return problems;
}

async function main(): Promise<number> {
  // The SDK versions are pinned and tested on this Node; its once-per-process upgrade notice would
  // only interrupt the progress output (the handlers' own logs keep it).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const options = parseCommandLine(parseLabOptions, HELP);
  if (typeof options === 'number') return options;

  const { workDir } = options;
  const registry = beginRun('lab', workDir, join(workDir, 'pids.json'), log, { isDefault: workDir === DEFAULT_WORK_DIR });
  if (typeof registry === 'number') return registry;

  const startedAt = Date.now();
  let session: LabSession | undefined;
  try {
    session = await startLabSession(
      {
        workDir,
        region: options.region,
        ...(options.rdsEndpointUrl ? { rdsEndpointUrl: options.rdsEndpointUrl } : {}),
        ...(options.awsEndpointUrl ? { awsEndpointUrl: options.awsEndpointUrl } : {}),
        audit: { rotateSizeBytes: options.rotateSize, rotations: options.rotations },
        lambda: {
          timeoutMs: options.timeouts,
          envOverrides: options.envOverrides,
          ...(options.reconcileEveryCycles !== undefined ? { reconcileEveryCycles: options.reconcileEveryCycles } : {}),
        },
        log,
      },
      registry,
    );
    log(`[lab] reconcile schedule: every ${session.service.reconcileEveryCycles || 'no'} cycle(s), and once after catch-up`);
    const loop: CycleLoopState = { cycle: 0, startedAt, functionErrors: [], reconcileRuns: [], ledgerViolations: [] };
    session.service.startPolling();
    const logDir = join(workDir, 'logs');
    const workload: WorkloadSettings = {
      durationSeconds: options.durationSeconds,
      threads: options.threads,
      tables: options.tables,
      tableSize: options.tableSize,
      logDir,
    };

    // ---- Workload while the pipeline cycles --------------------------------------------------------
    const { databases } = session;
    let workloadDone = false;
    let workloadError: unknown;
    if (databases) {
      log(`[lab] sysbench prepare on writer and reader (${options.tables} tables x ${options.tableSize} rows)`);
      await Promise.all([prepareSysbench(registry, databases.writer, workload), prepareSysbench(registry, databases.reader, workload)]);
      log(`[lab] workload: ${options.durationSeconds} s of oltp_read_write on the writer, oltp_read_only on the reader, DDL/DCL rounds`);
      const ddlRounds = [1, 2].map(async (round) => {
        await sleep((options.durationSeconds * 1000 * round) / 3);
        await runDdlAndDcl(databases.writer, round);
      });
      void Promise.all([
        runSysbench(registry, databases.writer, 'writer', options.threads, workload),
        runSysbench(registry, databases.reader, 'reader', 1, workload),
        ...ddlRounds,
      ]).then(
        () => (workloadDone = true),
        (error: unknown) => {
          workloadError = error;
          workloadDone = true;
        },
      );
    } else {
      log(`[lab] no local database: cycling for ${options.durationSeconds} s against ${session.rdsEndpointUrl}`);
      void sleep(options.durationSeconds * 1000).then(() => (workloadDone = true));
    }
    await runCycles(session, loop, { phase: 'workload', intervalMs: options.cycleIntervalMs, stop: () => workloadDone });
    if (workloadError) throw workloadError;

    // ---- Catch up, then the lab host's own end-to-end check -----------------------------------------
    const catchUp = (phase: string): Promise<boolean> =>
      runCycles(session!, loop, { phase, intervalMs: options.cycleIntervalMs, deadline: Date.now() + options.catchUpTimeoutMs, stop: (caughtUp) => caughtUp });
    let caughtUp = await catchUp('catch-up');
    const checks: Problem[] = [];
    let auditTest: { ran: boolean; ok?: boolean; reportDir?: string; detail?: string } = { ran: false };
    if (databases && options.auditTest && caughtUp) {
      if (!existsSync(TEST_AUDIT_LOGS)) {
        auditTest = { ran: false, detail: `${TEST_AUDIT_LOGS} does not exist` };
      } else {
        const reportDir = join(workDir, 'audit-report');
        mkdirSync(reportDir, { recursive: true });
        log('[lab] running scripts/test_audit_logs.sh against the local writer and bucket (the pipeline keeps cycling)');
        let testDone = false;
        let testError: unknown;
        void runAuditLogTest(registry, databases.writer, {
          bucket: session.resources.bucket,
          region: options.region,
          s3Endpoint: process.env.AWS_ENDPOINT_URL_S3 ?? session.aws.url,
          credentials: LAB_CREDENTIALS,
          reportDir,
          timeoutSeconds: Math.round(options.catchUpTimeoutMs / 1000),
          logFile: join(logDir, 'test_audit_logs.log'),
        }).then(
          () => (testDone = true),
          (error: unknown) => {
            testError = error;
            testDone = true;
          },
        );
        await runCycles(session, loop, { phase: 'audit-test', intervalMs: options.cycleIntervalMs, stop: () => testDone });
        auditTest = { ran: true, ok: testError === undefined, reportDir, ...(testError ? { detail: String((testError as Error).message) } : {}) };
        log(`[lab] test_audit_logs.sh ${auditTest.ok ? 'passed' : `FAILED: ${auditTest.detail}`} (reports in ${reportDir})`);
        if (!auditTest.ok) checks.push({ code: 'AUDIT_TEST_FAILED', detail: auditTest.detail ?? 'failed' });
        caughtUp = await catchUp('catch-up');
      }
    }

    // ---- Verification ------------------------------------------------------------------------------
    // On a quiet pipeline: whatever the pollers are delivering ends first, and counts.
    log('[lab] stopping the event-source pollers (deliveries in progress finish first)');
    recordCycleErrors(loop, 'catch-up', await session.service.stopPolling());
    log('[lab] verifying every audit file against the bucket and the ledger');
    const files = await sourceFiles(session);
    const verification: VerificationReport = await verifyBackup({
      s3: session.clients.s3,
      ledger: session.clients.ledger,
      bucket: session.resources.bucket,
      ledgerTable: session.resources.ledgerTable,
      files,
    });
    // The pipeline's own verifier on the quiet, caught-up pipeline: a healthy backup has no finding.
    log(`[lab] running the reconciler once more on the ${caughtUp ? 'caught-up' : 'stopped (not caught up)'} pipeline`);
    const finalReconcile = await session.service.reconcile();
    recordReconcile(loop, 'final', finalReconcile);
    log(`[lab] ${reconcilerText(finalReconcile)}`);
    const filesExpectedFailed = files.filter((file) => file.expectFailedAt !== undefined).length;
    checks.push(...reconcileChecks(loop.reconcileRuns, join(workDir, 'logs', 'reconciler.log'), filesExpectedFailed));
    checks.push(...(await deadLetterChecks(session)));
    if (!caughtUp) checks.push({ code: 'NOT_CAUGHT_UP', detail: `not caught up within ${formatDuration(options.catchUpTimeoutMs)}` });
    checks.push(...loop.ledgerViolations.map((detail): Problem => ({ code: 'LEDGER_INVARIANT', detail })));
    const ok = verification.ok && checks.length === 0;
    const stats = Object.fromEntries(Object.entries(session.service.functions).map(([name, fn]) => [name, fn.stats]));
    const report = {
      ok,
      durationMs: Date.now() - startedAt,
      options: { ...options, workDir },
      cycles: loop.cycle,
      verification,
      checks,
      auditTest,
      functions: stats,
      endpoint: session.endpoint?.stats(),
      functionErrors: loop.functionErrors,
      reconciler: { everyCycles: session.service.reconcileEveryCycles, runs: loop.reconcileRuns },
    };
    writeFileSync(join(workDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);

    log('');
    for (const line of reportLines(verification)) log(line);
    for (const check of checks) log(`${check.code}: ${check.detail}`);
    const endpointStats = session.endpoint?.stats();
    if (endpointStats) {
      log(
        `endpoint: ${endpointStats.downloadPages} pages, ${formatBytes(endpointStats.bytesServed)} served ` +
          `(${(endpointStats.bytesServed / Math.max(1, verification.totals.sourceBytes)).toFixed(3)} x source), calls ${JSON.stringify(endpointStats.calls)}`,
      );
    }
    log(
      `functions: ${Object.entries(stats)
        .map(([name, s]) => `${name} ${s.invocations} inv/${s.errors} err/${s.coldStarts} cold` + (s.peakTmpBytes > 0 ? ` (/tmp peak ${formatBytes(s.peakTmpBytes)})` : ''))
        .join(', ')}; ` +
        `${loop.functionErrors.length} function error(s) during the run`,
    );
    log(`[lab] ${ok ? 'PASS' : 'FAIL'} in ${formatDuration(Date.now() - startedAt)}: report written to ${join(workDir, 'report.json')}`);
    return ok ? 0 : 1;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`[lab] ${error.message}\n`);
      return 2;
    }
    if (error instanceof PreflightError) {
      process.stderr.write(`[lab] ${error.message}\n`);
      return 3;
    }
    process.stderr.write(`[lab] failed: ${String((error as Error)?.stack ?? error)}\n`);
    return 1;
  } finally {
    if (session) await session.stop({ keep: options.keep, preserve: ['report.json', 'logs', 'audit-report', 'pids.json', WORK_FOLDER_MARKER] });
    await registry.stopAll();
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
