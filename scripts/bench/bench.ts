/**
 * `npm run bench`: the pipeline's figures, all measured in one run on the local lab (real handlers in
 * their own processes, MariaDB + sysbench, moto_server, the project's RDS log endpoint), printed next
 * to their goals and written to bench-results/bench.json. Figures are information: a MISS is reported,
 * the exit status is non-zero only when the benchmark itself could not run or measured a backup that
 * is not correct (the verification oracle disagrees). Run with --help for the options.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parseOptions as parseArgs, positiveNumber, positiveWholeNumber, wholeNumberFromZero } from '../cli/args';
import { ENV, LEDGER_ATTR, LedgerStatus } from '../../lambda/shared/contract';
import { AwsClients, AwsEndpoint, createClients, createPipelineResources, startMoto } from '../local-lab/aws-services';
import { LAB_AUDIT_EVENTS, LabSession, startLabSession } from '../local-lab/lab-session';
import { MAX_AUDIT_FILE_ROTATIONS, rotateSizeOption } from '../local-lab/mariadb';
import { sleep } from '../local-lab/net';
import { preflight, PreflightError } from '../local-lab/preflight';
import { beginRun, parseCommandLine, WORK_FOLDER_MARKER } from '../local-lab/processes';
import { formatBytes, formatDuration, reportLines } from '../local-lab/progress';
import { EndpointStats, RdsLogEndpoint, startRdsLogEndpoint } from '../local-lab/rds-endpoint';
import { writeSyntheticAuditLog } from '../local-lab/rds-endpoint/serve-rate';
import { LAB_ACCOUNT_ID } from '../local-lab/runner/events';
import type { FunctionStats } from '../local-lab/runner/lambda-function';
import type { MemorySnapshot } from '../local-lab/runner/memory-sampler';
import { CycleStats, LocalLambdaService } from '../local-lab/runner/lambda-service';
import { FUNCTION_ROLES, FunctionRole } from '../local-lab/stack-definition';
import { catchUpState, fileId, scanLedger, verifyBackup, VerificationReport } from '../local-lab/verify';
import { prepareSysbench, runSysbench, WorkloadSettings } from '../local-lab/workload';
import { AwsCallCounter, CountedCall, DYNAMODB_WRITE_ACTIONS, startAwsCallCounter } from './aws-call-counter';
import { buildEmptyBundle, measureInit, synthesizeBundles } from './bundles';
import { ownCpuSecondsSince, processCpuSeconds } from './process-cpu';
import type { ClientServeRate } from './serve-rate-client';
import { SpoolBody } from '../../lambda/shared/spool-body';
import { Figure, figure, median, renderMarkdown, renderTable, round } from './figures';

const REPO_ROOT = join(__dirname, '..', '..');
const DEFAULT_WORK_DIR = resolve(REPO_ROOT, 'bench-results', 'work');
/** RDS pages are decimal megabytes (1,000,000 bytes of log data): the per-MB figures use that unit. */
const MB = 1_000_000;
const MIB = 1024 * 1024;

const HELP = `Usage: npm run bench -- [options]

Measures the backup pipeline on the local lab in one run and prints each figure next to its goal:
RDS bytes read per log byte and DownloadDBLogFilePortion calls per MB on a growing MariaDB workload,
an idle cycle's API calls and ledger writes, the downloader's memory and throughput on a large file,
and the handler bundles' sizes and module init times. Writes bench-results/bench.json.

Options:
  --growth-seconds S      sysbench run while the pipeline cycles (default 40)
  --cycle-interval S      schedule tick during the workload (default 2)
  --rotate-size BYTES     server_audit_file_rotate_size (default 16000000: files grow over several cycles)
  --catch-up-timeout S    how long the pipeline may take to catch up (default 180)
  --large-mib N           size of the large file, escaped as RDS sends it (default 1024)
  --cdata-mib N           size of the file measured with LogFileData in CDATA sections (default 100:
                          an Aurora-sized file, backed up as one object)
  --throughput-runs N     backups of each single file, each between two raw reads; the throughput
                          figures take the median ratio, memory the worst run (default 3)
  --endpoint-latency-ms N added by the RDS endpoint to every call while the single files are read and
                          backed up, as network and service time add to each call of a remote RDS
                          (default 0: the endpoint answers as fast as it can, the goal's condition)
  --init-runs N           fresh-process init measurements per bundle (default 9)
  --out FILE              JSON output (default bench-results/bench.json)
  --workdir DIR           working folder, emptied at start (new, empty or an earlier run's) and removed at
                          the end (default bench-results/work)
  --keep                  keep the working folder (datadirs, audit files, handler logs)
  -h, --help              this text
`;

interface BenchOptions {
  growthSeconds: number;
  cycleIntervalMs: number;
  rotateSize: number;
  catchUpTimeoutMs: number;
  largeBytes: number;
  cdataBytes: number;
  throughputRuns: number;
  /** Added to every RDS endpoint call in the single-file phases (0: none). */
  endpointLatencyMs: number;
  initRuns: number;
  out: string;
  workDir: string;
  keep: boolean;
  region: string;
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      'growth-seconds': { type: 'string' },
      'cycle-interval': { type: 'string' },
      'rotate-size': { type: 'string' },
      'catch-up-timeout': { type: 'string' },
      'large-mib': { type: 'string' },
      'cdata-mib': { type: 'string' },
      'throughput-runs': { type: 'string' },
      'endpoint-latency-ms': { type: 'string' },
      'init-runs': { type: 'string' },
      out: { type: 'string' },
      workdir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  return {
    growthSeconds: positiveNumber('--growth-seconds', values['growth-seconds'], 40),
    cycleIntervalMs: positiveNumber('--cycle-interval', values['cycle-interval'], 2) * 1000,
    rotateSize: rotateSizeOption(values['rotate-size'], 16_000_000),
    catchUpTimeoutMs: positiveNumber('--catch-up-timeout', values['catch-up-timeout'], 180) * 1000,
    largeBytes: Math.round(positiveNumber('--large-mib', values['large-mib'], 1024) * MIB),
    cdataBytes: Math.round(positiveNumber('--cdata-mib', values['cdata-mib'], 100) * MIB),
    throughputRuns: positiveWholeNumber('--throughput-runs', values['throughput-runs'], 3),
    endpointLatencyMs: wholeNumberFromZero('--endpoint-latency-ms', values['endpoint-latency-ms'], 0),
    initRuns: positiveWholeNumber('--init-runs', values['init-runs'], 9),
    out: resolve(values.out ?? join(REPO_ROOT, 'bench-results', 'bench.json')),
    workDir: resolve(values.workdir ?? DEFAULT_WORK_DIR),
    keep: values.keep ?? false,
    region: process.env.AWS_REGION ?? 'us-east-1',
  };
}

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const kib = (kb: number): number => round(kb / 1024, 1);

function emptyCycleTotals(): { cycles: number; delivered: number; downloaderInvocations: number; functionErrors: string[] } {
  return { cycles: 0, delivered: 0, downloaderInvocations: 0, functionErrors: [] };
}

