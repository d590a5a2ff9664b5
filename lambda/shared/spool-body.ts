/**
 * The body of a sealed spool's PUT: the spool file read through one reused buffer, instead of
 * fs.ReadStream's new buffer per chunk.
 *
 * Why it matters: every new buffer counts as V8 external memory until a garbage collection frees it.
 * Storing a GiB allocated a GiB of them, which kept V8 starting a full mark-compact every few MB of
 * upload (100-190 per GiB). Measured on the bench's 1 GiB file, the downloader's CPU fell from 9-10 s
 * to 5.5-6.5 s with the buffer reused.
 *
 * When a buffer may be refilled: only when nothing read before can still be in use, i.e. this stream
 * holds no unread chunk and it is piped into an `http.ClientRequest` whose `writableLength` is 0 (every
 * write it was given has completed: the bytes are in the kernel, which copied them). Any other
 * consumer gets a new buffer per chunk, exactly as fs.ReadStream would: a Transform, a collector or an
 * iterator may keep a chunk after accepting it. The PUT's SHA-256 makes S3 refuse a body that differs
 * from the spool in any case.
 */
import { close, open, read } from 'node:fs';
import { ClientRequest } from 'node:http';
import { Readable } from 'node:stream';

/** Read size: large enough that the per-chunk cost of the stream and the socket stays small. */
export const SPOOL_BODY_CHUNK_BYTES = 256 * 1024;

export class SpoolBody extends Readable {
  private fd: number | undefined;
  private position = 0;
  private buffer: Buffer | undefined;
  private request: ClientRequest | undefined;
  /** Runs the close that `_destroy` deferred because a read was still using the file. */
  private afterRead: (() => void) | undefined;
  private readInFlight = false;
  /** Chunks read into the reused buffer, and into a new one. */
  readonly chunks = { reused: 0, fresh: 0 };

  constructor(
    private readonly path: string,
    /** The sealed length: reading stops there, and a shorter file is an error. */
    private readonly length: number,
    private readonly chunkBytes = SPOOL_BODY_CHUNK_BYTES,
  ) {
    // No read-ahead: a chunk is read only when the consumer asks for one, which for a piped request is
    // after its previous writes completed, so the one buffer can take it.
    super({ highWaterMark: 0 });
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    if (destination instanceof ClientRequest) this.request = destination;
    return super.pipe(destination, options);
  }

  override _read(): void {
    if (this.fd !== undefined) {
      this.readChunk(this.fd);
      return;
    }
    // Opened on the first read, not in _construct: a stream without read-ahead would not read after it.
    open(this.path, 'r', (error, fd) => {
      if (error) {
        this.destroy(error);
      } else if (this.destroyed) {
        close(fd, () => undefined);
      } else {
        this.fd = fd;
        this.readChunk(fd);
      }
    });
  }

  private readChunk(fd: number): void {
    const remaining = this.length - this.position;
    if (remaining <= 0) {
      this.push(null);
      return;
    }
    const buffer = this.bufferToFill();
    this.readInFlight = true;
    read(fd, buffer, 0, Math.min(buffer.length, remaining), this.position, (error, bytesRead) => {
      this.readInFlight = false;
      if (this.afterRead) {
        this.afterRead();
      } else if (error) {
        this.destroy(error);
      } else if (bytesRead === 0) {
        this.destroy(new Error(`spool ${this.path} holds ${this.position} bytes, not the ${this.length} sealed`));
      } else {
        this.position += bytesRead;
        this.push(buffer.subarray(0, bytesRead));
      }
    });
  }

  private bufferToFill(): Buffer {
    const consumed = this.request !== undefined && this.readableLength === 0 && this.request.writableLength === 0;
    if (consumed && this.buffer) {
      this.chunks.reused++;
      return this.buffer;
    }
    this.chunks.fresh++;
    this.buffer = Buffer.allocUnsafe(this.chunkBytes);
    return this.buffer;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    if (fd === undefined) {
      callback(error);
      return;
    }
    const closeFile = (): void => {
      this.fd = undefined;
      this.afterRead = undefined;
      close(fd, (closeError) => callback(error ?? closeError));
    };
    // A read in flight still uses the descriptor: closing it now could let a newly opened file take its
    // number under that read.
    if (this.readInFlight) this.afterRead = closeFile;
    else closeFile();
  }
}
