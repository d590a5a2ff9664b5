/**
 * The lab's oracle: every byte the source wrote is stored exactly once, byte-identical, and the
 * ledger agrees. For every source file it compares three independent records of the same bytes:
 *
 * - the source file (size, SHA-256 of the whole file and of every stored range),
 * - the S3 objects under the file's prefix (key ranges contiguous from 0, no gap, no overlap = no
 *   duplicate byte, each body's length and SHA-256, the checksum S3 reports, the concatenation's
 *   SHA-256),
 * - the ledger item (status, BackedUpBytes, and per segment the range and SHA-256).
 *
 * `judgeFile` is pure (digests in, verdict out) so it is unit-tested on synthetic cases; the collector
 * reads the evidence from disk, S3 and DynamoDB with streaming hashes (memory does not grow with file
 * size). The fault suite reuses both.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import {
  LEDGER_ATTR,
  LEDGER_KEY,
  LedgerItem,
  LedgerStatus,
  LOG_OBJECT_PREFIX,
  logFilePrefix,
  parseSegmentObjectKey,
} from '../../lambda/shared/contract';
import { toLedgerItem } from '../../lambda/shared/ledger';
import type { ReconcileSummary } from '../../lambda/shared/reconcile';
import { LineTooLongError } from '../../lambda/shared/rds-log-reader';

export type ProblemCode =
  | 'SOURCE_MISSING'
  | 'NOT_IN_LEDGER'
  | 'LEDGER_MALFORMED'
  | 'STATUS_NOT_DONE'
  | 'UNEXPECTED_LOST'
  | 'NOT_MARKED_LOST'
  | 'NOT_MARKED_FAILED'
  | 'NOT_STORED_UP_TO_UNREADABLE_LINE'
  | 'NOT_CAUGHT_UP'
  | 'STORED_BEYOND_SOURCE'
  | 'BACKED_UP_BYTES_MISMATCH'
  | 'UNPARSEABLE_KEY'
  | 'GAP'
  | 'OVERLAP'
  | 'OBJECT_SIZE_MISMATCH'
  | 'OBJECT_CHECKSUM_MISSING'
  | 'OBJECT_CHECKSUM_MISMATCH'
  | 'CONTENT_MISMATCH'
  | 'FILE_HASH_MISMATCH'
  | 'LEDGER_SEGMENTS_MISMATCH'
  | 'LEDGER_SEGMENT_SHA_MISMATCH'
  | 'ORPHAN_OBJECT'
  | 'ORPHAN_LEDGER_ITEM'
  /**
   * Lab-level checks (lab.ts): messages in a dead-letter queue, the lab host's own test failing, the
   * reconciler failing or reporting findings on the healthy lab, a ledger invariant broken on a tick.
   */
  | 'DEAD_LETTERS'
  | 'AUDIT_TEST_FAILED'
  | 'RECONCILER_FAILED'
  | 'RECONCILER_FINDINGS'
  | 'LEDGER_INVARIANT';

export interface Problem {
  code: ProblemCode;
  detail: string;
}

export interface StoredObjectEvidence {
  key: string;
  /** Bytes in the object body. */
  bytes: number;
  /** Base64 SHA-256 of the body as read back. */
  sha256: string;
  /** Base64 SHA-256 S3 reports for the object (x-amz-checksum-sha256), if any. */
  checksumSha256?: string;
}

export interface SourceEvidence {
  size: number;
  /** Base64 SHA-256 of the whole file. */
  sha256: string;
  /** Base64 SHA-256 of source bytes [start, end), keyed `${start}-${end}`. */
  slices: Record<string, string>;
}

export interface FileEvidence {
  instance: string;
  logFileName: string;
  sourcePath?: string;
  /** Absent when the source file no longer exists. */
  source?: SourceEvidence;
  /** The file's objects in key order. */
  objects: StoredObjectEvidence[];
  /** Base64 SHA-256 of the objects' bodies concatenated in key order. */
  storedSha256: string;
  /** Raw ledger item as read from the table, absent when there is none. */
  ledger?: Record<string, unknown>;
  /** The scenario removed this file before it could be backed up: LOST is the right outcome. */
  expectLost?: boolean;
  /**
   * The file holds a line RDS cannot return whole, starting at this byte: the right outcome is FAILED
   * with exactly the bytes before it stored.
   */
  expectFailedAt?: number;
}

