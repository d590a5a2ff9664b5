/**
 * `npm run test:e2e`: the fault suite. Each scenario starts its own lab session (fixture logs or real
 * MariaDB) on one shared moto_server, makes something go wrong, lets the pipeline recover, and is
 * judged by the same oracle (harness.ts). Prints progress and a summary, writes a JSON report, and
 * ends with the line `E2E: N passed, M failed`; exit status 0 only when every scenario passed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseOptions, positiveNumber, UsageError } from '../../cli/args';
import { startMoto } from '../aws-services';
import { findExecutable, preflight, PreflightError } from '../preflight';
import { beginRun, installCleanupHandlers, parseCommandLine, ProcessRegistry } from '../processes';
import { formatDuration } from '../progress';
import { LAB_ACCOUNT_ID } from '../runner/events';
import { synthesizePipeline } from '../stack-definition';
import { Check, descendantProcesses, Scenario, ScenarioAbort, ScenarioRun, SuiteContext } from './harness';
import { SCENARIOS } from './scenarios/index';

const REPO_ROOT = join(__dirname, '..', '..', '..');
const DEFAULT_WORK_ROOT = resolve(REPO_ROOT, '.lab-e2e');

const HELP = `Usage: npm run test:e2e -- [options]

The fault suite: every scenario runs the real handlers against the local lab (moto_server, the RDS log
endpoint on fixture logs or real MariaDB) with one fault, then checks that every byte the source wrote
is stored exactly once, byte-identical, that vanished files are LOST, and that no process is left.

Options:
  --only ID[,ID...]   run only these scenarios (see --list)
  --list              list the scenarios and exit
  --workdir DIR       working folder, emptied at start: new, empty or an earlier run's (default .lab-e2e)
  --report FILE       JSON report (default <workdir>/e2e-report.json)
  --keep              keep each scenario's files (fixtures, datadirs) afterwards
  --timeout-factor F  multiply every scenario's hard time limit by F (default 1; e.g. 2 on a slow machine)
  --region REGION     AWS region the handlers see (default us-east-1)
  -h, --help          this text
`;

interface ScenarioResult {
  id: string;
  title: string;
  ok: boolean;
  durationMs: number;
  cycles: number;
  error?: string;
  checks: Check[];
  facts: Record<string, unknown>;
}

export interface E2eOptions {
  /** Scenario ids to run (all when absent), each checked against the suite. */
  only?: string[];
  list: boolean;
  workRoot: string;
  reportFile: string;
  keep: boolean;
  timeoutFactor: number;
  region: string;
}

