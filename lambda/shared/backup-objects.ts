/**
 * Read side of the backup bucket: list objects under a prefix (all pages, key order = offset order
 * within a file), HEAD an object for the SHA-256 S3 stored with it, and read an object's body as a
 * stream. The verifier, the restore command and the downloader's settling of existing objects use it.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';

/** An object as ListObjectsV2 reports it. */
export interface ListedObject {
  key: string;
  bytes: number;
}

/** An object that exists in the bucket, as HeadObject reports it. */
export interface ExistingObject {
  bytes: number;
  /** Base64 SHA-256 S3 keeps for the object; absent when it was stored without one (never by this pipeline). */
  sha256: string | undefined;
}

export interface ObjectBody extends ExistingObject {
  /** The body; read it to the end or destroy it. */
  stream: Readable;
}

/**
 * A HEAD of a missing key answers 404 only to a caller allowed s3:ListBucket; without it S3 answers
 * 403, which is NOT taken as "missing" (that would re-store bytes that may exist): it propagates.
 */
export function isMissingObject(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return error.name === 'NotFound' || error.name === 'NoSuchKey' || status === 404;
}

export class BackupObjects {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  /** Every object under `prefix`, in key order, one page in memory at a time. */
  async *list(prefix: string): AsyncGenerator<ListedObject> {
    for await (const page of paginateListObjectsV2({ client: this.s3 }, { Bucket: this.bucket, Prefix: prefix })) {
      for (const entry of page.Contents ?? []) {
        if (entry.Key === undefined || entry.Size === undefined) {
          throw new Error(`ListObjectsV2 of s3://${this.bucket}/${prefix} returned an entry without key or size`);
        }
        yield { key: entry.Key, bytes: entry.Size };
      }
    }
  }

  /** The object under `key` with the SHA-256 S3 stored for it, or undefined when there is none. */
  async head(key: string): Promise<ExistingObject | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }));
      if (head.ContentLength === undefined) throw new Error(`HeadObject ${key} returned no ContentLength`);
      return { bytes: head.ContentLength, sha256: head.ChecksumSHA256 };
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw error;
    }
  }

  /** The object's body as a stream, with the length and SHA-256 S3 reports for it. */
  async open(key: string): Promise<ObjectBody> {
    const got = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }));
    if (got.Body === undefined || got.ContentLength === undefined) throw new Error(`GetObject ${key} returned no body or length`);
    return { stream: got.Body as Readable, bytes: got.ContentLength, sha256: got.ChecksumSHA256 };
  }

  /** Reads the whole body (streaming, constant memory) and returns its length and base64 SHA-256. */
  async digest(key: string): Promise<{ bytes: number; sha256: string }> {
    const { stream } = await this.open(key);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of stream) {
      const data = chunk as Buffer;
      hash.update(data);
      bytes += data.length;
    }
    return { bytes, sha256: hash.digest('base64') };
  }
}