function addCycle(totals: ReturnType<typeof emptyCycleTotals>, stats: CycleStats): void {
  totals.cycles += 1;
  totals.delivered += stats.stream.delivered;
  totals.downloaderInvocations += stats.stream.invocations;
  totals.functionErrors.push(...stats.sqs.functionErrors, ...stats.stream.functionErrors);
  if (!stats.scanner.ok) totals.functionErrors.push(`scanner: ${stats.scanner.error ?? 'failed'}`);
}

/** The app id each function's SDK clients carry in their User-Agent (AWS_SDK_UA_APP_ID). */
const appIdOf = (role: FunctionRole): string => `lab-${role}`;

/**
 * Calls the handlers made, by function (the lab's own polling and checks left out). Powertools appends
 * its own feature tag to a client's app id, so the caller is matched by the id it starts with.
 */
function functionCalls(counter: AwsCallCounter): CountedCall[] {
  const merged = new Map<string, CountedCall>();
  for (const call of counter.calls()) {
    if (call.caller === 'lab') continue;
    const caller = FUNCTION_ROLES.find((role) => call.caller.startsWith(appIdOf(role))) ?? call.caller;
    const key = [caller, call.service, call.action, call.table ?? ''].join('\u0000');
    const current = merged.get(key);
    if (current) current.count += call.count;
    else merged.set(key, { ...call, caller });
  }
  return [...merged.values()];
}

/** The lab's clients straight to moto, for phases that measure speed rather than count calls. */
interface DirectAws {
  aws: AwsEndpoint;
  clients: AwsClients & { ledger: DynamoDBDocumentClient };
  /** moto_server's process, whose CPU time the throughput figure accounts for. */
  motoPid: number | undefined;
}

function directAws(url: string, region: string, motoPid: number | undefined): DirectAws {
  const aws: AwsEndpoint = { url, region, accountId: LAB_ACCOUNT_ID };
  const clients = createClients(aws);
  return {
    aws,
    clients: { ...clients, ledger: DynamoDBDocumentClient.from(clients.dynamodb, { marshallOptions: { removeUndefinedValues: true } }) },
    motoPid,
  };
}

// ---- Figures 1 and 2: a growing MariaDB workload -----------------------------------------------------

interface GrowthResult {
  /** Cycles while sysbench ran (one warm-up cycle before it is counted in neither). */
  workloadCycles: number;
  catchUpCycles: number;
  caughtUp: boolean;
  /** Records the downloader received = backup passes it ran (one pass per admitted record). */
  passes: number;
  downloaderInvocations: number;
  files: number;
  sourceBytes: number;
  /** Per file: how many cycle ends saw it larger than the one before (its first sighting included). */
  growthCycles: { median: number; max: number; filesGrowingInThreeOrMore: number };
  endpoint: EndpointStats;
  awsCalls: CountedCall[];
  downloader: FunctionStats;
  verification: VerificationReport;
  functionErrors: string[];
}

async function growthPhase(session: LabSession, counter: AwsCallCounter, options: BenchOptions): Promise<GrowthResult> {
  const { databases, endpoint } = session;
  if (!databases || !endpoint) throw new Error('the growth phase needs the local MariaDB instances and RDS endpoint');
  const logDir = join(options.workDir, 'logs');
  const workload: WorkloadSettings = { durationSeconds: options.growthSeconds, threads: 2, tables: 2, tableSize: 5000, logDir };
  log('[bench] sysbench prepare on writer and reader');
  await Promise.all([prepareSysbench(session.registry, databases.writer, workload), prepareSysbench(session.registry, databases.reader, workload)]);
  // Figures count from here: what the pipeline read for the audit files, not the preparation's setup.
  endpoint.resetStats();
  counter.reset();
  const startFunctionStats = { ...session.service.functions.downloader.stats };

  const sizesSeen = new Map<string, { last: number; grew: number }>();
  const observe = async (): Promise<Array<{ instance: string; logFileName: string; size: number }>> => {
    const files = await session.localSourceFiles();
    for (const file of files) {
      const id = fileId(file.instance, file.logFileName);
      const seen = sizesSeen.get(id) ?? { last: 0, grew: 0 };
      if (file.size > seen.last) seen.grew += 1;
      seen.last = Math.max(seen.last, file.size);
      sizesSeen.set(id, seen);
    }
    return files;
  };

  const totals = emptyCycleTotals();
  const started = Date.now();
  type Phase = 'warm-up' | 'workload' | 'catch-up';
  const runCycle = async (phase: Phase): Promise<ReturnType<typeof catchUpState>> => {
    const begin = Date.now();
    const stats = await session.service.cycle();
    addCycle(totals, stats);
    const files = await observe();
    const state = catchUpState(files, await scanLedger(session.clients.ledger, session.resources.ledgerTable));
    log(
      `  [cycle ${String(totals.cycles).padStart(3)} +${((Date.now() - started) / 1000).toFixed(0)}s ${phase}] ` +
        `files ${state.files} (done ${state.done}), source ${formatBytes(state.sourceBytes)}, lag ${formatBytes(state.sourceBytes - state.backedUpBytes)}, ` +
        `downloader ${stats.stream.delivered} rec, ${formatDuration(Date.now() - begin)}`,
    );
    return state;
  };

  // One cycle before the workload: the functions' cold starts and the preparation's audit output are
  // behind us when sysbench starts, so the workload's bytes arrive while the pipeline cycles. The
  // cycle and its reads count in the figures like every other.
  await runCycle('warm-up');

  let workloadDone = false;
  let workloadError: unknown;
  log(`[bench] growing workload: ${options.growthSeconds} s of sysbench (writer read/write, reader read-only), a cycle every ${options.cycleIntervalMs / 1000} s`);
  void Promise.all([
    runSysbench(session.registry, databases.writer, 'writer', workload.threads, workload),
    runSysbench(session.registry, databases.reader, 'reader', 1, workload),
  ]).then(
    () => (workloadDone = true),
    (error: unknown) => {
      workloadError = error;
      workloadDone = true;
    },
  );

  let workloadCycles = 0;
  let caughtUp = false;
  let deadline = Number.POSITIVE_INFINITY;
  for (;;) {
    const begin = Date.now();
    const inWorkload = !workloadDone;
    const state = await runCycle(inWorkload ? 'workload' : 'catch-up');
    if (workloadError) throw workloadError;
    if (inWorkload) {
      workloadCycles += 1;
    } else {
      if (state.caughtUp) {
        caughtUp = true;
        break;
      }
      if (deadline === Number.POSITIVE_INFINITY) deadline = Date.now() + options.catchUpTimeoutMs;
      if (Date.now() > deadline) {
        log(`[bench] not caught up within ${formatDuration(options.catchUpTimeoutMs)}: ${state.behind.slice(0, 5).join(', ')}`);
        break;
      }
    }
    await sleep(Math.max(0, options.cycleIntervalMs - (Date.now() - begin)));
  }
  const endpointStats = endpoint.stats();
  const awsCalls = functionCalls(counter);
  const files = await session.localSourceFiles();
  log('[bench] verifying the growing workload\'s backup (every byte stored once, byte-identical, ledger agrees)');
  const verification = await verifyBackup({
    s3: session.clients.s3,
    ledger: session.clients.ledger,
    bucket: session.resources.bucket,
    ledgerTable: session.resources.ledgerTable,
    files,
  });
  const grew = [...sizesSeen.values()].map((seen) => seen.grew).sort((a, b) => a - b);
  const downloader = session.service.functions.downloader.stats;
  return {
    workloadCycles,
    catchUpCycles: totals.cycles - workloadCycles - 1,
    caughtUp,
    passes: totals.delivered,
    downloaderInvocations: downloader.invocations - startFunctionStats.invocations,
    files: files.length,
    sourceBytes: files.reduce((sum, file) => sum + file.size, 0),
    growthCycles: {
      median: grew.length > 0 ? median(grew) : 0,
      max: grew[grew.length - 1] ?? 0,
      filesGrowingInThreeOrMore: grew.filter((count) => count >= 3).length,
    },
    endpoint: endpointStats,
    awsCalls,
    downloader: { ...downloader },
    verification,
    functionErrors: totals.functionErrors,
  };
}