export interface FileReport {
  instance: string;
  logFileName: string;
  sourcePath?: string;
  status: LedgerStatus | 'NO_LEDGER_ITEM';
  sourceBytes: number | null;
  storedBytes: number;
  ledgerBackedUpBytes: number | null;
  objects: number;
  sourceSha256: string | null;
  storedSha256: string;
  problems: Problem[];
  ok: boolean;
}

export interface VerificationReport {
  ok: boolean;
  generatedAt: string;
  files: FileReport[];
  /** Objects and ledger items that belong to no source file. */
  orphans: Problem[];
  totals: {
    files: number;
    filesOk: number;
    sourceBytes: number;
    storedBytes: number;
    objects: number;
    problems: number;
    byStatus: Record<string, number>;
  };
}

export const sliceKey = (start: number, end: number): string => `${start}-${end}`;

const EMPTY_SHA256 = createHash('sha256').digest('base64');

/** The verdict on one file (pure). */
export function judgeFile(evidence: FileEvidence): FileReport {
  const problems: Problem[] = [];
  const problem = (code: ProblemCode, detail: string): void => {
    problems.push({ code, detail });
  };
  const { source } = evidence;

  let ledger: LedgerItem | undefined;
  if (evidence.ledger) {
    try {
      ledger = toLedgerItem(evidence.ledger);
    } catch (error) {
      problem('LEDGER_MALFORMED', (error as Error).message);
    }
  } else {
    problem('NOT_IN_LEDGER', 'no ledger item for this file');
  }

  // Object ranges: contiguous from 0, no gap, no overlap, body length as the key says.
  let storedEnd = 0;
  let storedBytes = 0;
  const ranges: Array<{ start: number; end: number; object: StoredObjectEvidence }> = [];
  for (const object of evidence.objects) {
    storedBytes += object.bytes;
    const parsed = parseSegmentObjectKey(object.key);
    if (!parsed || parsed.instance !== evidence.instance || parsed.logFileName !== evidence.logFileName) {
      problem('UNPARSEABLE_KEY', `${object.key} is not a segment key of this file`);
      continue;
    }
    ranges.push({ start: parsed.start, end: parsed.end, object });
  }
  ranges.sort((a, b) => a.start - b.start || a.end - b.end);
  for (const { start, end, object } of ranges) {
    if (start > storedEnd) problem('GAP', `bytes ${storedEnd}-${start} are not stored (next object ${object.key})`);
    if (start < storedEnd) problem('OVERLAP', `${object.key} stores bytes ${start}-${Math.min(end, storedEnd)} a second time`);
    if (object.bytes !== end - start) {
      problem('OBJECT_SIZE_MISMATCH', `${object.key} holds ${object.bytes} bytes, its key says ${end - start}`);
    }
    if (object.checksumSha256 === undefined) {
      problem('OBJECT_CHECKSUM_MISSING', `${object.key} was stored without a SHA-256 checksum`);
    } else if (object.checksumSha256 !== object.sha256) {
      problem('OBJECT_CHECKSUM_MISMATCH', `${object.key}: S3 checksum ${object.checksumSha256}, body ${object.sha256}`);
    }
    if (source) {
      const expected = source.slices[sliceKey(start, end)];
      if (end > source.size) {
        problem('STORED_BEYOND_SOURCE', `${object.key} ends at ${end}, the source has ${source.size} bytes`);
      } else if (expected !== undefined && expected !== object.sha256) {
        problem('CONTENT_MISMATCH', `${object.key} differs from source bytes ${start}-${end}`);
      }
    }
    storedEnd = Math.max(storedEnd, end);
  }
  if (ranges.length === 0 && evidence.storedSha256 !== EMPTY_SHA256) {
    problem('FILE_HASH_MISMATCH', 'no objects, yet the stored digest is not that of zero bytes');
  }

  // The concatenation is the restore: it must equal the source prefix it claims to cover.
  if (source && ranges.length > 0 && problems.every((p) => p.code !== 'GAP' && p.code !== 'OVERLAP')) {
    const prefix = storedEnd === source.size ? source.sha256 : source.slices[sliceKey(0, storedEnd)];
    if (prefix !== undefined && prefix !== evidence.storedSha256) {
      problem('FILE_HASH_MISMATCH', `objects concatenated differ from source bytes 0-${storedEnd}`);
    }
  }

  // The ledger must describe exactly the stored objects.
  if (ledger) {
    if (ledger.BackedUpBytes !== storedEnd) {
      problem('BACKED_UP_BYTES_MISMATCH', `ledger BackedUpBytes ${ledger.BackedUpBytes}, objects cover 0-${storedEnd}`);
    }
    const segments = [...(ledger.Segments ?? [])].sort((a, b) => a.Start - b.Start);
    const sameRanges =
      segments.length === ranges.length && segments.every((segment, index) => segment.Start === ranges[index]?.start && segment.End === ranges[index]?.end);
    if (!sameRanges) {
      const described = segments.map((segment) => sliceKey(segment.Start, segment.End)).join(',') || 'none';
      const stored = ranges.map((range) => sliceKey(range.start, range.end)).join(',') || 'none';
      problem('LEDGER_SEGMENTS_MISMATCH', `ledger segments [${described}], objects [${stored}]`);
    } else {
      segments.forEach((segment, index) => {
        const object = ranges[index]?.object;
        if (object && segment.Sha256 !== object.sha256) {
          problem('LEDGER_SEGMENT_SHA_MISMATCH', `segment ${sliceKey(segment.Start, segment.End)}: ledger ${segment.Sha256}, object ${object.sha256}`);
        }
      });
    }
  }

  // Status: DONE and complete, LOST exactly when the scenario made the file vanish, FAILED with every
  // byte before an unreadable line stored when the scenario wrote one.
  const status = ledger?.Status;
  const { expectFailedAt } = evidence;
  if (expectFailedAt !== undefined) {
    if (status !== LedgerStatus.FAILED) problem('NOT_MARKED_FAILED', `the file holds a line longer than a page at byte ${expectFailedAt}, status is ${status ?? 'absent'}`);
    if (storedEnd !== expectFailedAt) {
      problem('NOT_STORED_UP_TO_UNREADABLE_LINE', `bytes 0-${storedEnd} are stored; the complete lines end at byte ${expectFailedAt}, where the unreadable line starts`);
    }
  } else if (evidence.expectLost) {
    if (status !== LedgerStatus.LOST) problem('NOT_MARKED_LOST', `the file vanished before backup, status is ${status ?? 'absent'}`);
  } else if (status === LedgerStatus.LOST) {
    problem('UNEXPECTED_LOST', `marked LOST${ledger?.LastError ? ` (${ledger.LastError})` : ''}`);
  } else if (status !== undefined && status !== LedgerStatus.DONE) {
    problem('STATUS_NOT_DONE', `status ${status}${ledger?.LastError ? ` (${ledger.LastError})` : ''}`);
  }
  if (!source && !evidence.expectLost) problem('SOURCE_MISSING', 'the source file no longer exists');
  if (source && !evidence.expectLost && expectFailedAt === undefined && storedEnd < source.size) {
    problem('NOT_CAUGHT_UP', `${source.size - storedEnd} of ${source.size} source bytes are not stored`);
  }

  return {
    instance: evidence.instance,
    logFileName: evidence.logFileName,
    ...(evidence.sourcePath ? { sourcePath: evidence.sourcePath } : {}),
    status: status ?? 'NO_LEDGER_ITEM',
    sourceBytes: source?.size ?? null,
    storedBytes,
    ledgerBackedUpBytes: ledger?.BackedUpBytes ?? null,
    objects: evidence.objects.length,
    sourceSha256: source?.sha256 ?? null,
    storedSha256: evidence.storedSha256,
    problems,
    ok: problems.length === 0,
  };
}

