/**
 * Every child process the local lab starts goes through here, so that all of them are stopped on a
 * normal exit, on an error and on SIGINT/SIGTERM, and none is left behind.
 *
 * Children are started in their own process group (`detached`): a Ctrl-C in the terminal then reaches
 * only the lab, which stops the children in order (workload before databases) and kills each group
 * whole (a shell script's own children included).
 */
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TrackedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Append stdout and stderr to this file instead of inheriting the lab's output. */
  logFile?: string;
  /** Extra stdio entries, e.g. 'ipc' for forked function runtimes. */
  ipc?: boolean;
  /** With `ipc`: one more pipe, the child's fd 4 (`child.stdio[4]`), for signalling outside the IPC channel. */
  controlPipe?: boolean;
}

interface PidRecord {
  pid: number;
  cmdline: string;
}

/** The pid file: the run that owns the work folder, and the children it has running. */
interface PidFileContent {
  owner?: PidRecord;
  children: PidRecord[];
}

/** Another live run owns the work folder: reaping its children and wiping its folder would wreck it. */
export class RunInProgressError extends Error {
  constructor(readonly owner: PidRecord) {
    super(
      `another run (pid ${owner.pid}: ${owner.cmdline.split('\0').join(' ').trim()}) is still using this work folder. ` +
        `Wait for it to end or stop it (Ctrl-C in its terminal, or kill ${owner.pid}), or give this run another one (--workdir).`,
    );
    this.name = 'RunInProgressError';
  }
}

const GRACE_MS = 5000;

function readCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Whether the recorded process still runs: the same pid with the same command line (pids are reused). */
function stillRunning(record: PidRecord): boolean {
  return isAlive(record.pid) && readCmdline(record.pid) === record.cmdline;
}

function readPidFile(pidFile: string): PidFileContent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(pidFile, 'utf8'));
  } catch {
    return undefined;
  }
  // Before the owner was recorded, the file was the bare list of children.
  if (Array.isArray(parsed)) return { children: parsed as PidRecord[] };
  return parsed as PidFileContent;
}

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone; nothing left to stop.
  }
}

export class ProcessRegistry {
  private readonly processes = new Set<TrackedProcess>();
  private stopping: Promise<void> | undefined;

  private readonly owner: PidRecord | undefined;

  /**
   * @param pidFile where this process (the owner) and the pids of its running children are recorded,
   *   so a later run can stop what a killed (SIGKILL) run left behind, and refuse to start while the
   *   owner still runs. Processes are identified by pid *and* unchanged command line, never by name.
   *   The file is written at once: it claims the work folder.
   */
  constructor(private readonly pidFile?: string) {
    const cmdline = readCmdline(process.pid);
    this.owner = cmdline === undefined ? undefined : { pid: process.pid, cmdline };
    this.writePidFile();
  }

