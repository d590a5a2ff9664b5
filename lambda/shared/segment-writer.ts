/**
 * S3 segment objects. Pages are appended to a spool file while their SHA-256 is computed
 * incrementally; the spool is then stored as ONE object with a single PutObject that streams the file
 * and carries the digest, so S3 verifies every byte and memory never holds more than one page.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export interface StoredObject {
  key: string;
  bytes: number;
  /** Base64 SHA-256 of the object, as S3's x-amz-checksum-sha256 reports it. */
  sha256: string;
}

/** One segment being assembled on local storage. Call `discard()` in a finally block. */
export class SegmentSpool {
  private handle: FileHandle | undefined;
  private hash: Hash = createHash('sha256');
  private length = 0;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly path: string,
  ) {}

  get bytes(): number {
    return this.length;
  }

  async append(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    this.handle ??= await open(this.path, 'w');
    await this.handle.write(data);
    this.hash.update(data);
    this.length += data.length;
  }

  /** Stores the spooled bytes under `key` and empties the spool for the next segment. */
  async store(key: string): Promise<StoredObject> {
    if (this.length === 0) throw new Error(`refusing to store an empty segment at ${key}`);
    await this.closeFile();
    const sha256 = this.hash.digest('base64');
    const bytes = this.length;
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: createReadStream(this.path),
        ContentLength: bytes,
        ChecksumSHA256: sha256,
        ContentType: 'text/plain; charset=utf-8',
      }),
    );
    await rm(this.path, { force: true });
    this.hash = createHash('sha256');
    this.length = 0;
    return { key, bytes, sha256 };
  }

  /** Removes the spool file whatever happened. */
  async discard(): Promise<void> {
    await this.closeFile();
    await rm(this.path, { force: true });
  }

  private async closeFile(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}

export class SegmentWriter {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly spoolDir: string,
  ) {}

  openSpool(): SegmentSpool {
    return new SegmentSpool(this.s3, this.bucket, join(this.spoolDir, `segment-${randomUUID()}.spool`));
  }
}