export function summarize(files: FileReport[], orphans: Problem[], now = new Date()): VerificationReport {
  const byStatus: Record<string, number> = {};
  for (const file of files) byStatus[file.status] = (byStatus[file.status] ?? 0) + 1;
  const problems = files.reduce((sum, file) => sum + file.problems.length, 0) + orphans.length;
  return {
    ok: problems === 0,
    generatedAt: now.toISOString(),
    files,
    orphans,
    totals: {
      files: files.length,
      filesOk: files.filter((file) => file.ok).length,
      sourceBytes: files.reduce((sum, file) => sum + (file.sourceBytes ?? 0), 0),
      storedBytes: files.reduce((sum, file) => sum + file.storedBytes, 0),
      objects: files.reduce((sum, file) => sum + file.objects, 0),
      problems,
      byStatus,
    },
  };
}

// ---- Collecting the evidence ------------------------------------------------------------------------

/** A file the source side knows: where its bytes are now (absent: it vanished). */
export interface SourceFile {
  instance: string;
  logFileName: string;
  path?: string;
  expectLost?: boolean;
  /** See FileEvidence.expectFailedAt. */
  expectFailedAt?: number;
}

export interface VerifyOptions {
  s3: S3Client;
  ledger: DynamoDBDocumentClient;
  bucket: string;
  ledgerTable: string;
  files: readonly SourceFile[];
}