  start(name: string, command: string, args: readonly string[], options: StartOptions = {}): TrackedProcess {
    const logFd = options.logFile ? openSync(options.logFile, 'a') : undefined;
    const output = logFd ?? 'inherit';
    const spawnOptions: SpawnOptions = {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: options.ipc ? ['ignore', output, output, 'ipc', ...(options.controlPipe ? ['pipe' as const] : [])] : ['ignore', output, output],
    };
    const child = spawn(command, args, spawnOptions);
    if (logFd !== undefined) closeSync(logFd);
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      child.once('error', (error) => resolve(`spawn error: ${error.message}`));
    });
    const tracked: TrackedProcess = { name, child, exited };
    this.processes.add(tracked);
    void exited.then(() => {
      this.processes.delete(tracked);
      this.writePidFile();
    });
    this.writePidFile();
    return tracked;
  }

  /** Stops one process group: SIGTERM, then SIGKILL after a grace period. */
  async stop(tracked: TrackedProcess, graceMs = GRACE_MS): Promise<void> {
    const pid = tracked.child.pid;
    if (pid === undefined || tracked.child.exitCode !== null || tracked.child.signalCode !== null) {
      await tracked.exited;
      return;
    }
    signalGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
    await tracked.exited;
    clearTimeout(timer);
    // The leader may exit before the rest of its group (a script's children).
    signalGroup(pid, 'SIGKILL');
  }

  /** Stops everything, most recently started first (workload before the servers it talks to). */
  stopAll(): Promise<void> {
    this.stopping ??= (async () => {
      for (const tracked of [...this.processes].reverse()) {
        await this.stop(tracked);
      }
    })();
    return this.stopping;
  }

  /**
   * Removes the pid file once nothing it records is left (after stopAll): a finished run has nothing
   * for a later one to reap, so it leaves no trace where the file was (the bench's is outside its
   * work folder). Returns false, keeping the file, while a child still runs.
   */
  release(): boolean {
    if (this.processes.size > 0) return false;
    if (this.pidFile) rmSync(this.pidFile, { force: true });
    return true;
  }

  /** Last resort from a synchronous 'exit' handler: nothing can be awaited there. */
  killAllNow(): void {
    for (const tracked of this.processes) {
      if (tracked.child.pid !== undefined) signalGroup(tracked.child.pid, 'SIGKILL');
    }
  }

  running(): TrackedProcess[] {
    return [...this.processes];
  }

  /**
   * Kills children recorded by an earlier run that did not get to clean up (it was SIGKILLed). Throws
   * RunInProgressError, killing nothing, while the run that wrote the file still runs.
   */
  static reapLeftovers(pidFile: string): number {
    const content = readPidFile(pidFile);
    if (!content) return 0;
    const { owner } = content;
    if (owner && owner.pid !== process.pid && stillRunning(owner)) throw new RunInProgressError(owner);
    let reaped = 0;
    for (const record of content.children) {
      if (stillRunning(record)) {
        signalGroup(record.pid, 'SIGKILL');
        reaped += 1;
      }
    }
    return reaped;
  }

  private writePidFile(): void {
    if (!this.pidFile) return;
    const children: PidRecord[] = [];
    for (const tracked of this.processes) {
      const pid = tracked.child.pid;
      const cmdline = pid === undefined ? undefined : readCmdline(pid);
      if (pid !== undefined && cmdline !== undefined) children.push({ pid, cmdline });
    }
    const content: PidFileContent = { ...(this.owner ? { owner: this.owner } : {}), children };
    try {
      writeFileSync(this.pidFile, JSON.stringify(content));
    } catch {
      // The work folder may already be removed at the very end of a run.
    }
  }
}

/**
 * Installs exit/signal/error handlers that stop every registered child. Returns a function that
 * removes them again (tests and the fault suite run several labs in one process).
 */
export function installCleanupHandlers(registry: ProcessRegistry, onFatal: (error: unknown) => void): () => void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      registry.killAllNow();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    signalled = true;
    process.stderr.write(`\n[lab] ${signal}: stopping every process the lab started...\n`);
    void registry.stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  const onError = (error: unknown): void => {
    // Once a signal is stopping the services, calls still in flight to them fail (connection refused):
    // that is the shutdown the user asked for, and its exit status is the signal's.
    if (signalled) return;
    onFatal(error);
    void registry.stopAll().finally(() => process.exit(1));
  };
  const onExit = (): void => registry.killAllNow();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  process.on('exit', onExit);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    process.off('exit', onExit);
  };
}

/**
 * Parses a command's arguments: `--help` prints the help and a parse error prints it after the
 * message; either way the returned number is the exit code to stop with.
 */
