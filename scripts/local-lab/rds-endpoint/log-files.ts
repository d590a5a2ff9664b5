/**
 * Which log files each instance has, under which names, and where their bytes are right now.
 *
 * MariaDB's server_audit renames on rotation (`server_audit.log` -> `.1` -> `.2`, or `.001`, ...),
 * while Aurora gives every file one stable name for its whole life. So a MariaDB audit file is known
 * by its identity (device + inode + birth time), not by its path: the first scan that sees an
 * identity names it `audit/audit.log.0.{YYYY-MM-DD-HH-MM}.{n}` (UTC birth time, or first-seen time
 * where the file system has no birth time; n = 0, 1, ... among names of that minute), the name then
 * follows the file across renames, and a name is never given to another file. A file that is no longer
 * in the directory (deleted by `server_audit_file_rotations`) is gone for good. The map is kept in an
 * optional JSON state file so a restarted endpoint keeps the names.
 *
 * With a retain folder, every MariaDB file is also hard-linked there under its stable name as soon as it
 * is seen, and the folders are watched so that a rotation is seen when it happens, not at the next
 * request: a file MariaDB deletes keeps its bytes, so the lab can still compare it with its backup.
 *
 * Every request rescans (one readdir + one stat per file): cheap, and never stale.
 */
import { constants as fsConstants, Stats, watch, type FSWatcher } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { notFoundLogFile } from './query-protocol';
import { DEFAULT_MARIADB_AUDIT_BASENAME, LogSourceConfig, ServedFileInfo } from './types';

/** A file an instance lists right now. */
export interface LiveLogFile {
  name: string;
  path: string;
  size: number;
  /** Epoch ms, whole milliseconds as RDS reports LastWritten. */
  lastWritten: number;
}

export interface OpenedLogFile {
  handle: FileHandle;
  /** Size at open time: the page never serves bytes beyond it. */
  size: number;
}

interface Identity {
  dev: number;
  ino: number;
  /** 0 where the file system does not record birth times. */
  birthtimeMs: number;
}

interface StableEntry extends Identity {
  name: string;
  /** Where the file was last seen. */
  path: string;
  lastSize: number;
  lastWritten: number;
  /** Base64 of the file's first bytes: tells a reused inode apart when there is no birth time. */
  fingerprint: string;
  gone: boolean;
  /** A hard link to the file in the retain folder, once made. */
  retainedPath?: string;
}

interface StateFileContent {
  version: 1;
  instances: Record<string, StableEntry[]>;
}

const STABLE_NAME_PREFIX = 'audit/audit.log.0.';
const FINGERPRINT_BYTES = 64;
const STATE_VERSION = 1;