/** The stream's length and SHA-256; `alsoInto` hashes (a running digest over several streams) see the bytes too. */
async function hashStream(stream: Readable, ...alsoInto: Hash[]): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    bytes += buffer.length;
    hash.update(buffer);
    for (const other of alsoInto) other.update(buffer);
  }
  return { sha256: hash.digest('base64'), bytes };
}

async function hashFileRange(path: string, start: number, end: number): Promise<string> {
  if (end <= start) return EMPTY_SHA256;
  return (await hashStream(createReadStream(path, { start, end: end - 1 }))).sha256;
}

async function readSource(path: string, ranges: ReadonlyArray<{ start: number; end: number }>): Promise<SourceEvidence | undefined> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const slices: Record<string, string> = {};
  for (const { start, end } of ranges) {
    if (end <= size && slices[sliceKey(start, end)] === undefined) slices[sliceKey(start, end)] = await hashFileRange(path, start, end);
  }
  return { size, sha256: await hashFileRange(path, 0, size), slices };
}

async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix })) {
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
  }
  return keys.sort();
}

export async function collectFileEvidence(
  options: Omit<VerifyOptions, 'files'>,
  file: SourceFile,
): Promise<FileEvidence> {
  const { s3, bucket } = options;
  const keys = await listKeys(s3, bucket, logFilePrefix(file.instance, file.logFileName));
  const concatenated = createHash('sha256');
  const objects: StoredObjectEvidence[] = [];
  for (const key of keys) {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
    const body = (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body as Readable;
    const { bytes, sha256 } = await hashStream(body, concatenated);
    objects.push({
      key,
      bytes,
      sha256,
      ...(head.ChecksumSHA256 ? { checksumSha256: head.ChecksumSHA256 } : {}),
    });
  }
  const { Item } = await options.ledger.send(
    new GetCommand({
      TableName: options.ledgerTable,
      Key: { [LEDGER_KEY.partitionKey]: file.instance, [LEDGER_KEY.sortKey]: file.logFileName },
      ConsistentRead: true,
    }),
  );
  const ranges = keys.flatMap((key) => {
    const parsed = parseSegmentObjectKey(key);
    return parsed ? [{ start: parsed.start, end: parsed.end }] : [];
  });
  const segments = Array.isArray(Item?.[LEDGER_ATTR.segments]) ? (Item[LEDGER_ATTR.segments] as Array<{ Start?: unknown; End?: unknown }>) : [];
  for (const segment of segments) {
    if (typeof segment.Start === 'number' && typeof segment.End === 'number') ranges.push({ start: segment.Start, end: segment.End });
  }
  const storedEnd = ranges.reduce((max, range) => Math.max(max, range.end), 0);
  ranges.push({ start: 0, end: storedEnd });
  const source = file.path ? await readSource(file.path, ranges) : undefined;
  return {
    instance: file.instance,
    logFileName: file.logFileName,
    ...(file.path ? { sourcePath: file.path } : {}),
    ...(source ? { source } : {}),
    objects,
    storedSha256: concatenated.digest('base64'),
    ...(Item ? { ledger: Item } : {}),
    ...(file.expectLost ? { expectLost: true } : {}),
    ...(file.expectFailedAt !== undefined ? { expectFailedAt: file.expectFailedAt } : {}),
  };
}

/** Every ledger item (the verification and progress output read the whole, small, table). */
export async function scanLedger(ledger: DynamoDBDocumentClient, table: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for await (const page of paginateScan({ client: ledger }, { TableName: table, ConsistentRead: true })) {
    items.push(...((page.Items ?? []) as Record<string, unknown>[]));
  }
  return items;
}

/** One audit file's id across the lab's reports and maps: `instance/LogFileName`. */
export const fileId = (instance: string, logFileName: string): string => `${instance}/${logFileName}`;

/** Verifies every source file, then looks for objects and ledger items that belong to none. */
export async function verifyBackup(options: VerifyOptions): Promise<VerificationReport> {
  const reports: FileReport[] = [];
  for (const file of options.files) {
    reports.push(judgeFile(await collectFileEvidence(options, file)));
  }
  const known = new Set(options.files.map((file) => fileId(file.instance, file.logFileName)));
  const orphans: Problem[] = [];
  for (const key of await listKeys(options.s3, options.bucket, LOG_OBJECT_PREFIX)) {
    const parsed = parseSegmentObjectKey(key);
    if (!parsed || !known.has(fileId(parsed.instance, parsed.logFileName))) {
      orphans.push({ code: 'ORPHAN_OBJECT', detail: `${key} belongs to no source file` });
    }
  }
  for (const item of await scanLedger(options.ledger, options.ledgerTable)) {
    const id = fileId(String(item[LEDGER_ATTR.instance]), String(item[LEDGER_ATTR.file]));
    if (!known.has(id)) {
      orphans.push({ code: 'ORPHAN_LEDGER_ITEM', detail: `ledger item ${id} belongs to no source file (status ${String(item[LEDGER_ATTR.status])})` });
    }
  }
  return summarize(reports, orphans);
}

/** Progress and the catch-up condition: every source file DONE with all of its bytes. */
export interface CatchUpState {
  caughtUp: boolean;
  files: number;
  done: number;
  sourceBytes: number;
  backedUpBytes: number;
  /** Files not yet complete, for the progress line. */
  behind: string[];
  /** Oldest StatusChangedAt among items not yet DONE (epoch ms), for the lag figure. */
  oldestPendingSince?: number;
}

/** What catch-up is judged against: a source file's size and what the lab expects of it. */
export interface CatchUpSource {
  instance: string;
  logFileName: string;
  size: number;
  gone?: boolean;
  expectLost?: boolean;
  expectFailedAt?: number;
}

/**
 * Catch-up sources when the lab cannot see the files (an external RDS endpoint): the ledger's own
 * items, at the sizes RDS listed. A file FAILED at a line RDS cannot return whole stays so on every
 * re-drive, so it is taken as settled where it stopped; the verification then checks that claim against
 * a reference copy read over the RDS API. Waiting for it would only end the run NOT_CAUGHT_UP.
 */
export function ledgerCatchUpSources(ledgerItems: ReadonlyArray<Record<string, unknown>>): CatchUpSource[] {
  return ledgerItems.map((item) => {
    const backedUp = item[LEDGER_ATTR.backedUpBytes];
    const lastError = item[LEDGER_ATTR.lastError];
    const stoppedAtUnreadableLine =
      item[LEDGER_ATTR.status] === LedgerStatus.FAILED &&
      typeof backedUp === 'number' &&
      LineTooLongError.isRecordedReason(typeof lastError === 'string' ? lastError : undefined);
    return {
      instance: String(item[LEDGER_ATTR.instance]),
      logFileName: String(item[LEDGER_ATTR.file]),
      size: Number(item[LEDGER_ATTR.size]),
      ...(stoppedAtUnreadableLine ? { expectFailedAt: backedUp } : {}),
    };
  });
}

export function catchUpState(
  sources: ReadonlyArray<CatchUpSource>,
  ledgerItems: ReadonlyArray<Record<string, unknown>>,
): CatchUpState {
  const byId = new Map(ledgerItems.map((item) => [fileId(String(item[LEDGER_ATTR.instance]), String(item[LEDGER_ATTR.file])), item]));
  const state: CatchUpState = { caughtUp: true, files: sources.length, done: 0, sourceBytes: 0, backedUpBytes: 0, behind: [] };
  for (const source of sources) {
    const item = byId.get(fileId(source.instance, source.logFileName));
    const backedUpValue = item?.[LEDGER_ATTR.backedUpBytes];
    const backedUp = typeof backedUpValue === 'number' ? backedUpValue : 0;
    const status = item?.[LEDGER_ATTR.status];
    state.sourceBytes += source.size;
    state.backedUpBytes += Math.min(backedUp, source.size);
    const complete = source.expectLost
      ? status === LedgerStatus.LOST
      : source.expectFailedAt !== undefined
        ? status === LedgerStatus.FAILED && backedUp === source.expectFailedAt
        : status === LedgerStatus.DONE && backedUp === source.size;
    // A deleted file that is LOST or DONE (with the bytes RDS last listed; it may have grown after that
    // listing), or that the pipeline never listed, can no longer change: waiting for it would only delay
    // the verification, which judges it.
    const settled = source.gone === true && (item === undefined || status === LedgerStatus.LOST || status === LedgerStatus.DONE);
    if (complete) {
      state.done += 1;
    } else if (!settled) {
      state.caughtUp = false;
      state.behind.push(`${fileId(source.instance, source.logFileName)} (${String(status ?? 'unseen')} ${backedUp}/${source.size})`);
      const changedAt = item?.[LEDGER_ATTR.statusChangedAt];
      const since = typeof changedAt === 'number' ? changedAt : undefined;
      if (since !== undefined) state.oldestPendingSince = Math.min(state.oldestPendingSince ?? since, since);
    }
  }
  return state;
}

/**
 * Reconciler findings a healthy lab run does not explain. Only a file that holds a line RDS cannot
 * return whole stays FAILED (on every re-drive), with the bytes from that line on never stored (which
 * the reconciler also reports once they are older than its stale threshold). So up to one FAILED and
 * one UNSTORED_BYTES finding per such file are expected; the verification checks file by file that
 * those are the files FAILED, with exactly the bytes before the line stored.
 */
export function unexplainedReconcilerFindings(summary: ReconcileSummary, filesExpectedFailed: number): number {
  const explained = (['FAILED', 'UNSTORED_BYTES'] as const).reduce(
    (sum, code) => sum + Math.min(summary.findingsByCode[code] ?? 0, filesExpectedFailed),
    0,
  );
  return summary.findings - explained;
}

/**
 * Ledger rules that must hold at any moment, whatever the fault (empty when they all hold): checked by
 * the lab on every tick and by the fault suite after every cycle. `sourceSizes` must be read after the
 * ledger (sources only grow), or a pass storing bytes in between looks like bytes beyond the source.
 */
export function ledgerViolations(items: readonly Record<string, unknown>[], sourceSizes: ReadonlyMap<string, number>): string[] {
  const violations: string[] = [];
  for (const raw of items) {
    const id = fileId(String(raw[LEDGER_ATTR.instance]), String(raw[LEDGER_ATTR.file]));
    let item: LedgerItem;
    try {
      item = toLedgerItem(raw);
    } catch (error) {
      violations.push(`${id}: malformed (${(error as Error).message})`);
      continue;
    }
    let end = 0;
    for (const segment of [...(item.Segments ?? [])].sort((a, b) => a.Start - b.Start)) {
      if (segment.Start !== end) violations.push(`${id}: segment ${segment.Start}-${segment.End} does not start at ${end}`);
      end = segment.End;
    }
    if (end !== item.BackedUpBytes) violations.push(`${id}: segments end at ${end}, BackedUpBytes ${item.BackedUpBytes}`);
    // BackedUpBytes may exceed Size: a pass reads to the end of the file, which can have grown since the
    // detector listed it (the next listing catches Size up). Never beyond what the source wrote, though.
    const sourceSize = sourceSizes.get(id);
    if (sourceSize !== undefined && item.BackedUpBytes > sourceSize) {
      violations.push(`${id}: BackedUpBytes ${item.BackedUpBytes} beyond the ${sourceSize} bytes the source wrote`);
    }
    if (item.PendingSegment && item.PendingSegment.Start !== item.BackedUpBytes) {
      violations.push(`${id}: intent starts at ${item.PendingSegment.Start}, checkpoint is ${item.BackedUpBytes}`);
    }
    if (item.Status === LedgerStatus.DONE) {
      // "Nothing marked DONE that is not": DONE means every byte RDS listed is stored and settled.
      if (item.BackedUpBytes < item.Size) violations.push(`${id}: DONE with ${item.BackedUpBytes} of ${item.Size} listed bytes stored`);
      if (item.PendingSegment) violations.push(`${id}: DONE with an open intent`);
      if (item.ClaimToken) violations.push(`${id}: DONE while still claimed`);
    }
  }
  return violations;
}

/**
 * Checks the invariants against the files' sizes (by instance/file) and returns the violations not
 * seen before, adding them to `seen`: a broken rule is reported once, not on every later check.
 */
export function newLedgerViolations(
  seen: string[],
  items: readonly Record<string, unknown>[],
  files: ReadonlyArray<{ instance: string; logFileName: string; size: number }>,
): string[] {
  const sizes = new Map(files.map((file) => [fileId(file.instance, file.logFileName), file.size]));
  const fresh = ledgerViolations(items, sizes).filter((violation) => !seen.includes(violation));
  seen.push(...fresh);
  return fresh;
}