export function parseCommandLine<T>(parse: (argv: string[]) => T | 'help', help: string, argv = process.argv.slice(2)): T | number {
  try {
    const parsed = parse(argv);
    if (parsed !== 'help') return parsed;
    process.stdout.write(help);
    return 0;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${help}`);
    return 2;
  }
}

/** Exit status of a command that did not start because another run owns its work folder. */
export const EXIT_RUN_IN_PROGRESS = 3;
/** Exit status of a command given a work folder it will not empty (a usage error). */
export const EXIT_NOT_A_WORK_FOLDER = 2;

/**
 * Marks a lab work folder. A run empties its work folder first, so only a folder that is missing, empty
 * or marked is ever emptied: `--workdir .` must not delete a repository, nor `--workdir ~` a home.
 */
export const WORK_FOLDER_MARKER = '.lab-work-folder';

export class NotAWorkFolderError extends Error {
  constructor(workDir: string, why: string) {
    super(
      `${workDir} ${why}; refusing to empty it (a run empties its work folder first). ` +
        'Give --workdir a new or empty folder, or one an earlier run used.',
    );
    this.name = 'NotAWorkFolderError';
  }
}

/**
 * Throws NotAWorkFolderError when `workDir` is not a missing, empty or marked folder. `isDefault`: the
 * command's own default folder (in the repository, ignored by git), taken even unmarked, as runs from
 * before the marker left it so; a folder given by --workdir never is.
 */
function checkWorkFolder(workDir: string, isDefault: boolean): void {
  if (isDefault) return;
  let entries: string[];
  try {
    entries = readdirSync(workDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new NotAWorkFolderError(workDir, 'is not a folder');
    if (code !== 'ENOENT') throw error;
    entries = [];
  }
  const ours = entries.length === 0 || entries.includes(WORK_FOLDER_MARKER);
  if (!ours) throw new NotAWorkFolderError(workDir, `holds files no lab run wrote (it has no ${WORK_FOLDER_MARKER})`);
}

/**
 * Empties `workDir` for a new run and marks it; refuses (checkWorkFolder), touching nothing, any other
 * folder. `beforeEmptying` runs once the folder is known to be a work folder, before its files go: a pid
 * file in a folder no run made is not ours to act on, and one in ours is gone after emptying.
 */
export function prepareWorkFolder(workDir: string, isDefault: boolean, beforeEmptying: () => void = () => undefined): void {
  checkWorkFolder(workDir, isDefault);
  beforeEmptying();
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  writeFileSync(join(workDir, WORK_FOLDER_MARKER), 'A lab work folder: every run that uses it empties it first.\n');
}

/**
 * Says why a run may not start in `workDir` (another run owns it, or it is no work folder) and returns
 * the command's exit status; any other error is rethrown.
 */
function refusedStartStatus(
  label: string,
  workDir: string,
  error: unknown,
): typeof EXIT_RUN_IN_PROGRESS | typeof EXIT_NOT_A_WORK_FOLDER {
  if (error instanceof RunInProgressError) {
    process.stderr.write(`[${label}] ${workDir}: ${error.message}\n`);
    return EXIT_RUN_IN_PROGRESS;
  }
  if (error instanceof NotAWorkFolderError) {
    process.stderr.write(`[${label}] ${error.message}\n`);
    return EXIT_NOT_A_WORK_FOLDER;
  }
  throw error;
}

/**
 * Begins a command's run: stops what an earlier, killed run left behind (its pid file, and any
 * `otherPidFiles` its parts kept), empties the work folder (see prepareWorkFolder; recreating `folder`
 * inside it), and returns the registry whose children are stopped on exit, failure and Ctrl-C. While
 * another run still owns the work folder, or when the folder is not one a run may empty, it touches
 * nothing, says so, and returns the exit status.
 */
export function beginRun(
  label: string,
  workDir: string,
  pidFile: string,
  log: (line: string) => void,
  options: { folder?: string; isDefault?: boolean; otherPidFiles?: readonly string[] } = {},
): ProcessRegistry | typeof EXIT_RUN_IN_PROGRESS | typeof EXIT_NOT_A_WORK_FOLDER {
  try {
    prepareWorkFolder(workDir, options.isDefault ?? false, () => {
      let reaped = 0;
      for (const file of [pidFile, ...(options.otherPidFiles ?? [])]) reaped += ProcessRegistry.reapLeftovers(file);
      if (reaped > 0) log(`[${label}] stopped ${reaped} process(es) an earlier, killed run left behind`);
    });
  } catch (error) {
    return refusedStartStatus(label, workDir, error);
  }
  mkdirSync(join(workDir, options.folder ?? '.'), { recursive: true });
  const registry = new ProcessRegistry(pidFile);
  installCleanupHandlers(registry, (error) => process.stderr.write(`[${label}] fatal: ${String((error as Error)?.stack ?? error)}\n`));
  return registry;
}
