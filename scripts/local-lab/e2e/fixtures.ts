/**
 * Fixture audit logs for the fault suite: folders the local RDS endpoint serves as `{kind:'directory'}`
 * instances, grown by appending deterministic MariaDB server_audit lines (same CSV fields and
 * timestamp format as the plugin writes). The same seed gives the same bytes on every run, so a
 * scenario's faults meet the same data each time.
 *
 * A file that "vanishes" (MariaDB deleting an old rotation, RDS dropping a file) is moved out of the
 * served folder into a reference folder: the endpoint no longer has it, while the oracle can still
 * check that whatever was stored is byte-identical to what the source wrote.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LAB_INSTANCE_IDS } from '../lab-session';
import type { SourceFile } from '../verify';

/** Deterministic pseudo-random numbers from a seed (SHA-256 in counter mode: simple, no state to share). */
export class SeededRandom {
  private counter = 0;
  private pool: Buffer = Buffer.alloc(0);

  constructor(private readonly seed: string) {}

  /** A float in [0, 1). */
  next(): number {
    if (this.pool.length < 4) {
      this.pool = createHash('sha256').update(`${this.seed}:${this.counter++}`).digest();
    }
    const value = this.pool.readUInt32BE(0);
    this.pool = this.pool.subarray(4);
    return value / 2 ** 32;
  }

