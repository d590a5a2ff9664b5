/**
 * S3 segment objects. Pages are appended to a spool file while their SHA-256 is computed
 * incrementally; the spool is then sealed (its length and digest are final, so the ledger can record
 * the intended object before it exists) and stored as ONE object with a single PutObject that streams
 * the file (through one reused buffer: spool-body.ts) and carries the digest, so S3 verifies every byte
 * and memory holds no more than the page being written and the next one.
 *
 * Every PUT is conditional (`If-None-Match: *`): an object is written once and never replaced, not
 * even by a late PUT of a holder that was judged dead. When the key already holds an object, S3
 * answers 412 and the caller settles it as it settles an intent (same bytes: adopt; else: conflict).
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BackupObjects, type ExistingObject } from './backup-objects';
import { SpoolBody } from './spool-body';

const SPOOL_FILE = /^segment-[0-9a-f-]+\.spool$/;

/**
 * A spool file untouched for longer than any Lambda invocation can run (15 minutes) belongs to no
 * living pass: its invocation died (timeout, crash, OOM) before the pass could remove it.
 */
export const ABANDONED_SPOOL_AGE_MS = 20 * 60_000;

/** What a sealed spool will store: its length and base64 SHA-256 (S3's x-amz-checksum-sha256). */
export interface SealedSpool {
  bytes: number;
  sha256: string;
}

export interface StoredObject extends SealedSpool {
  key: string;
}

/**
 * What a store did: wrote the object, or found the key already holding one (S3 refused the
 * conditional PUT; the caller compares the existing object with the sealed bytes).
 */
export type StoreOutcome = { kind: 'stored'; object: StoredObject } | { kind: 'exists'; key: string; sealed: SealedSpool };

/** S3's answer to a conditional PUT whose key holds an object: 412 PreconditionFailed. */
export function isPreconditionFailed(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return error.name === 'PreconditionFailed' || status === 412;
}

/** One segment being assembled on local storage. Call `discard()` in a finally block. */
export class SegmentSpool {
  private handle: FileHandle | undefined;
  private hash: Hash = createHash('sha256');
  private length = 0;
  private sealed: SealedSpool | undefined;
  /** The write in flight (see `append`); it rejects if the write failed. */
  private writing: Promise<void> | undefined;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly path: string,
  ) {}

  get bytes(): number {
    return this.length;
  }

  /**
   * Hashes `data` and starts writing it at the end of the spool, once the previous write has completed:
   * one write is in flight at most, and the caller reads its next page meanwhile instead of waiting for
   * the disk. `data` must stay unchanged until `written` settles. A failed write fails the next append
   * and the seal.
   */
  async append(data: Buffer): Promise<{ written: Promise<void> }> {
    if (data.length === 0) return { written: Promise.resolve() };
    if (this.sealed) throw new Error('cannot append to a sealed spool before it is stored');
    await this.writing;
    this.handle ??= await open(this.path, 'w');
    const position = this.length;
    this.hash.update(data);
    this.length += data.length;
    const written = this.handle.write(data, 0, data.length, position).then(() => undefined);
    // Handled here so that nobody has to await it; the next append or the seal rethrows its failure.
    written.catch(() => undefined);
    this.writing = written;
    return { written };
  }

  /** Fixes the spool's content: no more appends until it is stored. Repeatable. */
  async seal(): Promise<SealedSpool> {
    if (this.length === 0) throw new Error('refusing to seal an empty spool');
    if (!this.sealed) {
      await this.writing;
      await this.closeFile();
      this.sealed = { bytes: this.length, sha256: this.hash.digest('base64') };
    }
    return this.sealed;
  }

  /**
   * Stores the sealed (or sealed now) bytes under `key` unless the key already holds an object, and
   * empties the spool for the next segment either way (the caller never PUTs these bytes again).
   */
  async store(key: string): Promise<StoreOutcome> {
    const sealed = await this.seal();
    const body = new SpoolBody(this.path, sealed.bytes);
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: sealed.bytes,
          // Our digest travels as x-amz-checksum-sha256 (so the SDK computes none of its own); naming the
          // algorithm too makes every S3-compatible store keep it for HeadObject's ChecksumMode, which
          // is how an object left by a dead holder is recognised (moto, for one, keeps it only then).
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: sealed.sha256,
          // Never replace an object (see the module comment).
          IfNoneMatch: '*',
          ContentType: 'text/plain; charset=utf-8',
        }),
      );
    } catch (error) {
      if (!isPreconditionFailed(error)) throw error;
      await this.clear();
      return { kind: 'exists', key, sealed };
    } finally {
      // Closes the file also when the request failed before reading all of it.
      body.destroy();
    }
    await this.clear();
    return { kind: 'stored', object: { key, ...sealed } };
  }

  private async clear(): Promise<void> {
    this.writing = undefined;
    await rm(this.path, { force: true });
    this.hash = createHash('sha256');
    this.length = 0;
    this.sealed = undefined;
  }

  /** Removes the spool file whatever happened. */
  async discard(): Promise<void> {
    await this.closeFile();
    await rm(this.path, { force: true });
  }

  private async closeFile(): Promise<void> {
    // Never close under a write in flight; its failure, if any, is the caller's to report (seal awaited it).
    await this.writing?.catch(() => undefined);
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}

export class SegmentWriter {
  private readonly objects: BackupObjects;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly spoolDir: string,
  ) {
    this.objects = new BackupObjects(s3, bucket);
  }

  openSpool(): SegmentSpool {
    return new SegmentSpool(this.s3, this.bucket, join(this.spoolDir, `segment-${randomUUID()}.spool`));
  }

  /**
   * Removes the spool files of passes that died, so that crashes in a reused execution environment do
   * not fill its /tmp. Judged by age, not by "not mine": SPOOL_DIR can be set to a folder that several
   * living processes share, and age is safe there too. Returns the names.
   */
  async removeAbandonedSpools(now: number): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.spoolDir)) {
      if (!SPOOL_FILE.test(name)) continue;
      const path = join(this.spoolDir, name);
      const modified = await stat(path).then(
        (info) => info.mtimeMs,
        (error: NodeJS.ErrnoException) => {
          // Removed meanwhile by the pass that owned it.
          if (error.code === 'ENOENT') return now;
          throw error;
        },
      );
      if (now - modified < ABANDONED_SPOOL_AGE_MS) continue;
      await rm(path, { force: true });
      removed.push(name);
    }
    return removed;
  }

  /** The object under `key` with its stored SHA-256, or undefined when there is none. */
  async find(key: string): Promise<ExistingObject | undefined> {
    return this.objects.head(key);
  }
}
