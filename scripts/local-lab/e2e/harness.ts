/**
 * What every fault scenario shares: a lab session (fixtures or MariaDB) on the suite's moto_server,
 * cycles with the ledger's invariants checked after each one, and the same final oracle — every byte
 * the source wrote stored exactly once and byte-identical with the ledger agreeing (verify.ts), each
 * object written once (one S3 version per key), vanished files LOST, dead-letter queues holding only
 * what the scenario expects, no unexpected function error, and no process left behind.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { LedgerItem, LedgerStatus, LOG_OBJECT_PREFIX } from '../../../lambda/shared/contract';
import { toLedgerItem } from '../../../lambda/shared/ledger';
import { deadLetterQueueUrls, LabSession, LabSessionOptions, startLabSession } from '../lab-session';
import { sleep } from '../net';
import type { ProcessRegistry } from '../processes';
import { cycleErrorCount, formatBytes, formatDuration, reconcilerText } from '../progress';
import { perFileKey, type RdsLogEndpointOptions } from '../rds-endpoint';
import type { CycleStats, ReconcilerRun } from '../runner/lambda-service';
import type { PipelineDefinition } from '../stack-definition';
import { catchUpState, fileId, newLedgerViolations, scanLedger, SourceFile, verifyBackup, VerificationReport } from '../verify';
import type { FixtureLogs } from './fixtures';

export interface SuiteContext {
  region: string;
  definition: PipelineDefinition;
  /** The suite's moto_server, shared by every scenario (each creates its own bucket, tables, queues). */
  awsEndpointUrl: string;
  log(line: string): void;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** A precondition of the scenario failed: nothing after it can be judged. */
export class ScenarioAbort extends Error {}

export type SourceList = Array<SourceFile & { size: number }>;

export interface SessionSpec {
  /** Serve these fixture folders; without them the session runs MariaDB writer + reader. */
  fixtures?: FixtureLogs;
  /** MariaDB server_audit rotation (MariaDB sessions). */
  audit?: LabSessionOptions['audit'];
  endpoint?: Pick<RdsLogEndpointOptions, 'faults' | 'pageLimitBytes' | 'logDataEncoding'>;
  lambda?: LabSessionOptions['lambda'];
}

export interface FinishExpectations {
  /** The files the oracle checks (vanished ones with `expectLost`). */
  sources: SourceList;
  /** Whether the run caught up before its deadline. */
  caughtUp: boolean;
  /** Exact bodies expected in the scan dead-letter queue (default none). */
  scanDeadLetters?: readonly string[];
  /** At most this many batches in the downloader's on-failure queue (default 0). */
  onFailureAtMost?: number;
  /** Function errors the scenario causes on purpose (default: none is expected). */
  expectedFunctionError?: (error: string) => boolean;
}

const DEFAULT_AUDIT: LabSessionOptions['audit'] = { rotateSizeBytes: 1_000_000, rotations: 999 };

/** Every process below `root` (pid and command line), from /proc. */
export function descendantProcesses(root: number): Array<{ pid: number; command: string }> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may contain spaces: the fields follow the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while /proc was read.
    }
  }
  const found: Array<{ pid: number; command: string }> = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    let command = '?';
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      // ended meanwhile
    }
    found.push({ pid, command });
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

export { fileId } from '../verify';

export class ScenarioRun {
  readonly checks: Check[] = [];
  readonly facts: Record<string, unknown> = {};
  readonly functionErrors: string[] = [];
  /** Event-source counters over the whole scenario (cycles and direct pumps). */
  readonly totals = { detectorMessages: 0, detectorFailed: 0, streamRecords: 0, streamDelivered: 0, streamRetries: 0, streamDiscarded: 0 };
  /** Every reconcile-schedule tick of the scenario, in order. */
  readonly reconcileRuns: ReconcilerRun[] = [];
  cycles = 0;
  private readonly invariantViolations: string[] = [];
  private current: LabSession | undefined;
  private readonly cleanups: Array<() => Promise<void>> = [];
  private readonly baselinePids: ReadonlySet<number>;
  private stopped = false;

  constructor(
    readonly suite: SuiteContext,
    readonly id: string,
    readonly workDir: string,
    readonly registry: ProcessRegistry,
    readonly signal: AbortSignal,
  ) {
    this.baselinePids = new Set(descendantProcesses(process.pid).map((entry) => entry.pid));
  }

  log(line: string): void {
    this.suite.log(`  [${this.id}] ${line}`);
  }

  check(name: string, ok: boolean, detail = ''): boolean {
    this.checks.push({ name, ok, detail });
    this.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
    return ok;
  }