  int(min: number, maxInclusive: number): number {
    return min + Math.floor(this.next() * (maxInclusive - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
}

const USERS = ['sbtest', 'app_rw', 'report_ro', 'lab'] as const;
const HOSTS = ['10.0.1.17', '10.0.2.44', 'localhost', '10.0.1.9'] as const;
const WORDS = ['alpha', 'caf\u00e9', '\u65e5\u672c\u8a9e', 'x<y', 'a&b', 'p>q', 'na\u00efve', '\ud83d\udc2c', 'tab\there', 'quote\\\'s'] as const;

/**
 * server_audit lines: `YYYYMMDD HH:MM:SS,serverhost,username,host,connectionid,queryid,operation,
 * database,object,retcode` with the query in single quotes, one record per line. Mixed with multi-byte
 * UTF-8, XML-special characters and occasional long INSERTs (a few KB), as a real workload has.
 */
export class AuditLineGenerator {
  private readonly random: SeededRandom;
  private epochSeconds: number;
  private queryId = 1000;

  constructor(
    private readonly serverHost: string,
    seed: string,
    /** Longest line generated (bytes, roughly): keep it below the endpoint's page limit. */
    private readonly maxLineBytes = 6000,
  ) {
    this.random = new SeededRandom(seed);
    this.epochSeconds = Date.UTC(2026, 0, 1) / 1000;
  }

  private timestamp(): string {
    this.epochSeconds += this.random.int(0, 2);
    const iso = new Date(this.epochSeconds * 1000).toISOString();
    return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)} ${iso.slice(11, 19)}`;
  }

  private words(count: number): string {
    return Array.from({ length: count }, () => this.random.pick(WORDS)).join(' ');
  }

  line(): string {
    const r = this.random;
    const connection = r.int(1, 64);
    const prefix = `${this.timestamp()},${this.serverHost},${r.pick(USERS)},${r.pick(HOSTS)},${connection}`;
    const kind = r.next();
    if (kind < 0.04) return `${prefix},0,${r.pick(['CONNECT', 'DISCONNECT'])},sbtest,,0\n`;
    this.queryId += 1;
    let statement: string;
    if (kind < 0.08) {
      const payloadWords = Math.floor(r.int(this.maxLineBytes / 4, this.maxLineBytes - 200) / 8);
      statement = `INSERT INTO sbtest1 (k, c, pad) VALUES (${r.int(1, 99999)}, \\'${this.words(payloadWords)}\\', \\'pad\\')`;
    } else if (kind < 0.5) {
      statement = `SELECT c FROM sbtest${r.int(1, 4)} WHERE id=${r.int(1, 99999)}`;
    } else if (kind < 0.8) {
      statement = `UPDATE sbtest${r.int(1, 4)} SET k=k+1, c=\\'${this.words(r.int(1, 12))}\\' WHERE id=${r.int(1, 99999)}`;
    } else {
      statement = `SELECT id, c FROM sbtest1 WHERE c LIKE \\'%${this.words(r.int(1, 4))}%\\' AND k < ${r.int(1, 500)} ORDER BY id`;
    }
    return `${prefix},${this.queryId},QUERY,sbtest,'${statement}',0\n`;
  }

  /** One QUERY line of more than `bytes` bytes (an INSERT of a large value), whatever maxLineBytes says. */
  lineLongerThan(bytes: number): string {
    const prefix = `${this.timestamp()},${this.serverHost},app_rw,10.0.1.17,7,${++this.queryId},QUERY,sbtest,'INSERT INTO blobs VALUES (\\'`;
    const suffix = `\\')',0\n`;
    return `${prefix}${'x'.repeat(Math.max(0, bytes + 1 - prefix.length - suffix.length))}${suffix}`;
  }

  /** Whole lines adding up to at least `bytes` UTF-8 bytes. */
  chunk(bytes: number): Buffer {
    const parts: string[] = [];
    let total = 0;
    while (total < bytes) {
      const line = this.line();
      parts.push(line);
      total += Buffer.byteLength(line);
    }
    return Buffer.from(parts.join(''), 'utf8');
  }
}

export type InstanceRole = keyof typeof LAB_INSTANCE_IDS;

/** One fixture log file of one instance. */
export class FixtureFile {
  /** Where the file went when it vanished (still the source of truth for the oracle). */
  referencePath: string | undefined;
  /** The scenario made it vanish before its bytes could all be stored: the oracle expects LOST. */
  expectLost = false;
  /** Where the first line longer than a page starts: the oracle expects FAILED with the bytes before it stored. */
  expectFailedAt: number | undefined;
  private readonly generator: AuditLineGenerator;

  constructor(
    readonly role: InstanceRole,
    readonly logFileName: string,
    readonly path: string,
    private readonly referenceDir: string,
    seed: string,
    maxLineBytes: number,
  ) {
    this.generator = new AuditLineGenerator(LAB_INSTANCE_IDS[role], `${seed}/${role}/${logFileName}`, maxLineBytes);
    mkdirSync(dirname(path), { recursive: true });
    appendFileSync(path, '');
  }

  get instance(): string {
    return LAB_INSTANCE_IDS[this.role];
  }

  get vanished(): boolean {
    return this.referencePath !== undefined;
  }

  /** Bytes the source wrote so far. */
  get size(): number {
    return statSync(this.referencePath ?? this.path).size;
  }

  /** Appends whole lines (at least `bytes`); returns how many bytes were written. */
  append(bytes: number): number {
    if (this.vanished) throw new Error(`${this.logFileName} has vanished; it cannot grow`);
    const data = this.generator.chunk(bytes);
    appendFileSync(this.path, data);
    return data.length;
  }

  /** Appends one line RDS cannot return whole (longer than `pageLimitBytes`). */
  appendUnreadableLine(pageLimitBytes: number): void {
    if (this.vanished) throw new Error(`${this.logFileName} has vanished; it cannot grow`);
    this.expectFailedAt ??= this.size;
    appendFileSync(this.path, this.generator.lineLongerThan(pageLimitBytes));
  }

  /** Removes the file from what the endpoint serves (kept aside for the oracle). */
  vanish(options: { expectLost: boolean }): void {
    if (this.vanished) return;
    const reference = join(this.referenceDir, this.role, this.logFileName);
    mkdirSync(dirname(reference), { recursive: true });
    renameSync(this.path, reference);
    this.referencePath = reference;
    this.expectLost = options.expectLost;
  }

  /** How the oracle sees this file. */
  source(): SourceFile & { size: number } {
    return {
      instance: this.instance,
      logFileName: this.logFileName,
      path: this.referencePath ?? this.path,
      size: this.size,
      ...(this.expectLost ? { expectLost: true } : {}),
      ...(this.expectFailedAt !== undefined ? { expectFailedAt: this.expectFailedAt } : {}),
    };
  }
}

/** The served folders of the writer and the reader, and every file created in them. */
export class FixtureLogs {
  readonly dirs: Record<InstanceRole, string>;
  readonly files: FixtureFile[] = [];
  private readonly referenceDir: string;
  private minute = 0;

  constructor(
    root: string,
    private readonly seed: string,
    private readonly maxLineBytes = 6000,
  ) {
    this.dirs = { writer: join(root, 'served', 'writer'), reader: join(root, 'served', 'reader') };
    this.referenceDir = join(root, 'vanished');
    for (const dir of Object.values(this.dirs)) mkdirSync(dir, { recursive: true });
  }

  /** A new, empty file under an Aurora-style name (`audit/audit.log.0.2026-01-01-00-MM.0`). */
  create(role: InstanceRole): FixtureFile {
    const stamp = `2026-01-01-${String(Math.floor(this.minute / 60)).padStart(2, '0')}-${String(this.minute % 60).padStart(2, '0')}`;
    this.minute += 1;
    const logFileName = `audit/audit.log.0.${stamp}.0`;
    const file = new FixtureFile(role, logFileName, join(this.dirs[role], logFileName), this.referenceDir, this.seed, this.maxLineBytes);
    this.files.push(file);
    return file;
  }

  /** Creates `perInstance` files per role, each with `bytes` of lines. */
  populate(perInstance: number, bytes: number, roles: readonly InstanceRole[] = ['writer', 'reader']): FixtureFile[] {
    const created: FixtureFile[] = [];
    for (const role of roles) {
      for (let index = 0; index < perInstance; index += 1) {
        const file = this.create(role);
        file.append(bytes);
        created.push(file);
      }
    }
    return created;
  }

  /** What the oracle checks: every file except those that vanished before the pipeline ever saw them. */
  sources(exclude: ReadonlySet<FixtureFile> = new Set()): Array<SourceFile & { size: number }> {
    return this.files.filter((file) => !exclude.has(file)).map((file) => file.source());
  }

  get totalBytes(): number {
    return this.files.reduce((sum, file) => sum + file.size, 0);
  }
}