// ---- Figure 5: an idle cycle after catch-up ----------------------------------------------------------

interface IdleResult {
  filesChanged: number;
  rdsCalls: Record<string, number>;
  downloadCalls: number;
  awsCalls: CountedCall[];
  dynamoDbWrites: number;
  ledgerWriteCalls: number;
  s3Writes: number;
  streamRecords: number;
  ledgerItemsChanged: number;
  downloaderInvocations: number;
}

/** Stable JSON of a ledger item (attribute order does not matter, values do). */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

async function idlePhase(session: LabSession, counter: AwsCallCounter): Promise<IdleResult> {
  const endpoint = session.endpoint;
  if (!endpoint) throw new Error('the idle phase needs the local RDS endpoint');
  const filesBefore = new Map((await endpoint.files()).map((file) => [fileId(file.DBInstanceIdentifier, file.LogFileName), canonical([file.size, file.lastWritten])]));
  const ledgerBefore = new Map(
    (await scanLedger(session.clients.ledger, session.resources.ledgerTable)).map((item) => [
      fileId(String(item[LEDGER_ATTR.instance]), String(item[LEDGER_ATTR.file])),
      canonical(item),
    ]),
  );
  endpoint.resetStats();
  counter.reset();
  const invocationsBefore = session.service.functions.downloader.stats.invocations;
  log('[bench] idle cycle: scanner -> detector -> downloader with no file changes');
  const stats = await session.service.cycle();
  if (!stats.scanner.ok || stats.sqs.functionErrors.length > 0 || stats.stream.functionErrors.length > 0) {
    throw new Error(`the idle cycle had function errors: ${JSON.stringify({ scanner: stats.scanner, sqs: stats.sqs.functionErrors, stream: stats.stream.functionErrors })}`);
  }
  const endpointStats = endpoint.stats();
  const awsCalls = functionCalls(counter);
  const ledgerAfter = await scanLedger(session.clients.ledger, session.resources.ledgerTable);
  const filesAfter = await endpoint.files();
  let filesChanged = filesAfter.length === filesBefore.size ? 0 : Math.abs(filesAfter.length - filesBefore.size);
  for (const file of filesAfter) {
    if (filesBefore.get(fileId(file.DBInstanceIdentifier, file.LogFileName)) !== canonical([file.size, file.lastWritten])) filesChanged += 1;
  }
  let ledgerItemsChanged = Math.abs(ledgerAfter.length - ledgerBefore.size);
  for (const item of ledgerAfter) {
    const key = fileId(String(item[LEDGER_ATTR.instance]), String(item[LEDGER_ATTR.file]));
    if (ledgerBefore.get(key) !== canonical(item)) ledgerItemsChanged += 1;
  }
  const writes = awsCalls.filter((call) => call.service === 'dynamodb' && DYNAMODB_WRITE_ACTIONS.has(call.action));
  return {
    filesChanged,
    rdsCalls: endpointStats.calls,
    downloadCalls: endpointStats.calls.DownloadDBLogFilePortion ?? 0,
    awsCalls,
    dynamoDbWrites: writes.reduce((sum, call) => sum + call.count, 0),
    ledgerWriteCalls: writes.filter((call) => call.table === session.resources.ledgerTable).reduce((sum, call) => sum + call.count, 0),
    s3Writes: awsCalls.filter((call) => call.service === 's3' && !['GetObject', 'HeadObject', 'ListObjectsV2', 'ListObjects', 'HeadBucket'].includes(call.action)).reduce((sum, call) => sum + call.count, 0),
    streamRecords: stats.stream.recordsRead,
    ledgerItemsChanged,
    downloaderInvocations: session.service.functions.downloader.stats.invocations - invocationsBefore,
  };
}

// ---- Figures 3 and 4: one large file through the real downloader ------------------------------------

/** A reader's time per page: the endpoint's answering (arrival to answer sent) and everything else. */
interface PageTimeSplit {
  endpointMs: number;
  clientMs: number;
}

function splitPageTime(seconds: number, stats: EndpointStats): PageTimeSplit {
  const pages = Math.max(1, stats.downloadPages);
  const endpointMs = stats.downloadServiceMs / pages;
  return { endpointMs: round(endpointMs, 2), clientMs: round((seconds * 1000) / pages - endpointMs, 2) };
}

type RawRead = ClientServeRate & { perPage: PageTimeSplit };

interface SingleFileResult {
  encoding: 'escaped' | 'cdata';
  fileBytes: number;
  /** What the endpoint added to every call (--endpoint-latency-ms); 0 when it answered as fast as it could. */
  endpointLatencyMs: number;
  generateSeconds: number;
  /** The raw serve rate measured just before the backup, and just after it. */
  raw: RawRead;
  rawAfter: RawRead;
  /** Their mean: what the ratio divides by, so that a slower or faster spell of the machine weighs on both. */
  rawMbPerSecond: number;
  /** Every backup's ratio; `raw`, `rawAfter`, `pipeline` and `cpu` are the median run's. */
  runs: Array<{ ratio: number; pipelineMbPerSecond: number; rawMbPerSecond: number }>;
  pipeline: {
    cycles: number;
    /** Sum of the downloader invocations' durations (the downloader's work for the file). */
    downloaderWorkSeconds: number;
    /** CPU time of those invocations (user + system, GC threads included). */
    downloaderCpuSeconds: number;
    /** From the schedule tick to the item being DONE (scanner, detector and the stream included). */
    endToEndSeconds: number;
    mbPerSecond: number;
    passes: number;
    downloaderInvocations: number;
    portionCalls: number;
    bytesServed: number;
    /** Its time per page: the endpoint's answering, and the rest (the downloader's, the last PUT included). */
    perPage: PageTimeSplit;
  };
  /** The run whose memory grew most. */
  memory: { baselineMiB: number; peakMiB: number; growthMiB: number; peakSampleGrowth?: MemorySnapshot; peakExcludesInit: boolean; tmpPeakMiB: number };
  /**
   * Context for the throughput figure: one PUT of a downloader-sized object (MAX_OBJECT_BYTES, or the
   * whole file when smaller) from this file to the same moto, checksummed as the downloader does, and
   * the share of the downloader's work that PUTs at that rate would take.
   */
  putReference: { objectBytes: number; seconds: number; mbPerSecond: number; estimatedPutSeconds: number };
  /**
   * The CPU the backup took on this machine, from the schedule tick to DONE: the downloader's
   * invocations, this process (the RDS endpoint and the runner) and moto. Spread perfectly over every
   * core it still needs `ceilingSeconds`, which bounds the pipeline's ratio at `ceilingRatio`.
   */
  cpu?: { downloaderSeconds: number; endpointAndRunnerSeconds: number; motoSeconds: number; cores: number; ceilingSeconds: number; ceilingRatio: number };
  verification: { ok: boolean; seconds: number; problems: number; lines: string[] };
}

