/**
 * Every child process the local lab starts goes through here, so that all of them are stopped on a
 * normal exit, on an error and on SIGINT/SIGTERM, and none is left behind.
 *
 * Children are started in their own process group (`detached`): a Ctrl-C in the terminal then reaches
 * only the lab, which stops the children in order (workload before databases) and kills each group
 * whole (a shell script's own children included).
 */
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

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
}

interface PidRecord {
  pid: number;
  cmdline: string;
}

const GRACE_MS = 5000;

function readCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
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

  /**
   * @param pidFile where the pids of running children are recorded, so a later run can stop what a
   *   killed (SIGKILL) run left behind — identified by pid *and* unchanged command line, never by name.
   */
  constructor(private readonly pidFile?: string) {}

  start(name: string, command: string, args: readonly string[], options: StartOptions = {}): TrackedProcess {
    const logFd = options.logFile ? openSync(options.logFile, 'a') : undefined;
    const output = logFd ?? 'inherit';
    const spawnOptions: SpawnOptions = {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: options.ipc ? ['ignore', output, output, 'ipc'] : ['ignore', output, output],
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

  /** Last resort from a synchronous 'exit' handler: nothing can be awaited there. */
  killAllNow(): void {
    for (const tracked of this.processes) {
      if (tracked.child.pid !== undefined) signalGroup(tracked.child.pid, 'SIGKILL');
    }
  }

  running(): TrackedProcess[] {
    return [...this.processes];
  }

  /** Kills children recorded by an earlier run that did not get to clean up (it was SIGKILLed). */
  static reapLeftovers(pidFile: string): number {
    let records: PidRecord[];
    try {
      records = JSON.parse(readFileSync(pidFile, 'utf8')) as PidRecord[];
    } catch {
      return 0;
    }
    let reaped = 0;
    for (const record of records) {
      if (isAlive(record.pid) && readCmdline(record.pid) === record.cmdline) {
        signalGroup(record.pid, 'SIGKILL');
        reaped += 1;
      }
    }
    return reaped;
  }

  private writePidFile(): void {
    if (!this.pidFile) return;
    const records: PidRecord[] = [];
    for (const tracked of this.processes) {
      const pid = tracked.child.pid;
      const cmdline = pid === undefined ? undefined : readCmdline(pid);
      if (pid !== undefined && cmdline !== undefined) records.push({ pid, cmdline });
    }
    try {
      writeFileSync(this.pidFile, JSON.stringify(records));
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

/**
 * Begins a command's run: stops what an earlier, killed run left behind (its pid file), empties the work
 * folder (recreating `folder` inside it), and returns the registry whose children are stopped on exit,
 * failure and Ctrl-C.
 */
export function beginRun(label: string, workDir: string, pidFile: string, log: (line: string) => void, folder = '.'): ProcessRegistry {
  const reaped = ProcessRegistry.reapLeftovers(pidFile);
  if (reaped > 0) log(`[${label}] stopped ${reaped} process(es) an earlier, killed run left behind`);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(`${workDir}/${folder}`, { recursive: true });
  const registry = new ProcessRegistry(pidFile);
  installCleanupHandlers(registry, (error) => process.stderr.write(`[${label}] fatal: ${String((error as Error)?.stack ?? error)}\n`));
  return registry;
}