  /** A check the rest of the scenario depends on: stops the scenario when it fails. */
  require(name: string, ok: boolean, detail = ''): void {
    if (!this.check(name, ok, detail)) throw new ScenarioAbort(`${name}${detail ? `: ${detail}` : ''}`);
  }

  throwIfAborted(): void {
    if (this.signal.aborted) throw new ScenarioAbort('scenario timed out');
  }

  /** Runs at stop, before the session stops (fault proxies, watchers). */
  onCleanup(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  get session(): LabSession {
    if (!this.current) throw new Error('no session started');
    return this.current;
  }

  async startSession(spec: SessionSpec): Promise<LabSession> {
    this.throwIfAborted();
    this.current = await startLabSession(
      {
        workDir: this.workDir,
        region: this.suite.region,
        awsEndpointUrl: this.suite.awsEndpointUrl,
        audit: spec.audit ?? DEFAULT_AUDIT,
        ...(spec.lambda ? { lambda: spec.lambda } : {}),
        ...(spec.fixtures ? { fixtureLogDirs: { writer: spec.fixtures.dirs.writer, reader: spec.fixtures.dirs.reader } } : {}),
        ...(spec.endpoint ? { endpointSettings: spec.endpoint } : {}),
        definition: this.suite.definition,
        log: (line) => this.log(line),
      },
      this.registry,
    );
    return this.current;
  }

  /** Adds one pump's (or cycle's) counters and function errors to the scenario's. */
  record(stats: Pick<CycleStats, 'sqs' | 'stream'> & Partial<Pick<CycleStats, 'scanner' | 'reconciler'>>): void {
    this.totals.detectorMessages += stats.sqs.messages;
    this.totals.detectorFailed += stats.sqs.failed;
    this.totals.streamRecords += stats.stream.recordsRead;
    this.totals.streamDelivered += stats.stream.delivered;
    this.totals.streamRetries += stats.stream.retries;
    this.totals.streamDiscarded += stats.stream.discarded;
    this.recordErrors(stats);
  }

  private recordErrors(stats: Pick<CycleStats, 'sqs' | 'stream'> & Partial<Pick<CycleStats, 'scanner' | 'reconciler'>>): void {
    this.functionErrors.push(...stats.sqs.functionErrors.map((error) => `detector: ${error}`));
    this.functionErrors.push(...stats.stream.functionErrors.map((error) => `downloader: ${error}`));
    if (stats.scanner && !stats.scanner.ok) this.functionErrors.push(`scanner: ${stats.scanner.error ?? 'failed'}`);
    if (stats.reconciler) {
      this.reconcileRuns.push(stats.reconciler);
      if (!stats.reconciler.ok) this.functionErrors.push(`reconciler: ${stats.reconciler.error ?? 'failed'}`);
    }
  }

  /**
   * After any step that ran functions, or while they run: the ledger invariants must hold. The ledger is
   * read before the sources, which only grow, so a pass storing bytes meanwhile cannot look like bytes
   * beyond what the source wrote.
   */
  async checkLedger(sources: () => Promise<SourceList> | SourceList): Promise<{ items: Record<string, unknown>[]; sources: SourceList }> {
    const items = await scanLedger(this.session.clients.ledger, this.session.resources.ledgerTable);
    const current = await sources();
    for (const violation of newLedgerViolations(this.invariantViolations, items, current)) this.log(`LEDGER INVARIANT VIOLATED: ${violation}`);
    return { items, sources: current };
  }

  /** One schedule tick and everything it sets off, then the ledger invariants. */
  async cycle(sources: () => Promise<SourceList> | SourceList, label = 'cycle'): Promise<CycleStats> {
    this.throwIfAborted();
    const begin = Date.now();
    const stats = await this.session.service.cycle();
    this.cycles += 1;
    this.record(stats);
    const { items, sources: current } = await this.checkLedger(sources);
    const state = catchUpState(current, items);
    const errors = cycleErrorCount(stats);
    this.log(
      `${label} ${this.cycles}: ${state.done}/${state.files} files complete, ${formatBytes(state.backedUpBytes)} of ${formatBytes(state.sourceBytes)} | ` +
        `detector ${stats.sqs.messages} msg${stats.sqs.failed ? ` (${stats.sqs.failed} failed)` : ''}, ` +
        `downloader ${stats.stream.invocations} inv/${stats.stream.delivered} rec` +
        (stats.stream.retries ? `/${stats.stream.retries} retries` : '') +
        (stats.stream.discarded ? `/${stats.stream.discarded} discarded` : '') +
        (stats.reconciler ? ` | ${reconcilerText(stats.reconciler)}` : '') +
        (errors ? ` | ${errors} function error(s)` : '') +
        ` | ${formatDuration(Date.now() - begin)}`,
    );
    for (const error of [...stats.sqs.functionErrors, ...stats.stream.functionErrors].slice(0, 2)) this.log(`    function error: ${error.slice(0, 300)}`);
    return stats;
  }

  /** Cycles every `intervalMs` until every source is complete (DONE with all bytes, or LOST when expected). */
  async runUntilCaughtUp(
    sources: () => Promise<SourceList> | SourceList,
    options: { intervalMs: number; timeoutMs: number; label?: string },
  ): Promise<boolean> {
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      const begin = Date.now();
      await this.cycle(sources, options.label ?? 'catch-up');
      const items = await scanLedger(this.session.clients.ledger, this.session.resources.ledgerTable);
      const state = catchUpState(await sources(), items);
      if (state.caughtUp) return true;
      if (Date.now() > deadline) {
        this.log(`not caught up after ${formatDuration(options.timeoutMs)}; behind: ${state.behind.slice(0, 6).join(', ')}`);
        return false;
      }
      await this.pause(Math.max(0, options.intervalMs - (Date.now() - begin)));
    }
  }