const SINGLE_INSTANCE = 'bench-instance';
const SINGLE_CLUSTER = 'bench-cluster';
const SINGLE_PARAMETER_GROUP = 'bench-audit';
const SINGLE_FILE = 'audit/audit.log.0.2026-01-01-00-00.0';

async function runServeRateClient(session: LabSession, url: string, dir: string): Promise<ClientServeRate> {
  const out = join(dir, 'serve-rate.json');
  const tracked = session.registry.start(
    'serve-rate-client',
    process.execPath,
    ['--import', 'tsx', join(__dirname, 'serve-rate-client.ts'), url, SINGLE_INSTANCE, SINGLE_FILE, out],
    {
      cwd: REPO_ROOT,
      logFile: join(dir, 'serve-rate-client.log'),
      // The downloader's Node options too (its V8 heap settings): the reference reads as it would.
      env: { ...process.env, AWS_REGION: session.options.region, NODE_OPTIONS: session.service.functions.downloader.options.environment.NODE_OPTIONS },
    },
  );
  const code = await tracked.exited;
  if (code !== 0) throw new Error(`serve-rate client ended with ${code}; see ${join(dir, 'serve-rate-client.log')}`);
  return JSON.parse(readFileSync(out, 'utf8')) as ClientServeRate;
}

async function measurePut(direct: DirectAws, bucket: string, path: string, objectBytes: number): Promise<SingleFileResult['putReference']> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { start: 0, end: objectBytes - 1 })) hash.update(chunk as Buffer);
  const began = process.hrtime.bigint();
  await direct.clients.s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: 'bench/put-rate-reference',
      // The body the downloader sends (the object is the file's first objectBytes).
      Body: new SpoolBody(path, objectBytes),
      ContentLength: objectBytes,
      ChecksumAlgorithm: 'SHA256',
      ChecksumSHA256: hash.digest('base64'),
    }),
  );
  const seconds = Number(process.hrtime.bigint() - began) / 1e9;
  return { objectBytes, seconds: round(seconds, 2), mbPerSecond: round(objectBytes / MB / seconds, 1), estimatedPutSeconds: 0 };
}

/** One backup of the file through the pipeline (fresh bucket, ledger and functions), verified. */
interface BackupRun {
  bucket: string;
  pipeline: SingleFileResult['pipeline'];
  memory: SingleFileResult['memory'];
  cpuParts?: { downloaderSeconds: number; endpointAndRunnerSeconds: number; motoSeconds: number };
  verification: SingleFileResult['verification'];
}

async function backUpOnce(
  session: LabSession,
  direct: DirectAws,
  endpoint: Pick<RdsLogEndpoint, 'url' | 'stats' | 'resetStats'>,
  file: { encoding: 'escaped' | 'cdata'; workDir: string; path: string; bytes: number; run: number },
): Promise<BackupRun> {
  const { encoding, path, bytes: fileBytes } = file;
  endpoint.resetStats();
  // Straight to moto (no counting proxy): speed is the figure here.
  const resources = await createPipelineResources(direct.clients, session.definition, direct.aws, `bench-${encoding}-${file.run}-${Date.now().toString(36)}`);
  const service = new LocalLambdaService({
    definition: session.definition,
    resources,
    clients: direct.clients,
    registry: session.registry,
    region: session.options.region,
    awsEndpointUrl: direct.aws.url,
    rdsEndpointUrl: endpoint.url,
    workDir: file.workDir,
  });
  try {
    log(`[bench] ${encoding}: backup ${file.run}, through scanner -> detector -> downloader`);
    const runnerCpuBefore = process.cpuUsage();
    const motoCpuBefore = processCpuSeconds(direct.motoPid);
    const began = Date.now();
    const totals = emptyCycleTotals();
    let done = false;
    for (let cycle = 0; cycle < 5 && !done; cycle++) {
      addCycle(totals, await service.cycle());
      const item = (await scanLedger(direct.clients.ledger, resources.ledgerTable)).find((candidate) => candidate[LEDGER_ATTR.file] === SINGLE_FILE);
      done = item?.[LEDGER_ATTR.status] === LedgerStatus.DONE && item[LEDGER_ATTR.backedUpBytes] === fileBytes;
    }
    const endToEndSeconds = (Date.now() - began) / 1000;
    const runnerCpuSeconds = ownCpuSecondsSince(runnerCpuBefore);
    const motoCpuAfter = processCpuSeconds(direct.motoPid);
    if (totals.functionErrors.length > 0) throw new Error(`function errors while backing up the ${encoding} file: ${totals.functionErrors.slice(0, 3).join('; ')}`);
    if (!done) throw new Error(`the ${encoding} file was not backed up within ${totals.cycles} cycles`);
    const downloader = service.functions.downloader.stats;
    const endpointStats = endpoint.stats();
    const downloaderWorkSeconds = downloader.durationMsTotal / 1000;
    const downloaderCpuSeconds = downloader.cpuMsTotal / 1000;
    const perPage = splitPageTime(downloaderWorkSeconds, endpointStats);
    log(
      `  backed up in ${downloaderWorkSeconds.toFixed(1)} s of downloader work = ${(fileBytes / MB / downloaderWorkSeconds).toFixed(1)} MB/s, ` +
        `${downloaderCpuSeconds.toFixed(1)} s of its CPU (${endToEndSeconds.toFixed(1)} s end to end); ` +
        `per page: endpoint ${perPage.endpointMs} ms + downloader ${perPage.clientMs} ms`,
    );

    const verifyStarted = Date.now();
    const verification = await verifyBackup({
      s3: direct.clients.s3,
      ledger: direct.clients.ledger,
      bucket: resources.bucket,
      ledgerTable: resources.ledgerTable,
      files: [{ instance: SINGLE_INSTANCE, logFileName: SINGLE_FILE, path }],
    });
    log(`  verified against the file: ${verification.ok ? 'ok' : `${verification.totals.problems} problem(s)`}`);
    return {
      bucket: resources.bucket,
      pipeline: {
        cycles: totals.cycles,
        downloaderWorkSeconds: round(downloaderWorkSeconds, 2),
        downloaderCpuSeconds: round(downloaderCpuSeconds, 2),
        endToEndSeconds: round(endToEndSeconds, 2),
        mbPerSecond: round(fileBytes / MB / downloaderWorkSeconds, 2),
        passes: totals.delivered,
        downloaderInvocations: downloader.invocations,
        portionCalls: endpointStats.calls.DownloadDBLogFilePortion ?? 0,
        bytesServed: endpointStats.bytesServed,
        perPage,
      },
      memory: {
        baselineMiB: kib(downloader.peakRssGrowthBaselineKb),
        peakMiB: kib(downloader.peakRssKb),
        growthMiB: kib(downloader.peakRssGrowthKb),
        peakSampleGrowth: downloader.peakSampleGrowth,
        peakExcludesInit: downloader.peakRssExcludesInit,
        // Sampled every 100 ms: the spools the downloader had in its /tmp at once.
        tmpPeakMiB: round(downloader.peakTmpBytes / MIB, 1),
      },
      cpuParts:
        motoCpuBefore !== undefined && motoCpuAfter !== undefined
          ? { downloaderSeconds: downloaderCpuSeconds, endpointAndRunnerSeconds: runnerCpuSeconds, motoSeconds: motoCpuAfter - motoCpuBefore }
          : undefined,
      verification: {
        ok: verification.ok,
        seconds: round((Date.now() - verifyStarted) / 1000, 1),
        problems: verification.totals.problems,
        lines: reportLines(verification),
      },
    };
  } finally {
    await service.close();
  }
}

