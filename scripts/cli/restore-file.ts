/**
 * Restores one audit log file from the bucket: its objects in key order (= byte order), streamed one
 * chunk at a time into a sink, each object's SHA-256 recomputed on the way and compared with the one
 * S3 stored for it and, when the ledger is given, with the ledger's; the ranges must run contiguously
 * from byte 0 (to the ledger's BackedUpBytes, which must name exactly these objects). Any mismatch is
 * a RestoreError: the caller must treat what reached the sink as untrustworthy.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { BackupObjects } from '../../lambda/shared/backup-objects';
import { type LedgerItem, logFilePrefix, parseSegmentObjectKey, segmentObjectKey } from '../../lambda/shared/contract';
import type { Ledger } from '../../lambda/shared/ledger';

export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreError';
  }
}

export interface RestoreSource {
  objects: BackupObjects;
  /** When given, the ledger item must exist and its Segments must be exactly the objects. */
  ledger?: Ledger;
}

export interface RestoreResult {
  instance: string;
  file: string;
  objects: number;
  bytes: number;
  /** SHA-256 of the whole restored file, base64 (as S3 and the ledger write digests) and hex (sha256sum). */
  sha256Base64: string;
  sha256Hex: string;
  /** The ledger item's status when the ledger was consulted (a file not DONE may still grow). */
  ledgerStatus?: string;
}

interface PlannedObject {
  key: string;
  start: number;
  end: number;
  /** The ledger's SHA-256 for it, when the ledger was consulted. */
  ledgerSha256?: string;
}

async function plan(source: RestoreSource, instance: string, file: string): Promise<{ objects: PlannedObject[]; item?: LedgerItem }> {
  const objects: PlannedObject[] = [];
  let covered = 0;
  for await (const listed of source.objects.list(logFilePrefix(instance, file))) {
    const parsed = parseSegmentObjectKey(listed.key);
    if (!parsed || parsed.instance !== instance || parsed.logFileName !== file) {
      throw new RestoreError(`object ${listed.key} under the file's prefix is not one of its segments`);
    }
    if (parsed.start > covered) throw new RestoreError(`bytes ${covered}-${parsed.start} are in no object (gap before ${listed.key})`);
    if (parsed.start < covered) throw new RestoreError(`object ${listed.key} overlaps bytes stored before it (up to ${covered})`);
    if (listed.bytes !== parsed.end - parsed.start) {
      throw new RestoreError(`object ${listed.key} holds ${listed.bytes} bytes for a ${parsed.end - parsed.start}-byte range`);
    }
    objects.push({ key: listed.key, start: parsed.start, end: parsed.end });
    covered = parsed.end;
  }
  if (!source.ledger) {
    if (objects.length === 0) throw new RestoreError(`no objects under ${logFilePrefix(instance, file)}`);
    return { objects };
  }
  const item = await source.ledger.get({ instance, file });
  if (!item) throw new RestoreError(`the ledger has no item for ${instance} ${file}`);
  const recorded = (item.Segments ?? []).map((segment) => segmentObjectKey(instance, file, segment.Start, segment.End));
  const stored = objects.map((object) => object.key);
  if (JSON.stringify(recorded) !== JSON.stringify(stored)) {
    const missing = recorded.filter((key) => !stored.includes(key));
    const extra = stored.filter((key) => !recorded.includes(key));
    throw new RestoreError(
      `the objects are not the ledger's Segments` +
        (missing.length ? `; recorded but not in S3: ${missing.join(', ')}` : '') +
        (extra.length ? `; in S3 but not recorded: ${extra.join(', ')}` : ''),
    );
  }
  if (covered !== item.BackedUpBytes) {
    throw new RestoreError(`the objects end at byte ${covered}, the ledger records ${item.BackedUpBytes} bytes stored`);
  }
  (item.Segments ?? []).forEach((segment, index) => {
    objects[index].ledgerSha256 = segment.Sha256;
  });
  return { objects, item };
}

/** Writes the file to `sink` (never ended here) and returns what was written; throws RestoreError on any mismatch. */
export async function restoreLogFile(
  source: RestoreSource,
  instance: string,
  file: string,
  sink: NodeJS.WritableStream,
): Promise<RestoreResult> {
  const { objects, item } = await plan(source, instance, file);
  // A sink that fails (disk full, closed pipe) ends the restore; the listener stays for late errors.
  const sinkFailure = new Promise<never>((_, reject) => sink.on('error', reject));
  sinkFailure.catch(() => undefined);
  const whole = createHash('sha256');
  let bytes = 0;
  for (const object of objects) {
    const body = await source.objects.open(object.key);
    const hash = createHash('sha256');
    let objectBytes = 0;
    for await (const chunk of body.stream) {
      const data = chunk as Buffer;
      hash.update(data);
      whole.update(data);
      objectBytes += data.length;
      if (!sink.write(data)) await Promise.race([once(sink, 'drain'), sinkFailure]);
    }
    const digest = hash.digest('base64');
    const expectedBytes = object.end - object.start;
    if (objectBytes !== expectedBytes) {
      throw new RestoreError(`object ${object.key} returned ${objectBytes} bytes for a ${expectedBytes}-byte range`);
    }
    if (body.sha256 === undefined) throw new RestoreError(`S3 reports no SHA-256 for ${object.key}; its integrity cannot be shown`);
    if (digest !== body.sha256) {
      throw new RestoreError(`object ${object.key} hashes to ${digest}, but S3 stored ${body.sha256} for it`);
    }
    if (object.ledgerSha256 !== undefined && digest !== object.ledgerSha256) {
      throw new RestoreError(`object ${object.key} hashes to ${digest}, but the ledger recorded ${object.ledgerSha256}`);
    }
    bytes += objectBytes;
  }
  const digest = whole.digest();
  return {
    instance,
    file,
    objects: objects.length,
    bytes,
    sha256Base64: digest.toString('base64'),
    sha256Hex: digest.toString('hex'),
    ...(item ? { ledgerStatus: item.Status } : {}),
  };
}