/** The suite's command line; 'help' for --help. Bad input is a UsageError. */
export function parseE2eOptions(argv: string[]): E2eOptions | 'help' {
  const { values } = parseOptions({
    args: argv,
    options: {
      only: { type: 'string' },
      list: { type: 'boolean', default: false },
      workdir: { type: 'string' },
      report: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'timeout-factor': { type: 'string' },
      region: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const only = values.only?.split(',').map((id) => id.trim()).filter(Boolean);
  const unknown = (only ?? []).filter((id) => !SCENARIOS.some((scenario) => scenario.id === id));
  if (unknown.length > 0) throw new UsageError(`unknown scenario(s): ${unknown.join(', ')} (see --list)`);
  if (only !== undefined && only.length === 0) throw new UsageError('--only needs at least one scenario id (see --list)');
  const workRoot = resolve(values.workdir ?? DEFAULT_WORK_ROOT);
  return {
    ...(only ? { only } : {}),
    list: values.list ?? false,
    workRoot,
    reportFile: resolve(values.report ?? join(workRoot, 'e2e-report.json')),
    keep: values.keep ?? false,
    timeoutFactor: positiveNumber('--timeout-factor', values['timeout-factor'], 1),
    region: values.region ?? 'us-east-1',
  };
}

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Runs one scenario under its hard time limit; never throws. */
async function runScenario(suite: SuiteContext, scenario: Scenario, workRoot: string, keep: boolean): Promise<ScenarioResult> {
  const workDir = join(workRoot, scenario.id);
  mkdirSync(workDir, { recursive: true });
  const registry = new ProcessRegistry(join(workRoot, `${scenario.id}.pids.json`));
  const removeHandlers = installCleanupHandlers(registry, (error) => process.stderr.write(`[e2e] fatal: ${String((error as Error)?.stack ?? error)}\n`));
  const controller = new AbortController();
  const run = new ScenarioRun(suite, scenario.id, workDir, registry, controller.signal);
  const started = Date.now();
  let error: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const work = scenario.run(run);
  try {
    const timedOut = new Promise<'timeout'>((resolveTimeout) => {
      timer = setTimeout(() => resolveTimeout('timeout'), scenario.timeoutMs);
    });
    const outcome = await Promise.race([work.then(() => 'done' as const), timedOut]);
    if (outcome === 'timeout') {
      controller.abort();
      error = `did not finish within its limit of ${formatDuration(scenario.timeoutMs)}`;
    }
  } catch (caught) {
    error = caught instanceof ScenarioAbort ? caught.message : String((caught as Error)?.stack ?? caught);
  } finally {
    clearTimeout(timer);
    await run.stop({ keep, judge: true }).catch((caught: unknown) => {
      error ??= `stopping the scenario failed: ${String(caught)}`;
    });
    // A timed-out scenario's own code ends once its session is gone; do not let it overlap the next.
    await Promise.race([work.catch(() => undefined), new Promise((settle) => setTimeout(settle, 15_000))]);
    removeHandlers();
  }
  if (error) run.check('scenario ran to the end', false, error.split('\n').slice(0, 3).join(' '));
  const ok = error === undefined && run.checks.length > 0 && run.checks.every((check) => check.ok);
  return {
    id: scenario.id,
    title: scenario.title,
    ok,
    durationMs: Date.now() - started,
    cycles: run.cycles,
    ...(error ? { error } : {}),
    checks: run.checks,
    facts: run.facts,
  };
}

function summaryLines(results: readonly ScenarioResult[]): string[] {
  const idWidth = Math.max(8, ...results.map((result) => result.id.length));
  const titleWidth = Math.max(10, ...results.map((result) => result.title.length));
  const lines = [`${'scenario'.padEnd(idWidth)}  ${'what'.padEnd(titleWidth)}  result  ${'time'.padStart(8)}  cycles  checks`];
  for (const result of results) {
    const failed = result.checks.filter((check) => !check.ok).length;
    lines.push(
      `${result.id.padEnd(idWidth)}  ${result.title.padEnd(titleWidth)}  ${(result.ok ? 'PASS' : 'FAIL').padEnd(6)}  ` +
        `${formatDuration(result.durationMs).padStart(8)}  ${String(result.cycles).padStart(6)}  ${result.checks.length - failed}/${result.checks.length}`,
    );
    for (const check of result.checks.filter((candidate) => !candidate.ok)) {
      lines.push(`    FAIL ${check.name}${check.detail ? `: ${check.detail.slice(0, 400)}` : ''}`);
    }
  }
  return lines;
}

async function main(): Promise<number> {
  // Pinned SDK versions on this Node: the SDK's upgrade notice would only interrupt the output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const options = parseCommandLine(parseE2eOptions, HELP);
  if (typeof options === 'number') return options;
  if (options.list) {
    for (const scenario of SCENARIOS) log(`${scenario.id.padEnd(22)} ${scenario.mariadb ? '[MariaDB] ' : ''}${scenario.title}`);
    return 0;
  }
  const { workRoot, reportFile, region, keep } = options;
  const scenarios = (options.only ? SCENARIOS.filter((scenario) => options.only?.includes(scenario.id)) : SCENARIOS).map((scenario) => ({
    ...scenario,
    timeoutMs: Math.round(scenario.timeoutMs * options.timeoutFactor),
  }));
  const baseline = new Set(descendantProcesses(process.pid).map((entry) => entry.pid));
  const registry = beginRun('e2e', workRoot, join(workRoot, 'suite.pids.json'), log, {
    folder: 'logs',
    isDefault: workRoot === DEFAULT_WORK_ROOT,
    otherPidFiles: SCENARIOS.map((scenario) => join(workRoot, `${scenario.id}.pids.json`)),
  });
  if (typeof registry === 'number') return registry;
  // The folder ignores itself, so a run never shows up as changes in the repository.
  writeFileSync(join(workRoot, '.gitignore'), '*\n');

  const suiteStarted = Date.now();
  const results: ScenarioResult[] = [];
  let suiteError: string | undefined;
  try {
    preflight({ database: scenarios.some((scenario) => scenario.mariadb), moto: true }, log);
    log(`[e2e] ${scenarios.length} scenario(s); synthesizing BackupPipelineStack once (every session reads its definitions)`);
    const definition = synthesizePipeline(region, LAB_ACCOUNT_ID);
    const moto = await startMoto(registry, findExecutable('moto_server') ?? 'moto_server', join(workRoot, 'logs'));
    log(`[e2e] moto_server at ${moto.url} (shared; every scenario creates its own bucket, tables and queues)`);
    const suite: SuiteContext = { region, definition, awsEndpointUrl: moto.url, log };

    for (const [index, scenario] of scenarios.entries()) {
      log(`\n[e2e] (${index + 1}/${scenarios.length}) ${scenario.id}: ${scenario.title}`);
      const result = await runScenario(suite, scenario, workRoot, keep);
      results.push(result);
      log(`[e2e] ${result.ok ? 'PASS' : 'FAIL'} ${scenario.id} in ${formatDuration(result.durationMs)} (${result.cycles} cycles)`);
    }
  } catch (error) {
    suiteError = error instanceof PreflightError ? error.message : String((error as Error)?.stack ?? error);
    process.stderr.write(`[e2e] suite failed: ${suiteError}\n`);
  } finally {
    await registry.stopAll();
  }
  const leftovers = descendantProcesses(process.pid).filter((entry) => !baseline.has(entry.pid));
  if (leftovers.length > 0) {
    suiteError ??= `processes left behind: ${leftovers.map((entry) => `${entry.pid} ${entry.command}`).join(', ')}`;
  }

  const passed = results.filter((result) => result.ok).length;
  // A scenario that never ran failed; a suite-level failure after all ran (a process left behind by
  // the suite itself) counts once, so the last line never says "0 failed" for a failing run.
  const notRun = scenarios.length - results.length;
  const failed = results.length - passed + notRun + (suiteError && notRun === 0 ? 1 : 0);
  const report = {
    ok: failed === 0,
    durationMs: Date.now() - suiteStarted,
    generatedAt: new Date().toISOString(),
    ...(suiteError ? { error: suiteError } : {}),
    scenarios: results,
  };
  mkdirSync(resolve(reportFile, '..'), { recursive: true });
  writeFileSync(reportFile, `${JSON.stringify(report, null, 2)}\n`);

  log('');
  for (const line of summaryLines(results)) log(line);
  if (suiteError) log(`suite: ${suiteError}`);
  log(`total ${formatDuration(report.durationMs)}; report written to ${reportFile}`);
  log(`E2E: ${passed} passed, ${failed} failed`);
  return report.ok ? 0 : 1;
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