/**
 * Reads the file at the raw rate, then backs it up and reads it again, `throughputRuns` times: each
 * backup's ratio divides by the mean of the raw rates just before and just after it, and the figures
 * take the run with the median ratio (memory: the worst run).
 */
async function singleFilePhase(
  session: LabSession,
  direct: DirectAws,
  encoding: 'escaped' | 'cdata',
  bytes: number,
  options: BenchOptions,
): Promise<SingleFileResult> {
  const dir = join(options.workDir, `single-${encoding}`);
  const logsDir = join(dir, 'served');
  await mkdir(join(logsDir, 'audit'), { recursive: true });
  const path = join(logsDir, SINGLE_FILE);
  log(`[bench] ${encoding}: writing a ${formatBytes(bytes)} synthetic MariaDB audit file`);
  const generateStarted = Date.now();
  const fileBytes = await writeSyntheticAuditLog(path, bytes);
  const generateSeconds = (Date.now() - generateStarted) / 1000;

  const endpoint = await startRdsLogEndpoint({
    region: session.options.region,
    accountId: LAB_ACCOUNT_ID,
    clusters: [
      { id: SINGLE_CLUSTER, parameterGroup: SINGLE_PARAMETER_GROUP, instances: [{ id: SINGLE_INSTANCE, writer: true, logs: { kind: 'directory', dir: logsDir } }] },
    ],
    parameterGroups: { [SINGLE_PARAMETER_GROUP]: { server_audit_logging: '1', server_audit_events: LAB_AUDIT_EVENTS } },
    logDataEncoding: encoding,
  });
  if (options.endpointLatencyMs > 0) {
    // Both sides of the ratio read through the same slower endpoint: the raw reads and the backups.
    endpoint.setFaults({ latencyMs: options.endpointLatencyMs });
    log(`[bench] ${encoding}: the endpoint adds ${options.endpointLatencyMs} ms to every call (--endpoint-latency-ms)`);
  }
  try {
    const measureRaw = async (when: string): Promise<RawRead> => {
      log(`[bench] ${encoding}: raw serve rate ${when} (the SDK client in its own process, as fast as it can)`);
      endpoint.resetStats();
      const rate = await runServeRateClient(session, endpoint.url, dir);
      if (rate.bytes !== fileBytes) throw new Error(`the serve-rate client read ${rate.bytes} bytes of a ${fileBytes}-byte file`);
      const perPage = splitPageTime(rate.seconds, endpoint.stats());
      log(
        `  ${formatBytes(rate.bytes)} in ${rate.seconds.toFixed(1)} s = ${rate.mbPerSecond.toFixed(1)} MB/s, ${rate.calls} calls, ${rate.cpuSeconds.toFixed(1)} s of the client's CPU; ` +
          `per page: endpoint ${perPage.endpointMs} ms + client ${perPage.clientMs} ms`,
      );
      return { ...rate, perPage };
    };
    const rates = [await measureRaw('before the first backup')];
    const backups: BackupRun[] = [];
    for (let run = 1; run <= options.throughputRuns; run++) {
      const workDir = join(dir, `backup-${run}`);
      await mkdir(workDir, { recursive: true });
      backups.push(await backUpOnce(session, direct, endpoint, { encoding, workDir, path, bytes: fileBytes, run }));
      rates.push(await measureRaw(`after backup ${run}`));
    }
    const runs = backups.map((backup, index) => {
      const rawMbPerSecond = ((rates[index] as RawRead).mbPerSecond + (rates[index + 1] as RawRead).mbPerSecond) / 2;
      return { index, rawMbPerSecond, ratio: backup.pipeline.mbPerSecond / rawMbPerSecond };
    });
    const byRatio = [...runs].sort((a, b) => a.ratio - b.ratio);
    const chosen = byRatio[Math.floor((byRatio.length - 1) / 2)] as (typeof runs)[number];
    const median = backups[chosen.index] as BackupRun;
    const worstMemory = backups.reduce((worst, backup) => (backup.memory.growthMiB > worst.memory.growthMiB ? backup : worst)).memory;
    const failed = backups.find((backup) => !backup.verification.ok);

    // After the verification: the reference object lies outside logs/, but it is not the pipeline's.
    const maxObjectBytes = Number(session.resources.resolve(session.definition.functions.downloader.environment[ENV.maxObjectBytes]));
    const putReference = await measurePut(direct, median.bucket, path, Math.min(fileBytes, maxObjectBytes));
    putReference.estimatedPutSeconds = round(fileBytes / MB / putReference.mbPerSecond, 1);
    log(`  reference PUT to moto: ${formatBytes(putReference.objectBytes)} in ${putReference.seconds} s = ${putReference.mbPerSecond} MB/s`);
    let cpu: SingleFileResult['cpu'];
    if (median.cpuParts) {
      const parts = median.cpuParts;
      const cores = availableParallelism();
      const ceilingSeconds = (parts.downloaderSeconds + parts.endpointAndRunnerSeconds + parts.motoSeconds) / cores;
      cpu = {
        downloaderSeconds: round(parts.downloaderSeconds, 2),
        endpointAndRunnerSeconds: round(parts.endpointAndRunnerSeconds, 2),
        motoSeconds: round(parts.motoSeconds, 2),
        cores,
        ceilingSeconds: round(ceilingSeconds, 2),
        ceilingRatio: round(fileBytes / MB / ceilingSeconds / chosen.rawMbPerSecond, 2),
      };
      log(
        `  CPU of the median backup: downloader ${cpu.downloaderSeconds} s, endpoint + runner ${cpu.endpointAndRunnerSeconds} s, moto ${cpu.motoSeconds} s ` +
          `-> at least ${cpu.ceilingSeconds} s on ${cores} cores: the ratio cannot exceed ${cpu.ceilingRatio} here`,
      );
    }
    log(`  ratios, backup by backup: ${runs.map((run) => run.ratio.toFixed(2)).join(', ')}; median: backup ${chosen.index + 1}`);
    return {
      encoding,
      fileBytes,
      endpointLatencyMs: options.endpointLatencyMs,
      generateSeconds: round(generateSeconds, 1),
      raw: rates[chosen.index] as RawRead,
      rawAfter: rates[chosen.index + 1] as RawRead,
      rawMbPerSecond: round(chosen.rawMbPerSecond, 2),
      runs: runs.map((run, index) => ({
        ratio: round(run.ratio, 3),
        pipelineMbPerSecond: (backups[index] as BackupRun).pipeline.mbPerSecond,
        rawMbPerSecond: round(run.rawMbPerSecond, 2),
      })),
      pipeline: median.pipeline,
      memory: worstMemory,
      putReference,
      cpu,
      verification: failed?.verification ?? {
        ...median.verification,
        seconds: round(backups.reduce((sum, backup) => sum + backup.verification.seconds, 0), 1),
      },
    };
  } finally {
    await endpoint.close();
    rmSync(logsDir, { recursive: true, force: true });
  }
}