  async pause(ms: number): Promise<void> {
    this.throwIfAborted();
    await sleep(ms);
    this.throwIfAborted();
  }

  async ledgerItems(): Promise<LedgerItem[]> {
    const items = await scanLedger(this.session.clients.ledger, this.session.resources.ledgerTable);
    return items.map((item) => toLedgerItem(item));
  }

  /** Every version of every object under logs/ (a key with more than one was rewritten). */
  async objectVersions(): Promise<Map<string, number>> {
    const versions = new Map<string, number>();
    const { s3 } = this.session.clients;
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectVersionsCommand({
          Bucket: this.session.resources.bucket,
          Prefix: LOG_OBJECT_PREFIX,
          KeyMarker: keyMarker,
          VersionIdMarker: versionIdMarker,
        }),
      );
      for (const version of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        if (version.Key) versions.set(version.Key, (versions.get(version.Key) ?? 0) + 1);
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionIdMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (keyMarker !== undefined);
    return versions;
  }

  /** Takes every message out of a queue and returns the bodies (dead-letter queues, at the end). */
  async drainQueue(url: string): Promise<string[]> {
    const { sqs } = this.session.clients;
    const bodies: string[] = [];
    for (;;) {
      const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }));
      if (Messages.length === 0) return bodies;
      bodies.push(...Messages.map((message) => message.Body ?? ''));
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: Messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
        }),
      );
    }
  }

  /** The oracle and the common checks, once the scenario's story is over. */
  async finish(expect: FinishExpectations): Promise<VerificationReport> {
    const { session } = this;
    this.check('pipeline caught up before the deadline', expect.caughtUp);

    const verification = await verifyBackup({
      s3: session.clients.s3,
      ledger: session.clients.ledger,
      bucket: session.resources.bucket,
      ledgerTable: session.resources.ledgerTable,
      files: expect.sources,
    });
    const problems = [
      ...verification.files.flatMap((file) => file.problems.map((problem) => `${fileId(file.instance, file.logFileName)} ${problem.code}: ${problem.detail}`)),
      ...verification.orphans.map((problem) => `${problem.code}: ${problem.detail}`),
    ];
    const lost = verification.files.filter((file) => file.status === LedgerStatus.LOST).length;
    const failedAsExpected = expect.sources.filter((source) => source.expectFailedAt !== undefined).length;
    this.check(
      'oracle: every source byte stored exactly once, byte-identical, ledger and checksums agree',
      verification.ok,
      verification.ok
        ? `${verification.totals.files} files, ${verification.totals.sourceBytes} B in ${verification.totals.objects} objects${lost ? `, ${lost} LOST as expected` : ''}${failedAsExpected ? `, ${failedAsExpected} FAILED at an unreadable line as expected` : ''}`
        : problems.slice(0, 6).join(' | '),
    );
    this.facts.verification = verification.totals;

    const versions = await this.objectVersions();
    const rewritten = [...versions].filter(([, count]) => count > 1);
    this.check(
      'every object written once (one S3 version per key, no delete marker)',
      rewritten.length === 0,
      rewritten.length ? rewritten.slice(0, 4).map(([key, count]) => `${key} x${count}`).join(', ') : `${versions.size} keys`,
    );

    this.check(
      'ledger invariants held after every cycle (DONE only when complete, segments contiguous, never beyond the source)',
      this.invariantViolations.length === 0,
      this.invariantViolations.slice(0, 4).join(' | '),
    );

    if (session.endpoint) {
      const stats = session.endpoint.stats();
      this.facts.endpoint = { calls: stats.calls, throttled: stats.throttled, bytesServed: stats.bytesServed, downloadPages: stats.downloadPages, truncatedPages: stats.truncatedPages };
      this.check('endpoint served only representable pages', stats.unrepresentablePages === 0 && stats.invalidUtf8Pages === 0);
    }

    const queues = deadLetterQueueUrls(session.definition, session.resources);
    const scanDeadLetters = queues.scan ? await this.drainQueue(queues.scan) : [];
    const expectedDeadLetters = [...(expect.scanDeadLetters ?? [])].sort();
    const sameDeadLetters = JSON.stringify([...scanDeadLetters].sort()) === JSON.stringify(expectedDeadLetters);
    this.check(
      expectedDeadLetters.length ? `scan dead-letter queue holds exactly the ${expectedDeadLetters.length} malformed message(s)` : 'scan dead-letter queue empty',
      sameDeadLetters,
      sameDeadLetters ? '' : `found ${JSON.stringify(scanDeadLetters).slice(0, 300)}`,
    );
    const onFailure = queues.downloaderOnFailure ? await this.drainQueue(queues.downloaderOnFailure) : [];
    const onFailureAtMost = expect.onFailureAtMost ?? 0;
    this.facts.downloaderOnFailureBatches = onFailure.length;
    this.check(
      onFailureAtMost ? `downloader on-failure queue: at most the ${onFailureAtMost} batch(es) this scenario makes the mapping give up` : 'downloader on-failure queue empty',
      onFailure.length <= onFailureAtMost,
      `${onFailure.length} batch(es)`,
    );
    const scheduleDeadLetters: string[] = [];
    for (const queue of queues.scheduled) scheduleDeadLetters.push(...(await this.drainQueue(queue)));
    this.check(
      'scheduled-run dead-letter queues empty (scanner, reconciler)',
      scheduleDeadLetters.length === 0,
      scheduleDeadLetters.length ? `${scheduleDeadLetters.length}: ${scheduleDeadLetters[0]?.slice(0, 200)}` : '',
    );

    const unexpected = this.functionErrors.filter((error) => !(expect.expectedFunctionError?.(error) ?? false));
    this.facts.functionErrors = this.functionErrors.length;
    this.check('no unexpected function error', unexpected.length === 0, unexpected.slice(0, 3).map((error) => error.slice(0, 200)).join(' | '));
    this.facts.reconciler = {
      runs: this.reconcileRuns.length,
      failed: this.reconcileRuns.filter((run) => !run.ok).length,
      redriven: this.reconcileRuns.reduce((sum, run) => sum + (run.summary?.redriven.length ?? 0), 0),
      findingsByRun: this.reconcileRuns.map((run) => run.summary?.findingsByCode ?? null),
    };
    this.facts.functions = Object.fromEntries(
      Object.entries(session.service.functions).map(([name, fn]) => [
        name,
        {
          invocations: fn.stats.invocations,
          errors: fn.stats.errors,
          timeouts: fn.stats.timeouts,
          crashes: fn.stats.crashes,
          outOfMemory: fn.stats.outOfMemory,
          tmpFull: fn.stats.tmpFull,
          coldStarts: fn.stats.coldStarts,
        },
      ]),
    );
    return verification;
  }

  /** Stops everything the scenario started and checks that no process is left. Safe to call twice. */
  async stop(options: { keep: boolean; judge: boolean }): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const cleanup of this.cleanups.reverse()) await cleanup().catch((error: unknown) => this.log(`cleanup failed: ${String(error)}`));
    if (this.current) await this.current.stop({ keep: options.keep, preserve: ['logs'] });
    await this.registry.stopAll();
    if (!options.judge) return;
    const leftovers = descendantProcesses(process.pid).filter((entry) => !this.baselinePids.has(entry.pid));
    this.check(
      'no process left behind (every child of the scenario ended)',
      leftovers.length === 0 && this.registry.running().length === 0,
      leftovers.map((entry) => `${entry.pid} ${entry.command.slice(0, 80)}`).join(', '),
    );
  }
}

/** A scenario of the suite. */
export interface Scenario {
  id: string;
  title: string;
  /** Needs MariaDB (and sysbench). */
  mariadb: boolean;
  /** Hard limit for the whole scenario, session start and stop included. */
  timeoutMs: number;
  run(run: ScenarioRun): Promise<void>;
}

/** Bytes served for one file by the endpoint, from its per-file counters. */
export function servedBytes(session: LabSession, instance: string, logFileName: string): number {
  return session.endpoint?.stats().perFile[perFileKey(instance, logFileName)]?.bytesServed ?? 0;
}

/** `DownloadDBLogFilePortion` calls the endpoint answered for one file. */
export function servedCalls(session: LabSession, instance: string, logFileName: string): number {
  return session.endpoint?.stats().perFile[perFileKey(instance, logFileName)]?.calls ?? 0;
}

export const workDirOf = (root: string, id: string): string => join(root, id);