interface Observation {
  path: string;
  stats: Stats;
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function identityOf(stats: Stats): Identity {
  return { dev: stats.dev, ino: stats.ino, birthtimeMs: stats.birthtimeMs };
}

function sameIdentity(a: Identity, b: Identity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.birthtimeMs === b.birthtimeMs;
}

function minuteStamp(epochMs: number): string {
  const iso = new Date(epochMs).toISOString(); // 2026-11-25T13:05:42.123Z
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}-${iso.slice(14, 16)}`;
}

async function readFingerprint(path: string): Promise<string | undefined> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, fsConstants.O_RDONLY);
    const buffer = Buffer.alloc(FINGERPRINT_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, FINGERPRINT_BYTES, 0);
    return buffer.subarray(0, bytesRead).toString('base64');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  } finally {
    await handle?.close();
  }
}

/** One fingerprint is the start of the other: both can be the same, growing file. */
function fingerprintsAgree(a: string, b: string): boolean {
  const x = Buffer.from(a, 'base64');
  const y = Buffer.from(b, 'base64');
  const length = Math.min(x.length, y.length);
  return x.subarray(0, length).equals(y.subarray(0, length));
}

/** Serialises async work per key (concurrent requests must not name one new file twice). */
class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

export interface CatalogOptions {
  /** JSON file keeping the identity -> stable-name map across restarts. */
  stateFile?: string;
  /** Folder to hard-link every MariaDB audit file into, under its stable name (see the module comment). */
  retainDir?: string;
  now?: () => number;
}

export class LogFileCatalog {
  private readonly queue = new KeyedQueue();
  private state: StateFileContent = { version: STATE_VERSION, instances: {} };
  private persisting: Promise<void> = Promise.resolve();
  private readonly watchers: FSWatcher[] = [];
  /** Instances with a scan queued by the watcher and not started yet: one is enough. */
  private readonly scanQueued = new Set<string>();

  private constructor(
    private readonly sources: ReadonlyMap<string, LogSourceConfig | undefined>,
    private readonly stateFile: string | undefined,
    private readonly retainDir: string | undefined,
    private readonly now: () => number,
  ) {}

  static async create(sources: ReadonlyMap<string, LogSourceConfig | undefined>, options: CatalogOptions = {}): Promise<LogFileCatalog> {
    const catalog = new LogFileCatalog(sources, options.stateFile, options.retainDir, options.now ?? Date.now);
    if (options.stateFile) catalog.state = await loadState(options.stateFile);
    if (options.retainDir) catalog.watchMariaDbFolders();
    return catalog;
  }

  /** Stops watching the folders. */
  close(): void {
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  /**
   * Scans an instance whenever its folder gains, loses or renames a file, so a file that lives shorter
   * than the time between two requests is still seen and retained. Best effort: a failed scan here is
   * repeated by the next request's own scan, which reports its error to that request.
   */
  private watchMariaDbFolders(): void {
    for (const [instanceId, source] of this.sources) {
      if (source?.kind !== 'mariadb-audit') continue;
      let watcher: FSWatcher;
      try {
        watcher = watch(source.dir, (event) => {
          if (event !== 'rename' || this.scanQueued.has(instanceId)) return;
          this.scanQueued.add(instanceId);
          void this.queue
            .run(instanceId, () => {
              this.scanQueued.delete(instanceId);
              return this.scanMariaDb(instanceId, source);
            })
            .catch(() => undefined);
        });
      } catch (error) {
        if (isNotFound(error)) continue; // no folder yet: requests still scan (and retain) as usual
        throw error;
      }
      watcher.on('error', () => watcher.close());
      this.watchers.push(watcher);
    }
  }

  /** The instance's files now, sorted by name. */
  list(instanceId: string): Promise<LiveLogFile[]> {
    const source = this.sources.get(instanceId);
    if (!source) return Promise.resolve([]);
    return this.queue.run(instanceId, () =>
      source.kind === 'directory' ? scanDirectory(source.dir) : this.scanMariaDb(instanceId, source),
    );
  }

  /** Opens a listed file by name, checking that the path still holds that file. */
  async open(instanceId: string, name: string): Promise<OpenedLogFile> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const file = (await this.list(instanceId)).find((candidate) => candidate.name === name);
      if (!file) break;
      const expected = this.identityFor(instanceId, name);
      let handle: FileHandle;
      try {
        handle = await open(file.path, fsConstants.O_RDONLY);
      } catch (error) {
        if (isNotFound(error)) continue; // renamed or deleted since the scan: look again
        throw error;
      }
      const stats = await handle.stat();
      if (!expected || sameIdentity(expected, identityOf(stats))) return { handle, size: stats.size };
      await handle.close(); // a rotation moved another file onto this path since the scan
    }
    throw notFoundLogFile(name);
  }

  /** Every file of every instance, vanished MariaDB files included (for reports and the admin API). */
  async describeAll(isHidden: (instanceId: string, name: string) => boolean): Promise<ServedFileInfo[]> {
    const result: ServedFileInfo[] = [];
    for (const instanceId of this.sources.keys()) {
      const live = await this.list(instanceId);
      const entries = this.state.instances[instanceId] ?? [];
      const retainedPaths = new Map(entries.map((entry) => [entry.name, entry.retainedPath]));
      const info = (file: { name: string; path: string; size: number; lastWritten: number }, gone: boolean): ServedFileInfo => {
        const retainedPath = retainedPaths.get(file.name);
        return {
          DBInstanceIdentifier: instanceId,
          LogFileName: file.name,
          path: file.path,
          ...(retainedPath ? { retainedPath } : {}),
          size: file.size,
          lastWritten: file.lastWritten,
          gone,
          hidden: isHidden(instanceId, file.name),
        };
      };
      result.push(...live.map((file) => info(file, false)));
      const vanished = entries.filter((entry) => entry.gone);
      result.push(
        ...vanished.map((entry) =>
          info({ name: entry.name, path: entry.path, size: entry.lastSize, lastWritten: entry.lastWritten }, true),
        ),
      );
    }
    return result;
  }

  private identityFor(instanceId: string, name: string): Identity | undefined {
    return this.state.instances[instanceId]?.find((entry) => entry.name === name && !entry.gone);
  }

  private async scanMariaDb(
    instanceId: string,
    source: { dir: string; baseName?: string },
  ): Promise<LiveLogFile[]> {
    const baseName = source.baseName ?? DEFAULT_MARIADB_AUDIT_BASENAME;
    const pattern = new RegExp(`^${escapeRegExp(baseName)}(\\.\\d+)?$`);
    const entries = (this.state.instances[instanceId] ??= []);

    // A scan is not atomic with respect to renames. A rotation renames every file one by one (.n ->
    // .n+1, ..., server_audit.log -> .1), and a scan overlapping it can stat a listed path after the
    // file it named moved on: it then sees one file twice and misses another. So a file is declared
    // gone only when two consecutive scans saw the same files at the same paths (a settled directory)
    // and it was in neither; otherwise this request declares nothing gone and a later one decides.
    let observations = await observe(source.dir, pattern);
    let plan = await this.reconcile(entries, observations);
    let settled = plan.missing.length === 0;
    for (let attempt = 0; !settled && attempt < MAX_SETTLE_SCANS; attempt++) {
      const again = await observe(source.dir, pattern);
      settled = sameLayout(observations, again);
      observations = again;
      plan = await this.reconcile(entries, again);
      if (plan.missing.length === 0) settled = true;
    }

    let changed = false;
    for (const entry of settled ? plan.missing : []) {
      entry.gone = true;
      changed = true;
    }
    for (const { entry, observation } of plan.matched) {
      entry.path = observation.path;
      entry.lastSize = observation.stats.size;
      entry.lastWritten = Math.floor(observation.stats.mtimeMs);
      if (plan.fingerprints.has(observation.path)) entry.fingerprint = plan.fingerprints.get(observation.path) ?? '';
    }
    const newcomers = [...plan.unknown].sort(
      (a, b) => a.stats.birthtimeMs - b.stats.birthtimeMs || a.stats.ino - b.stats.ino,
    );
    for (const observation of newcomers) {
      const fingerprint =
        observation.stats.birthtimeMs > 0 ? '' : ((await readFingerprint(observation.path)) ?? '');
      entries.push({
        ...identityOf(observation.stats),
        name: this.newName(entries, observation.stats.birthtimeMs > 0 ? observation.stats.birthtimeMs : this.now()),
        path: observation.path,
        lastSize: observation.stats.size,
        lastWritten: Math.floor(observation.stats.mtimeMs),
        fingerprint,
        gone: false,
      });
      changed = true;
    }
    if (this.retainDir) {
      for (const entry of entries) {
        if (!entry.gone && !entry.retainedPath && (await this.retain(instanceId, entry))) changed = true;
      }
    }
    if (changed) await this.persist();

    return entries
      .filter((entry) => !entry.gone)
      .map(({ name, path, lastSize, lastWritten }) => ({ name, path, size: lastSize, lastWritten }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Matches observations to known files. An observation with a known device + inode is that file
   * only if the birth time agrees, the size did not shrink (logs only grow) and, without birth
   * times, the first bytes agree; otherwise the inode was reused: the known file is gone and the
   * observation is a new file.
   */
  private async reconcile(entries: StableEntry[], observations: Observation[]) {
    const live = entries.filter((entry) => !entry.gone);
    const matched: Array<{ entry: StableEntry; observation: Observation }> = [];
    const unknown: Observation[] = [];
    const fingerprints = new Map<string, string>();
    for (const observation of observations) {
      const { stats } = observation;
      const entry = live.find((candidate) => candidate.dev === stats.dev && candidate.ino === stats.ino);
      let same = !!entry && entry.birthtimeMs === stats.birthtimeMs && stats.size >= entry.lastSize;
      if (entry && same && stats.birthtimeMs === 0) {
        const fingerprint = await readFingerprint(observation.path);
        same = fingerprint !== undefined && fingerprintsAgree(entry.fingerprint, fingerprint);
        if (fingerprint !== undefined) fingerprints.set(observation.path, fingerprint);
      }
      if (entry && same) matched.push({ entry, observation });
      else unknown.push(observation);
    }
    const missing = live.filter((entry) => !matched.some((match) => match.entry === entry));
    return { matched, unknown, missing, fingerprints };
  }

  /**
   * Hard-links the file into the retain folder. The path is from this scan and a rotation may have put
   * another file there since, so the link counts only if it holds this file's identity; otherwise (or
   * when the path is already empty) it is undone and a later scan tries again.
   */
  private async retain(instanceId: string, entry: StableEntry): Promise<boolean> {
    const target = join(this.retainDir as string, instanceId, ...entry.name.split('/'));
    await mkdir(dirname(target), { recursive: true });
    try {
      await link(entry.path, target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      if (code === 'ENOENT') return false;
      if (code !== 'EEXIST') throw error;
      // A link left by an attempt that found another file there, or by an earlier endpoint run.
    }
    if (sameIdentity(identityOf(await stat(target)), entry)) {
      entry.retainedPath = target;
      return true;
    }
    await unlink(target);
    return false;
  }

  private newName(entries: StableEntry[], bornMs: number): string {
    const stem = `${STABLE_NAME_PREFIX}${minuteStamp(bornMs)}.`;
    const taken = new Set(entries.map((entry) => entry.name));
    let sequence = 0;
    while (taken.has(`${stem}${sequence}`)) sequence++;
    return `${stem}${sequence}`;
  }

  /** Writes the whole map (atomically, in call order); a failed write fails the request that caused it. */
  private persist(): Promise<void> {
    const { stateFile } = this;
    if (!stateFile) return Promise.resolve();
    const content = JSON.stringify(this.state, null, 1);
    const write = this.persisting.then(async () => {
      await mkdir(dirname(stateFile), { recursive: true });
      const temporary = `${stateFile}.${process.pid}.tmp`;
      await writeFile(temporary, content);
      await rename(temporary, stateFile);
    });
    this.persisting = write.catch(() => undefined);
    return write;
  }
}

/** Scans one request makes at most to see the directory settle before it judges a file gone. */
const MAX_SETTLE_SCANS = 20;

/** The same files (device + inode) at the same paths; sizes may differ (the current file grows). */
function sameLayout(a: readonly Observation[], b: readonly Observation[]): boolean {
  if (a.length !== b.length) return false;
  const at = new Map(a.map((observation) => [observation.path, observation.stats]));
  return b.every((observation) => {
    const earlier = at.get(observation.path);
    return earlier !== undefined && earlier.dev === observation.stats.dev && earlier.ino === observation.stats.ino;
  });
}

async function observe(dir: string, pattern: RegExp): Promise<Observation[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
  const observations: Observation[] = [];
  // A scan overlapping a rotation can find one file under two paths (stat'ed before and after its
  // rename): it is one file, known once, or it would get two names.
  const seen = new Set<string>();
  for (const name of names.filter((candidate) => pattern.test(candidate))) {
    const path = join(dir, name);
    try {
      const stats = await stat(path);
      const identity = `${stats.dev}:${stats.ino}`;
      if (stats.isFile() && !seen.has(identity)) {
        seen.add(identity);
        observations.push({ path, stats });
      }
    } catch (error) {
      if (!isNotFound(error)) throw error; // renamed away since readdir: the next scan sees it
    }
  }
  return observations;
}

async function scanDirectory(root: string): Promise<LiveLogFile[]> {
  const files: LiveLogFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(path);
      } else if (entry.isFile()) {
        try {
          const stats = await stat(path);
          files.push({
            name: relative(root, path).split(sep).join('/'),
            path,
            size: stats.size,
            lastWritten: Math.floor(stats.mtimeMs),
          });
        } catch (error) {
          if (!isNotFound(error)) throw error;
        }
      }
    }
  };
  await walk(root);
  return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function loadState(stateFile: string): Promise<StateFileContent> {
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return { version: STATE_VERSION, instances: {} };
    throw error;
  }
  const parsed = JSON.parse(text) as Partial<StateFileContent>;
  if (parsed.version !== STATE_VERSION || typeof parsed.instances !== 'object' || parsed.instances === null) {
    throw new Error(`${stateFile}: not an rds-endpoint state file (version ${STATE_VERSION})`);
  }
  return { version: STATE_VERSION, instances: parsed.instances };
}