// ---- Figure 6: bundles ---------------------------------------------------------------------------------

interface BundleResult {
  bundles: Array<{ name: string; bytes: number; gzipBytes: number; sourceMapBytes: number }>;
  init: Awaited<ReturnType<typeof measureInit>>;
  esbuild: string;
}

async function bundlePhase(session: LabSession, options: BenchOptions): Promise<BundleResult> {
  const dir = join(options.workDir, 'bundles');
  mkdirSync(dir, { recursive: true });
  log('[bench] synthesizing BackupPipelineStack with bundling (HouseFunction\'s esbuild options)');
  const bundles = synthesizeBundles(join(dir, 'cdk.out'));
  const empty = await buildEmptyBundle(dir);
  const environmentOf = (role: FunctionRole): NodeJS.ProcessEnv => session.service.functions[role].options.environment;
  const emptyEnvironment: NodeJS.ProcessEnv = { PATH: process.env.PATH, NODE_OPTIONS: environmentOf('downloader').NODE_OPTIONS };
  log(`[bench] module init in fresh Node processes: ${options.initRuns} runs per bundle, interleaved`);
  const init = await measureInit(
    dir,
    [
      { name: 'empty', path: empty.path, env: emptyEnvironment },
      ...FUNCTION_ROLES.map((role) => ({ name: role, path: bundles[role].path, env: environmentOf(role) })),
    ],
    options.initRuns,
  );
  const esbuild = execFileSync(join(REPO_ROOT, 'node_modules', '.bin', 'esbuild'), ['--version'], { encoding: 'utf8' }).trim();
  return {
    bundles: [...FUNCTION_ROLES.map((role) => bundles[role]), empty].map(({ name, bytes, gzipBytes, sourceMapBytes }) => ({ name, bytes, gzipBytes, sourceMapBytes })),
    init,
    esbuild,
  };
}

// ---- Figures from the measurements ----------------------------------------------------------------------

/** `caller service:action` -> calls. */
function callsByAction(calls: readonly CountedCall[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const call of calls) {
    const key = `${call.caller} ${call.service}:${call.action}`;
    out[key] = (out[key] ?? 0) + call.count;
  }
  return out;
}

/** What grew at the highest sampled RSS: V8 heap, ArrayBuffers (socket and page buffers), the rest. */
function composition(growth: MemorySnapshot | undefined): string {
  if (!growth) return 'no sample';
  const other = growth.rssKb - growth.heapTotalKb - growth.arrayBuffersKb;
  return `sampled peak +${kib(growth.rssKb)}: heap +${kib(growth.heapTotalKb)}, buffers +${kib(growth.arrayBuffersKb)}, other +${kib(other)}`;
}

