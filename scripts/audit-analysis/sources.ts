/**
 * Where audit-log bytes come from: the backup bucket (objects `logs/{instance}/{file}/{start}-{end}`,
 * see lambda/shared/contract.ts) or a local folder of raw audit files (the local MariaDB lab).
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { parseSegmentObjectKey } from '../../lambda/shared/contract';

/** A run of bytes to read as one text stream (one local file, or contiguous objects of one log file). */
export interface LogStream {
  /** Shown in reports and evidence. */
  label: string;
  /** Distinct objects or files this stream reads (for progress output). */
  parts: string[];
  bytes: number;
  open(): AsyncIterable<Uint8Array>;
}

export interface LogSource {
  describe(): string;
  /**
   * True when everything once listed never changes (S3 objects are written once), so a later poll
   * only needs what is new; false for local files that grow and rotate (re-read every poll).
   */
  readonly appendOnly: boolean;
  /** Streams to read now; with `exclude`, parts already read are left out. */
  list(exclude?: ReadonlySet<string>): Promise<LogStream[]>;
}

/** Every regular file below `dir` modified at or after `sinceMs` (older rotated files cannot hold the run). */
export function directorySource(dir: string, sinceMs: number): LogSource {
  async function walk(folder: string): Promise<string[]> {
    const entries = await readdir(folder, { withFileTypes: true });
    const files: string[] = [];
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) files.push(...(await walk(path)));
      else if (entry.isFile()) files.push(path);
    }
    return files;
  }
  return {
    appendOnly: false,
    describe: () => `directory ${dir} (files modified since ${new Date(sinceMs).toISOString()})`,
    async list() {
      const streams: LogStream[] = [];
      for (const path of await walk(dir)) {
        const info = await stat(path);
        if (info.mtimeMs < sinceMs) continue;
        streams.push({ label: path, parts: [path], bytes: info.size, open: () => createReadStream(path) });
      }
      return streams;
    },
  };
}

/**
 * Created once. The endpoint comes from the SDK's standard settings (AWS_ENDPOINT_URL_S3 for the local
 * lab); a local endpoint on an address or `localhost` has no per-bucket host names, hence path style.
 */
const s3 = new S3Client({
  forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
});

interface ListedObject {
  key: string;
  size: number;
  group: string;
  start?: number;
  end?: number;
}

async function* objectBody(bucket: string, key: string): AsyncGenerator<Uint8Array> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = response.Body as AsyncIterable<Uint8Array> | undefined;
  if (!body) throw new Error(`s3://${bucket}/${key} returned no body`);
  yield* body;
}

/**
 * Backed-up objects under `prefix` last modified at or after `sinceMs`. Objects of one log file that
 * continue each other (`end` of one = `start` of the next) are read as one stream, so a line is never
 * split by an object boundary.
 */
export function s3Source(bucket: string, prefix: string, sinceMs: number): LogSource {
  return {
    appendOnly: true,
    describe: () => `s3://${bucket}/${prefix} (objects modified since ${new Date(sinceMs).toISOString()})`,
    async list(exclude = new Set<string>()) {
      const objects: ListedObject[] = [];
      for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix })) {
        for (const item of page.Contents ?? []) {
          if (!item.Key || exclude.has(item.Key)) continue;
          if (item.LastModified && item.LastModified.getTime() < sinceMs) continue;
          const segment = parseSegmentObjectKey(item.Key);
          objects.push({
            key: item.Key,
            size: item.Size ?? 0,
            group: segment ? `${segment.instance}/${segment.logFileName}` : item.Key,
            start: segment?.start,
            end: segment?.end,
          });
        }
      }
      objects.sort((a, b) => (a.group === b.group ? (a.start ?? 0) - (b.start ?? 0) : a.group < b.group ? -1 : 1));

      const streams: LogStream[] = [];
      let run: ListedObject[] = [];
      const flush = (): void => {
        if (run.length === 0) return;
        const parts = run.map((o) => o.key);
        streams.push({
          label: `s3://${bucket}/${parts[0]}${parts.length > 1 ? ` (+${parts.length - 1} contiguous)` : ''}`,
          parts,
          bytes: run.reduce((sum, o) => sum + o.size, 0),
          async *open() {
            for (const key of parts) yield* objectBody(bucket, key);
          },
        });
        run = [];
      };
      for (const object of objects) {
        const previous = run[run.length - 1];
        const continues = previous && previous.group === object.group && previous.end !== undefined && previous.end === object.start;
        if (!continues) flush();
        run.push(object);
      }
      flush();
      return streams;
    },
  };
}
