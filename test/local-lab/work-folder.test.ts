import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  beginRun,
  EXIT_NOT_A_WORK_FOLDER,
  EXIT_RUN_IN_PROGRESS,
  isAlive,
  NotAWorkFolderError,
  prepareWorkFolder,
  ProcessRegistry,
  RunInProgressError,
  WORK_FOLDER_MARKER,
} from '../../scripts/local-lab/processes';

/** Starts a run owning `pidFile`; resolves with it and the pid of the child it registered. */
async function startOwningRun(pidFile: string): Promise<{ owner: ChildProcess; childPid: number }> {
  const owner = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures', 'owning-run.ts'), pidFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(owner.stdout!, 'data')) as [Buffer];
  const match = /^ready (\d+)/.exec(line.toString());
  if (!match) throw new Error(`unexpected output from the owning run: ${line.toString()}`);
  return { owner, childPid: Number(match[1]) };
}

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** Each test's scratch folder, and the processes it started (killed afterwards). */
let dir: string;
const started: number[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'work-folder-'));
});
afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('run ownership of a work folder', () => {

  it('refuses to reap or wipe while the run that owns the folder still runs', async () => {
    const workDir = join(dir, 'work');
    const pidFile = join(workDir, 'pids.json');
    prepareWorkFolder(workDir, false);
    const { owner, childPid } = await startOwningRun(pidFile);
    started.push(owner.pid!, childPid);
    writeFileSync(join(workDir, 'evidence'), 'the owning run is using this');

    expect(() => ProcessRegistry.reapLeftovers(pidFile)).toThrow(RunInProgressError);
    expect(() => ProcessRegistry.reapLeftovers(pidFile)).toThrow(`pid ${owner.pid}`);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(beginRun('lab', workDir, pidFile, () => undefined)).toBe(EXIT_RUN_IN_PROGRESS);
      expect(String(stderr.mock.calls[0]?.[0])).toContain('--workdir');
    } finally {
      stderr.mockRestore();
    }
    expect(isAlive(childPid)).toBe(true);
    expect(existsSync(join(workDir, 'evidence'))).toBe(true);
  });

  it('stops the children of a run that was killed', async () => {
    const pidFile = join(dir, 'pids.json');
    const { owner, childPid } = await startOwningRun(pidFile);
    started.push(childPid);
    owner.kill('SIGKILL');
    await once(owner, 'exit');

    expect(ProcessRegistry.reapLeftovers(pidFile)).toBe(1);
    expect(await waitUntil(() => !isAlive(childPid))).toBe(true);
  });

  it('still reads the pid file of an earlier version (a bare list of children)', async () => {
    const pidFile = join(dir, 'pids.json');
    const { owner, childPid } = await startOwningRun(pidFile);
    started.push(owner.pid!, childPid);
    const { children } = JSON.parse(readFileSync(pidFile, 'utf8')) as { children: unknown[] };
    writeFileSync(pidFile, JSON.stringify(children));

    expect(ProcessRegistry.reapLeftovers(pidFile)).toBe(1);
    expect(await waitUntil(() => !isAlive(childPid))).toBe(true);
  });

  it('removes its pid file on release only once every child has stopped', async () => {
    const pidFile = join(dir, 'pids.json');
    const registry = new ProcessRegistry(pidFile);
    const sleeper = registry.start('sleeper', 'sleep', ['30']);
    started.push(sleeper.child.pid!);

    expect(registry.release()).toBe(false);
    expect(existsSync(pidFile)).toBe(true);

    await registry.stopAll();
    expect(registry.release()).toBe(true);
    expect(existsSync(pidFile)).toBe(false);
  });
});

describe('a run empties only a work folder', () => {

  it('creates a missing folder, or takes an empty one, and marks it', () => {
    for (const workDir of [join(dir, 'new', 'nested'), mkdtempSync(join(dir, 'empty-'))]) {
      prepareWorkFolder(workDir, false);
      expect(readdirSync(workDir)).toEqual([WORK_FOLDER_MARKER]);
    }
  });

  it('empties a folder an earlier run marked, and the command\'s own default folder even unmarked', () => {
    const marked = join(dir, 'marked');
    prepareWorkFolder(marked, false);
    writeFileSync(join(marked, 'report.json'), '{}');
    prepareWorkFolder(marked, false);
    expect(readdirSync(marked)).toEqual([WORK_FOLDER_MARKER]);

    // A default folder (.lab in the repository) as runs from before the marker left it.
    const earlier = join(dir, 'earlier');
    mkdirSync(join(earlier, 'logs'), { recursive: true });
    writeFileSync(join(earlier, 'pids.json'), '[]');
    prepareWorkFolder(earlier, true);
    expect(readdirSync(earlier)).toEqual([WORK_FOLDER_MARKER]);
  });

  it('refuses, touching nothing, any other folder (a repository, a home, one with a report.json) or a file', () => {
    const repository = join(dir, 'repository');
    mkdirSync(join(repository, '.git'), { recursive: true });
    writeFileSync(join(repository, 'README.md'), 'keep me');
    writeFileSync(join(repository, 'report.json'), '{}');
    expect(() => prepareWorkFolder(repository, false)).toThrow(NotAWorkFolderError);
    expect(readdirSync(repository).sort()).toEqual(['.git', 'README.md', 'report.json']);

    const file = join(dir, 'notes.txt');
    writeFileSync(file, 'keep me too');
    expect(() => prepareWorkFolder(file, false)).toThrow('is not a folder');
    expect(readFileSync(file, 'utf8')).toBe('keep me too');
  });

  it('beginRun says so and returns the usage status, before acting on a pid file in that folder', () => {
    const home = join(dir, 'home');
    mkdirSync(home);
    writeFileSync(join(home, 'README.md'), 'keep me');
    // A pid file that happens to name a live process: not this lab's to kill.
    const sleeper = spawn('sleep', ['30']);
    started.push(sleeper.pid!);
    const cmdline = readFileSync(`/proc/${sleeper.pid}/cmdline`, 'utf8');
    writeFileSync(join(home, 'pids.json'), JSON.stringify({ children: [{ pid: sleeper.pid, cmdline }] }));
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(beginRun('lab', home, join(home, 'pids.json'), () => undefined)).toBe(EXIT_NOT_A_WORK_FOLDER);
      expect(String(stderr.mock.calls[0]?.[0])).toContain(`${home} holds files no lab run wrote`);
    } finally {
      stderr.mockRestore();
    }
    expect(readdirSync(home).sort()).toEqual(['README.md', 'pids.json']);
    expect(isAlive(sleeper.pid!)).toBe(true);
  });
});