function buildFigures(growth: GrowthResult, idle: IdleResult, large: SingleFileResult, cdata: SingleFileResult, bundles: BundleResult): Figure[] {
  const figures: Figure[] = [];
  const served = growth.endpoint.bytesServed;
  figures.push(
    figure({
      id: '1',
      name: 'RDS bytes read ÷ log bytes (growing files)',
      value: served / growth.sourceBytes,
      measured: `${(served / growth.sourceBytes).toFixed(4)} (${served} ÷ ${growth.sourceBytes} B, ${growth.files} files)`,
      goal: { op: '<=', bound: 1.01 },
      encoding: 'escaped',
      method:
        'LogFileData bytes the RDS endpoint served (its own counter, truncation text included) ÷ the final size of every audit file ' +
        `MariaDB wrote, over a warm-up cycle, a ${growth.workloadCycles}-cycle sysbench run and ${growth.catchUpCycles} catch-up cycle(s); files grew over a median ` +
        `${growth.growthCycles.median} (max ${growth.growthCycles.max}) cycles. Escaped: what RDS sends; the data volume is small.`,
    }),
  );
  const calls = growth.endpoint.calls.DownloadDBLogFilePortion ?? 0;
  const megabytes = growth.sourceBytes / MB;
  const bound = megabytes + growth.passes;
  figures.push(
    figure({
      id: '2',
      name: 'DownloadDBLogFilePortion calls (growing files)',
      value: calls,
      measured: `${calls} calls for ${megabytes.toFixed(2)} MB in ${growth.passes} passes (${(calls / megabytes).toFixed(2)}/MB)`,
      goal: { op: '<=', bound: round(bound, 2) },
      goalText: `≤ MB + passes = ${bound.toFixed(2)}`,
      encoding: 'escaped',
      method:
        'Calls counted by the RDS endpoint; MB = 1,000,000 bytes (the page limit) of the files\' final sizes; a pass is one stream record ' +
        'the downloader received (each runs one backup pass of one file).',
    }),
  );
  const largeCalls = large.pipeline.portionCalls;
  const largeBound = large.fileBytes / MB + large.pipeline.passes;
  figures.push(
    figure({
      id: '2b',
      name: `DownloadDBLogFilePortion calls (${formatBytes(large.fileBytes)} file)`,
      value: largeCalls,
      measured: `${largeCalls} calls for ${(large.fileBytes / MB).toFixed(2)} MB in ${large.pipeline.passes} pass(es)`,
      goal: { op: '<=', bound: round(largeBound, 2) },
      goalText: `≤ MB + passes = ${largeBound.toFixed(2)}`,
      encoding: large.encoding,
      method: 'As figure 2, on the single large file of figures 3 and 4.',
    }),
  );
  for (const [id, run] of [
    ['3', large],
    ['3b', cdata],
  ] as const) {
    figures.push(
      figure({
        id,
        name: `downloader RSS growth, ${formatBytes(run.fileBytes)} file`,
        value: run.memory.growthMiB,
        measured:
          `${run.memory.growthMiB} MiB (the most of ${run.runs.length} backups; after init ${run.memory.baselineMiB} -> peak ${run.memory.peakMiB} MiB; ` +
          `/tmp peak ${run.memory.tmpPeakMiB} MiB; ` +
          `${composition(run.memory.peakSampleGrowth)}; the raw-serve-rate client reading the same file: ` +
          `+${kib(run.raw.maxRssKb - run.raw.rssBeforeKb)} MiB, ${composition(run.raw.peakSampleGrowth)})` +
          (run.memory.peakExcludesInit && run.raw.peakRssReset ? '' : ' [peak RSS could not be reset: it includes init]'),
        goal: { op: '<=', bound: 64 },
        goalText: '≤ 64 MiB',
        encoding: run.encoding,
        method:
          'The real downloader handler in its own Lambda-like process: RSS it reported right after init vs the kernel\'s peak RSS ' +
          '(VmHWM) over its invocations, the high-water mark reset at the end of init (Linux clear_refs) so that a spike while ' +
          'modules load does not count (getrusage maxrss keeps a peak that cannot be reset). For reference, the same two numbers of the raw-serve-rate client process ' +
          '(client created -> peak, reset at creation), which only reads the pages. Both processes ' +
          'also sample process.memoryUsage() every 50 ms; the sample with the highest RSS says which kind grew: the V8 heap, ' +
          'ArrayBuffers (socket and page buffers) or the rest (native memory, freed memory the allocator kept).',
      }),
    );
  }
  for (const [id, run] of [
    ['4', large],
    ['4b', cdata],
  ] as const) {
    const ratio = run.pipeline.mbPerSecond / run.rawMbPerSecond;
    // A file that fits one object is stored by one PUT that can only start after its last page: reading
    // at the raw rate, then that PUT at the reference rate, is what such a pass can be expected to reach.
    const oneObject = run.putReference.objectBytes === run.fileBytes;
    const readSeconds = run.fileBytes / MB / run.rawMbPerSecond;
    const oneObjectExpected = readSeconds / (readSeconds + run.fileBytes / MB / run.putReference.mbPerSecond);
    figures.push(
      figure({
        id,
        name:
          `pipeline ÷ raw serve rate, ${formatBytes(run.fileBytes)} file` +
          (run.endpointLatencyMs > 0 ? `, endpoint +${run.endpointLatencyMs} ms per call` : ''),
        value: ratio,
        measured:
          `${ratio.toFixed(2)} (median of ${run.runs.length} backups: ${run.runs.map((each) => each.ratio.toFixed(2)).join(', ')}; ` +
          `${run.pipeline.mbPerSecond.toFixed(1)} ÷ ${run.rawMbPerSecond.toFixed(1)} MB/s, ` +
          `the raw rate before and after the backup: ${run.raw.mbPerSecond.toFixed(1)}, ${run.rawAfter.mbPerSecond.toFixed(1)}; ` +
          `per page: endpoint ${run.pipeline.perPage.endpointMs} + downloader ${run.pipeline.perPage.clientMs} ms vs endpoint ` +
          `${run.raw.perPage.endpointMs} + client ${run.raw.perPage.clientMs} ms before; ` +
          (oneObject ? `one object, so read then PUT: ≈ ${oneObjectExpected.toFixed(2)} expected; ` : '') +
          `PUTs to moto at ${run.putReference.mbPerSecond} MB/s ≈ ${run.putReference.estimatedPutSeconds} of its ${run.pipeline.downloaderWorkSeconds.toFixed(1)} s; ` +
          `CPU: downloader ${run.pipeline.downloaderCpuSeconds.toFixed(1)} s, raw client ${run.raw.cpuSeconds.toFixed(1)} s` +
          (run.cpu
            ? `; CPU-bound ceiling ${run.cpu.ceilingRatio.toFixed(2)}: (downloader ${run.cpu.downloaderSeconds} + endpoint and runner ` +
              `${run.cpu.endpointAndRunnerSeconds} + moto ${run.cpu.motoSeconds}) s ÷ ${run.cpu.cores} cores)`
            : ')'),
        // The goal is stated for an endpoint answering as fast as it can; with added latency the figure is context.
        ...(run.endpointLatencyMs > 0 ? { goalText: '(≥ 0.8 at +0 ms)' } : { goal: { op: '>=' as const, bound: 0.8 } }),
        encoding: run.encoding,
        method:
          'Pipeline: file bytes ÷ the summed duration of the downloader invocations that backed it up (pages, SHA-256, spool, checksummed ' +
          'PUT to moto, ledger writes). Raw: @aws-sdk/client-rds configured as the downloader\'s (LogFileData fast path, pages released), in its own ' +
          'process with the downloader\'s NODE_OPTIONS, reading the same file through the same endpoint (Marker "0", loop on AdditionalDataPending), pages counted and released; ' +
          'measured just before and just after each backup, and the ratio divides by their mean (this machine\'s speed drifts by ±15 % between runs). ' +
          'The file is backed up --throughput-runs times (fresh bucket, ledger and functions each time), alternating with raw reads; the figure is the median backup\'s ratio, and its details are that backup\'s. ' +
          'A file no larger than MAX_OBJECT_BYTES is one object, whose PUT can only start after its last page: reading at the raw rate, then one PUT at the reference rate, is the ratio such a pass can be expected to reach. ' +
          'Context: one PUT of a MAX_OBJECT_BYTES object to the same ' +
          'moto, timed, gives the share of the work that is storing rather than reading; the two processes\' CPU time (user + system, GC ' +
          'threads included) shows what the downloader does beyond reading, on the same two cores as the endpoint and moto. ' +
          'Per page: the endpoint sums the time from each page request\'s arrival to its answer being sent; the rest of the reader\'s time per page is the reader\'s ' +
          '(parsing, and for the downloader hashing, spooling, its PUTs and ledger writes, as far as they hold up the next request). ' +
          'Ceiling: all CPU the backup took (the downloader\'s invocations, this process serving RDS and running the Lambda ' +
          'service, moto from /proc) from the schedule tick to DONE, spread over every core, is the least time it could take; ' +
          'file bytes ÷ that time ÷ the raw rate bounds the ratio on this machine.' +
          (run.endpointLatencyMs > 0
            ? ` The endpoint added ${run.endpointLatencyMs} ms to every call, for the raw reads and the backups alike (--endpoint-latency-ms), ` +
              'as network and service time do for a remote RDS; the goal is stated for an endpoint answering as fast as it can.'
            : ''),
      }),
    );
  }
  const idleWrites = idle.dynamoDbWrites + idle.s3Writes + idle.downloadCalls;
  figures.push(
    figure({
      id: '5',
      name: 'idle cycle: ledger writes, all writes, downloads',
      value: idleWrites,
      measured:
        `${idle.ledgerWriteCalls} ledger writes (${idle.dynamoDbWrites} DynamoDB writes in all), ${idle.s3Writes} S3 writes, ${idle.downloadCalls} downloads; ` +
        `${idle.streamRecords} stream records, ${idle.ledgerItemsChanged} ledger items changed`,
      goal: { op: '<=', bound: 0 },
      goalText: '0 writes, 0 downloads',
      encoding: 'escaped',
      method:
        'One full cycle after catch-up with no file changed (checked). Handler AWS calls counted by a proxy in front of moto, by caller ' +
        '(the SDK User-Agent app id), action and table; S3 writes = any S3 call but reads; ledger items compared attribute by attribute ' +
        'before/after; ledger-stream records read in the cycle; RDS calls counted by the endpoint.',
    }),
  );
  const idleCalls = [
    ...Object.entries(idle.rdsCalls).map(([action, count]) => `rds:${action} ${count}`),
    ...idle.awsCalls.map((call) => `${call.caller} ${call.service}:${call.action} ${call.count}`),
  ];
  figures.push(
    figure({
      id: '5b',
      name: 'idle cycle: API calls',
      value: Object.values(idle.rdsCalls).reduce((sum, count) => sum + count, 0) + idle.awsCalls.reduce((sum, call) => sum + call.count, 0),
      measured: idleCalls.join(', '),
      method: 'The same cycle: every RDS call by action (endpoint counter) and every handler call to S3/DynamoDB/SQS by function (proxy).',
    }),
  );
  for (const bundle of bundles.bundles.filter((candidate) => candidate.name !== 'empty')) {
    figures.push(
      figure({
        id: '6',
        name: `bundle size, ${bundle.name}`,
        value: bundle.bytes,
        measured: `${(bundle.bytes / 1024).toFixed(0)} KiB minified (${(bundle.gzipBytes / 1024).toFixed(0)} KiB gzip; map ${(bundle.sourceMapBytes / 1024).toFixed(0)} KiB)`,
        method: `index.js of the function's asset from BackupPipelineStack synthesized with bundling (esbuild ${bundles.esbuild}).`,
      }),
    );
  }
  const empty = bundles.init.find((entry) => entry.name === 'empty');
  for (const entry of bundles.init.filter((candidate) => candidate.name !== 'empty')) {
    if (!empty) break;
    const ratio = entry.medianRequireMs / empty.medianRequireMs;
    figures.push(
      figure({
        id: '6b',
        name: `module init ÷ empty handler's, ${entry.name}`,
        value: ratio,
        measured:
          `${ratio.toFixed(0)}x (require ${entry.medianRequireMs.toFixed(1)} vs ${empty.medianRequireMs.toFixed(2)} ms; ` +
          `process start to ready ${entry.medianSinceProcessStartMs.toFixed(0)} vs ${empty.medianSinceProcessStartMs.toFixed(0)} ms)`,
        method:
          `Median of ${entry.runs} fresh \`node\` processes per bundle (interleaved), each timing require() of index.js with the function's ` +
          'environment (NODE_OPTIONS=--enable-source-maps as deployed); the empty handler is built with the same esbuild options.',
      }),
    );
  }
  return figures;
}

// ---- Main ------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const options = parseCommandLine(parseOptions, HELP);
  if (typeof options === 'number') return options;

  const { workDir } = options;
  const registry = beginRun('bench', workDir, join(dirname(workDir), 'bench-pids.json'), log, {
    folder: 'logs',
    isDefault: workDir === DEFAULT_WORK_DIR,
  });
  if (typeof registry === 'number') return registry;

  const startedAt = Date.now();
  let exitCode = 1;
  let session: LabSession | undefined;
  let counter: AwsCallCounter | undefined;
  try {
    const tools = preflight({ database: false, moto: true }, log);
    const moto = await startMoto(registry, tools.motoServer ?? 'moto_server', join(workDir, 'logs'));
    counter = await startAwsCallCounter(moto.url);
    log(`[bench] moto_server at ${moto.url}; the lab reaches it through a counting proxy at ${counter.url}`);
    session = await startLabSession(
      {
        workDir,
        region: options.region,
        awsEndpointUrl: counter.url,
        audit: { rotateSizeBytes: options.rotateSize, rotations: MAX_AUDIT_FILE_ROTATIONS },
        // The SDK's standard app id names each function in its User-Agent: the proxy counts per caller.
        lambda: { envOverrides: Object.fromEntries(FUNCTION_ROLES.map((role) => [role, { AWS_SDK_UA_APP_ID: appIdOf(role) }])) },
        log,
      },
      registry,
    );
    const direct = directAws(moto.url, options.region, moto.process.child.pid);

    const growth = await growthPhase(session, counter, options);
    for (const line of reportLines(growth.verification).slice(-1)) log(`  ${line}`);
    if (!growth.caughtUp) throw new Error('the pipeline did not catch up with the growing workload');
    const idle = await idlePhase(session, counter);
    const large = await singleFilePhase(session, direct, 'escaped', options.largeBytes, options);
    const cdata = await singleFilePhase(session, direct, 'cdata', options.cdataBytes, options);
    const bundles = await bundlePhase(session, options);

    const figures = buildFigures(growth, idle, large, cdata, bundles);
    const verificationOk = growth.verification.ok && large.verification.ok && cdata.verification.ok;
    const durationMs = Date.now() - startedAt;
    const result = {
      generatedAt: new Date().toISOString(),
      durationSeconds: round(durationMs / 1000, 1),
      machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: round(totalmem() / 2 ** 30, 1) },
      options: {
        growthSeconds: options.growthSeconds,
        cycleIntervalMs: options.cycleIntervalMs,
        rotateSize: options.rotateSize,
        largeBytes: options.largeBytes,
        cdataBytes: options.cdataBytes,
        throughputRuns: options.throughputRuns,
        initRuns: options.initRuns,
      },
      verificationOk,
      figures,
      details: {
        growth: { ...growth, verification: { ok: growth.verification.ok, totals: growth.verification.totals }, awsCalls: callsByAction(growth.awsCalls) },
        idle,
        large,
        cdata,
        bundles,
      },
    };
    mkdirSync(dirname(options.out), { recursive: true });
    writeFileSync(options.out, `${JSON.stringify(result, null, 2)}\n`);

    log('');
    for (const line of renderTable(figures)) log(line);
    log('');
    log('Markdown (README):');
    for (const line of renderMarkdown(figures)) log(line);
    log('');
    if (!verificationOk) {
      log('[bench] FAILED: a measured backup did not verify; the figures above describe an incorrect run');
      for (const run of [large, cdata]) if (!run.verification.ok) for (const line of run.verification.lines) log(`  ${line}`);
      if (!growth.verification.ok) for (const line of reportLines(growth.verification)) log(`  ${line}`);
    }
    const misses = figures.filter((entry) => entry.verdict === 'MISS').length;
    log(`[bench] ${figures.length} figures (${misses} miss(es)) in ${formatDuration(durationMs)}; written to ${options.out}`);
    exitCode = verificationOk ? 0 : 1;
    return exitCode;
  } catch (error) {
    if (error instanceof PreflightError) {
      process.stderr.write(`[bench] ${error.message}\n`);
      return 3;
    }
    process.stderr.write(`[bench] failed: ${String((error as Error)?.stack ?? error)}\n`);
    return 1;
  } finally {
    if (session) await session.stop({ keep: options.keep, preserve: ['logs', WORK_FOLDER_MARKER] });
    await counter?.close();
    await registry.stopAll();
    // A failed run keeps the handlers' and services' logs for a look; a good one leaves nothing.
    if (exitCode === 0 && !options.keep) rmSync(workDir, { recursive: true, force: true });
    else log(`[bench] logs kept in ${join(workDir, 'logs')}`);
    // Last: until the folder is gone, the pid file is what keeps another bench from taking it.
    registry.release();
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
