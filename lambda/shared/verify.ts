/**
 * Completeness verifier core (no Lambda types, no environment): proves from the ledger, the bucket and
 * RDS's current listing — without the source files — that every byte the ledger says is stored is in
 * S3, unaltered, and that nothing RDS lists is unknown, lost, failed or stuck. The `npm run verify`
 * command and the scheduled reconciler are thin adapters over `verifyBackups`.
 *
 * Per ledger item (Scan or per-instance Query, all pages, strongly consistent):
 * - state: not LOST, not FAILED, no PENDING/IN_PROGRESS/open intent older than the stale threshold,
 *   DONE only with BackedUpBytes >= Size, Segments contiguous from 0 to BackedUpBytes;
 * - against RDS's listing (when RDS is consulted): no bytes RDS has held for the stale threshold that
 *   are not stored, and the file never shrank;
 * - against S3 (ListObjectsV2 of the file's prefix, HeadObject with ChecksumMode): the objects cover
 *   0..BackedUpBytes with no gap or overlap, are exactly the Segments (an object the claim holder is
 *   storing right now excepted), each as long as its range and with the SHA-256 S3 stored equal to the
 *   ledger's; with `deep`, each body is read back and hashed too.
 * Then: every file RDS lists for the instances considered has a ledger item, and every object under
 * the prefix is a segment key of a file the ledger knows.
 *
 * A file is judged from a snapshot while the pipeline keeps working, so an item with findings is read
 * again and, when it changed meanwhile, judged once more from the fresh state; suspected orphan objects
 * and unlisted files are confirmed with a fresh read too. Memory holds one ledger page and the ledger's
 * keys, never the bucket listing.
 */
import { backupLagSeconds } from './backup-lag';
import type { BackupObjects, ListedObject } from './backup-objects';
import {
  LOG_OBJECT_PREFIX,
  LedgerStatus,
  type LedgerItem,
  type Segment,
  logFilePrefix,
  parseSegmentObjectKey,
  segmentObjectKey,
} from './contract';
import { type Ledger, type LogFileListing, type ScannedItem } from './ledger';
import { isInstanceNotFound, type RdsLogReader } from './rds-log-reader';

export const FINDING_CODES = {
  LEDGER_MALFORMED: 'a ledger item does not have the shape the pipeline writes',
  NOT_IN_LEDGER: 'RDS lists a file (not written to for the stale threshold) that has no ledger item',
  UNSTORED_BYTES: 'RDS has held bytes for longer than the stale threshold that are not stored',
  SOURCE_SHRANK: 'RDS lists fewer bytes than the ledger recorded for the file',
  LOST: 'the file disappeared from RDS before all of its bytes were stored',
  FAILED: 'the last backup attempt failed',
  STALE_PENDING: 'PENDING for longer than the stale threshold without a downloader claiming it',
  STALE_IN_PROGRESS: 'IN_PROGRESS for longer than the stale threshold (the claim holder is dead)',
  LEFTOVER_INTENT: 'an intended object (PendingSegment) older than the stale threshold was never settled',
  DONE_INCOMPLETE: 'DONE although fewer bytes are stored than the ledger lists',
  SEGMENTS_INCONSISTENT: "the ledger's Segments do not run contiguously from 0 to BackedUpBytes",
  GAP: 'bytes the ledger says are stored are not covered by any object',
  OVERLAP: 'objects of a file cover the same bytes twice',
  MISSING_OBJECT: 'an object the ledger records is not in the bucket',
  UNRECORDED_OBJECT: "an object of a file is not among the ledger's Segments",
  SIZE_MISMATCH: 'an object is not as long as the byte range its key and the ledger give',
  CHECKSUM_MISSING: 'S3 reports no SHA-256 for an object',
  CHECKSUM_MISMATCH: "the SHA-256 S3 reports for an object differs from the ledger's",
  CONTENT_MISMATCH: "an object's bytes, read back, do not hash to the ledger's SHA-256 (deep mode)",
  UNKNOWN_OBJECT: 'an object under the log prefix whose key is not a segment key',
  ORPHAN_OBJECT: 'a segment object of a file the ledger does not know',
  VERIFY_INCOMPLETE: 'the run stopped before it checked every object (time budget)',
} as const;

export type FindingCode = keyof typeof FINDING_CODES;

export interface Finding {
  code: FindingCode;
  instance: string;
  file?: string;
  key?: string;
  detail: string;
}

/** What the objects of one file look like, as S3 reports them. */
export interface ObjectEvidence {
  key: string;
  start: number;
  end: number;
  /** Length S3 lists for the object. */
  bytes: number;
  /** SHA-256 S3 stored with the object (HeadObject, ChecksumMode ENABLED); undefined when none. */
  checksumSha256: string | undefined;
  /** Deep mode: length and SHA-256 of the body as read back. */
  content?: { bytes: number; sha256: string };
}

export interface JudgePolicy {
  now: number;
  staleMs: number;
}

export interface VerifyOptions extends JudgePolicy {
  /** Only these instances (their ledger items, objects and RDS files); undefined: every instance. */
  instances?: readonly string[];
  /** Read every object back and hash it. */
  deep?: boolean;
  /** Inspect the objects of DONE items only when they changed within this many ms; undefined: all. */
  windowMs?: number;
  /** With `windowMs`: the older DONE items of this slice are inspected too (see VerifySweep). */
  sweep?: VerifySweep;
  /** Objects inspected in parallel. */
  concurrency?: number;
  /** Polled between items: true ends the object inspection early (reported as VERIFY_INCOMPLETE). */
  shouldStop?: () => boolean;
}

/**
 * A rolling sweep over the DONE items outside the window: each item belongs to one of `slices` slices
 * (a stable hash of its key, sweepSliceOf), and a run inspects the slice it is given. Runs that are
 * given slices 0..slices-1 in turn inspect every object between them.
 */
export interface VerifySweep {
  slice: number;
  slices: number;
}

/** FNV-1a over the item's key: stable across runs and processes, spread evenly over the slices. */
export function sweepSliceOf(instance: string, file: string, slices: number): number {
  let hash = 0x811c9dc5;
  for (const char of `${instance}/${file}`) {
    hash ^= char.codePointAt(0) as number;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % slices;
}

export interface VerifyDependencies {
  ledger: Ledger;
  objects: BackupObjects;
  /** RDS's side; undefined: RDS is not consulted (no NOT_IN_LEDGER / UNSTORED_BYTES / SOURCE_SHRANK). */
  rds?: {
    reader: RdsLogReader;
    /** The instances whose files to compare with the ledger. */
    instances: () => Promise<readonly string[]>;
  };
}

export interface VerifyTotals {
  ledgerItems: number;
  malformedItems: number;
  itemsByStatus: Record<LedgerStatus, number>;
  /** Items whose objects were listed and checked. */
  itemsInspected: number;
  objectsChecked: number;
  bytesChecked: number;
  /** Deep mode: objects read back and hashed. */
  objectsHashed: number;
  bytesHashed: number;
  /** Objects seen under the log prefix(es) in the orphan check. */
  objectsListed: number;
  rdsConsulted: boolean;
  instancesListed: string[];
  /** Instances RDS says do not exist (their items are still verified). */
  instancesGone: string[];
  filesListed: number;
  /** Bytes of the ledger not stored yet, and the backup lag over all items (backup-lag.ts). */
  bytesNotStored: number;
  backupLagSeconds: number;
  findings: number;
  findingsByCode: Partial<Record<FindingCode, number>>;
}

export interface VerifyReport {
  startedAt: string;
  finishedAt: string;
  options: { instances?: readonly string[]; deep: boolean; staleMinutes: number; windowMs?: number; sweep?: VerifySweep };
  totals: VerifyTotals;
  findings: Finding[];
}

export interface VerifyResult {
  report: VerifyReport;
  /** Items found FAILED, stale PENDING or stale IN_PROGRESS, as last read: the reconciler re-drives them. */
  attention: LedgerItem[];
}

const DEFAULT_CONCURRENCY = 8;
const MINUTE_MS = 60_000;

const minutes = (ms: number) => `${Math.floor(ms / MINUTE_MS)} min`;
const iso = (ms: number) => new Date(ms).toISOString();

function finding(item: Pick<LedgerItem, 'DBInstanceIdentifier' | 'LogFileName'>, code: FindingCode, detail: string, key?: string): Finding {
  return { code, instance: item.DBInstanceIdentifier, file: item.LogFileName, ...(key ? { key } : {}), detail };
}

function isStale(item: LedgerItem, policy: JudgePolicy): boolean {
  return policy.now - item.StatusChangedAt >= policy.staleMs;
}

const ATTENTION_CODES: ReadonlySet<FindingCode> = new Set(['FAILED', 'STALE_PENDING', 'STALE_IN_PROGRESS']);

/** The item's own state: status, intent and Segments. */
export function judgeItemState(item: LedgerItem, policy: JudgePolicy): Finding[] {
  const findings: Finding[] = [];
  const age = policy.now - item.StatusChangedAt;
  const stored = `${item.BackedUpBytes} of ${item.Size} bytes stored`;
  switch (item.Status) {
    case LedgerStatus.LOST:
      findings.push(finding(item, 'LOST', `${stored}; ${item.LastError ?? 'no reason recorded'}`));
      break;
    case LedgerStatus.FAILED:
      findings.push(
        finding(item, 'FAILED', `since ${iso(item.StatusChangedAt)}, attempts ${item.Attempts ?? 0}, ${stored}: ${item.LastError ?? 'no error recorded'}`),
      );
      break;
    case LedgerStatus.PENDING:
      if (isStale(item, policy)) findings.push(finding(item, 'STALE_PENDING', `PENDING for ${minutes(age)} (since ${iso(item.StatusChangedAt)}), ${stored}`));
      break;
    case LedgerStatus.IN_PROGRESS:
      if (isStale(item, policy)) {
        findings.push(finding(item, 'STALE_IN_PROGRESS', `claimed ${minutes(age)} ago (${iso(item.StatusChangedAt)}) and not released, ${stored}`));
      }
      break;
    case LedgerStatus.DONE:
      if (item.BackedUpBytes < item.Size) findings.push(finding(item, 'DONE_INCOMPLETE', stored));
      break;
  }
  if (item.PendingSegment && isStale(item, policy)) {
    const intent = item.PendingSegment;
    findings.push(
      finding(
        item,
        'LEFTOVER_INTENT',
        `intent for bytes ${intent.Start}-${intent.End} (SHA-256 ${intent.Sha256}) open on a ${item.Status} item unchanged for ${minutes(age)}`,
        segmentObjectKey(item.DBInstanceIdentifier, item.LogFileName, intent.Start, intent.End),
      ),
    );
  }
  let offset = 0;
  for (const segment of item.Segments ?? []) {
    if (segment.Start !== offset) {
      findings.push(finding(item, 'SEGMENTS_INCONSISTENT', `segment ${segment.Start}-${segment.End} follows bytes 0-${offset}`));
      return findings;
    }
    offset = segment.End;
  }
  if (offset !== item.BackedUpBytes) {
    findings.push(finding(item, 'SEGMENTS_INCONSISTENT', `Segments cover bytes 0-${offset} but BackedUpBytes is ${item.BackedUpBytes}`));
  }
  return findings;
}

/** The item against what RDS lists for its file now (undefined: RDS does not list it). */
export function judgeAgainstListing(item: LedgerItem, listed: LogFileListing | undefined, policy: JudgePolicy): Finding[] {
  if (!listed) return [];
  const findings: Finding[] = [];
  if (listed.Size < item.Size) {
    findings.push(finding(item, 'SOURCE_SHRANK', `RDS lists ${listed.Size} bytes, the ledger recorded ${item.Size}`));
  }
  const heldFor = policy.now - listed.LastWritten;
  if (item.Status !== LedgerStatus.LOST && listed.Size > item.BackedUpBytes && heldFor >= policy.staleMs) {
    findings.push(
      finding(
        item,
        'UNSTORED_BYTES',
        `bytes ${item.BackedUpBytes}-${listed.Size} are not stored; RDS last wrote the file ${minutes(heldFor)} ago (${item.Status})`,
      ),
    );
  }
  return findings;
}

/**
 * The objects under the item's prefix (segment keys of this file, in key order) against its Segments:
 * coverage of 0..BackedUpBytes without gap or overlap, the objects exactly the Segments, each with
 * the length and SHA-256 the ledger records.
 */
export function judgeObjects(item: LedgerItem, objects: readonly ObjectEvidence[], policy: JudgePolicy): Finding[] {
  const findings: Finding[] = [];
  const keyOf = (segment: Segment) => segmentObjectKey(item.DBInstanceIdentifier, item.LogFileName, segment.Start, segment.End);
  const segments = item.Segments ?? [];
  const segmentByKey = new Map(segments.map((segment) => [keyOf(segment), segment]));
  const intentKey = item.PendingSegment ? keyOf(item.PendingSegment) : undefined;
  // The claim holder is storing this object right now: it is recorded by its next checkpoint.
  const inFlightKey = item.Status === LedgerStatus.IN_PROGRESS && !isStale(item, policy) ? intentKey : undefined;

  for (const object of objects) {
    const segment = segmentByKey.get(object.key);
    if (!segment) {
      if (object.key === inFlightKey) continue;
      const why =
        object.key === intentKey
          ? 'it is the object of the open intent (PendingSegment); a downloader settles it on its next claim'
          : object.start >= item.BackedUpBytes
            ? `it lies beyond the ${item.BackedUpBytes} bytes the ledger records as stored`
            : 'the ledger records other objects for these bytes';
      findings.push(finding(item, 'UNRECORDED_OBJECT', `object ${object.start}-${object.end} (${object.bytes} bytes) is not in Segments: ${why}`, object.key));
      continue;
    }
    const expectedBytes = segment.End - segment.Start;
    if (object.bytes !== expectedBytes) {
      findings.push(finding(item, 'SIZE_MISMATCH', `S3 holds ${object.bytes} bytes for a ${expectedBytes}-byte range`, object.key));
    }
    if (object.checksumSha256 === undefined) {
      findings.push(finding(item, 'CHECKSUM_MISSING', `S3 reports no SHA-256; the ledger recorded ${segment.Sha256}`, object.key));
    } else if (object.checksumSha256 !== segment.Sha256) {
      findings.push(finding(item, 'CHECKSUM_MISMATCH', `S3 reports SHA-256 ${object.checksumSha256}, the ledger recorded ${segment.Sha256}`, object.key));
    }
    if (object.content && (object.content.sha256 !== segment.Sha256 || object.content.bytes !== expectedBytes)) {
      findings.push(
        finding(
          item,
          'CONTENT_MISMATCH',
          `the body read back is ${object.content.bytes} bytes with SHA-256 ${object.content.sha256}; the ledger recorded ${expectedBytes} bytes, ${segment.Sha256}`,
          object.key,
        ),
      );
    }
  }

  // What S3 covers of the bytes the ledger says are stored (objects in key order = offset order).
  const gaps: Array<[number, number]> = [];
  let covered = 0;
  let previous: ObjectEvidence | undefined;
  for (const object of objects) {
    if (object.start > covered) gaps.push([covered, object.start]);
    else if (object.start < covered && previous) {
      findings.push(
        finding(item, 'OVERLAP', `object ${object.start}-${object.end} overlaps bytes up to ${covered} (${previous.key})`, object.key),
      );
    }
    covered = Math.max(covered, object.end);
    previous = object;
  }
  if (covered < item.BackedUpBytes) gaps.push([covered, item.BackedUpBytes]);
  const storedGaps = gaps
    .map(([from, to]): [number, number] => [from, Math.min(to, item.BackedUpBytes)])
    .filter(([from, to]) => from < to);
  const present = new Set(objects.map((object) => object.key));
  const missing = segments.filter((segment) => !present.has(keyOf(segment)));
  for (const [from, to] of storedGaps) {
    const recorded = missing.filter((segment) => segment.Start < to && segment.End > from).map(keyOf);
    const note = recorded.length > 0 ? `; the ledger records ${recorded.join(', ')}` : '';
    findings.push(finding(item, 'GAP', `bytes ${from}-${to} of the ${item.BackedUpBytes} stored are in no object${note}`));
  }
  for (const segment of missing) {
    const inGap = storedGaps.some(([from, to]) => segment.Start >= from && segment.End <= to);
    if (!inGap) findings.push(finding(item, 'MISSING_OBJECT', `segment ${segment.Start}-${segment.End} has no object`, keyOf(segment)));
  }
  return findings;
}

async function forEachConcurrently<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(workers);
}

function emptyTotals(): VerifyTotals {
  return {
    ledgerItems: 0,
    malformedItems: 0,
    itemsByStatus: { PENDING: 0, IN_PROGRESS: 0, DONE: 0, FAILED: 0, LOST: 0 },
    itemsInspected: 0,
    objectsChecked: 0,
    bytesChecked: 0,
    objectsHashed: 0,
    bytesHashed: 0,
    objectsListed: 0,
    rdsConsulted: false,
    instancesListed: [],
    instancesGone: [],
    filesListed: 0,
    bytesNotStored: 0,
    backupLagSeconds: 0,
    findings: 0,
    findingsByCode: {},
  };
}

const fileKey = (instance: string, file: string) => `${instance}\u0000${file}`;

/** One verification run; see the module comment. */
export async function verifyBackups(deps: VerifyDependencies, options: VerifyOptions): Promise<VerifyResult> {
  const startedAt = Date.now();
  const policy: JudgePolicy = { now: options.now, staleMs: options.staleMs };
  const totals = emptyTotals();
  const findings: Finding[] = [];
  const attention = new Map<string, LedgerItem>();
  const known = new Set<string>();
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const wanted = options.instances === undefined ? undefined : new Set(options.instances);
  let stopped = false;
  let oldestWait = 0;

  // RDS first: a file the detector records after this listing is then found by the ledger read.
  const listings = new Map<string, Map<string, LogFileListing>>();
  if (deps.rds) {
    totals.rdsConsulted = true;
    for (const instance of await deps.rds.instances()) {
      if (wanted && !wanted.has(instance)) continue;
      try {
        const files = await deps.rds.reader.listAuditLogFiles(instance);
        listings.set(instance, new Map(files.map((file) => [file.LogFileName, file])));
        totals.instancesListed.push(instance);
        totals.filesListed += files.length;
      } catch (error) {
        if (!isInstanceNotFound(error)) throw error;
        totals.instancesGone.push(instance);
      }
    }
  }
  const listedFile = (item: LedgerItem) => listings.get(item.DBInstanceIdentifier)?.get(item.LogFileName);

  const judge = (item: LedgerItem, objects: ObjectEvidence[] | undefined): Finding[] => [
    ...judgeItemState(item, policy),
    ...judgeAgainstListing(item, listedFile(item), policy),
    ...(objects ? judgeObjects(item, objects, policy) : []),
  ];

  const inspect = async (item: LedgerItem): Promise<ObjectEvidence[]> => {
    const listed: ListedObject[] = [];
    for await (const object of deps.objects.list(logFilePrefix(item.DBInstanceIdentifier, item.LogFileName))) {
      listed.push(object);
    }
    const evidence: ObjectEvidence[] = [];
    for (const object of listed) {
      const parsed = parseSegmentObjectKey(object.key);
      // Keys that are no segment of this file are the orphan check's business.
      if (!parsed || parsed.instance !== item.DBInstanceIdentifier || parsed.logFileName !== item.LogFileName) continue;
      const head = await deps.objects.head(object.key);
      if (!head) continue; // gone between LIST and HEAD: judged as absent
      const content = options.deep ? await deps.objects.digest(object.key) : undefined;
      evidence.push({ key: object.key, start: parsed.start, end: parsed.end, bytes: head.bytes, checksumSha256: head.sha256, content });
    }
    return evidence;
  };

  const { sweep } = options;
  const inWindow = (item: LedgerItem) =>
    options.windowMs === undefined ||
    item.Status !== LedgerStatus.DONE ||
    Math.max(item.LastBackup ?? 0, item.StatusChangedAt) >= options.now - options.windowMs ||
    (sweep !== undefined && sweepSliceOf(item.DBInstanceIdentifier, item.LogFileName, sweep.slices) === sweep.slice);

  const verifyItem = async (scannedItem: LedgerItem): Promise<void> => {
    let item = scannedItem;
    const withObjects = !stopped && inWindow(item);
    if (withObjects && options.shouldStop?.()) stopped = true;
    const inspectNow = withObjects && !stopped;
    let objects = inspectNow ? await inspect(item) : undefined;
    let found = judge(item, objects);
    if (found.length > 0) {
      // Judged from a snapshot: if the pipeline moved the item meanwhile, judge its fresh state.
      const fresh = await deps.ledger.get({ instance: item.DBInstanceIdentifier, file: item.LogFileName });
      if (fresh && JSON.stringify(fresh) !== JSON.stringify(item)) {
        item = fresh;
        objects = inspectNow ? await inspect(item) : undefined;
        found = judge(item, objects);
      }
    }
    if (objects) {
      totals.itemsInspected++;
      totals.objectsChecked += objects.length;
      totals.bytesChecked += objects.reduce((sum, object) => sum + object.bytes, 0);
      const hashed = objects.filter((object) => object.content);
      totals.objectsHashed += hashed.length;
      totals.bytesHashed += hashed.reduce((sum, object) => sum + (object.content?.bytes ?? 0), 0);
    }
    if (item.Status !== LedgerStatus.LOST) totals.bytesNotStored += Math.max(0, item.Size - item.BackedUpBytes);
    oldestWait = Math.max(oldestWait, backupLagSeconds([item], options.now));
    findings.push(...found);
    if (found.some((f) => ATTENTION_CODES.has(f.code))) attention.set(fileKey(item.DBInstanceIdentifier, item.LogFileName), item);
  };

  const verifyPage = async (page: ScannedItem[]): Promise<void> => {
    const valid: LedgerItem[] = [];
    for (const entry of page) {
      totals.ledgerItems++;
      if (entry.item) {
        totals.itemsByStatus[entry.item.Status]++;
        known.add(fileKey(entry.item.DBInstanceIdentifier, entry.item.LogFileName));
        valid.push(entry.item);
        continue;
      }
      totals.malformedItems++;
      const { raw, error } = entry.malformed;
      const instance = typeof raw.DBInstanceIdentifier === 'string' ? raw.DBInstanceIdentifier : '';
      const file = typeof raw.LogFileName === 'string' ? raw.LogFileName : undefined;
      if (file !== undefined) known.add(fileKey(instance, file));
      findings.push({ code: 'LEDGER_MALFORMED', instance, ...(file !== undefined ? { file } : {}), detail: error.message });
    }
    await forEachConcurrently(valid, concurrency, verifyItem);
  };

  const PAGE = 100;
  for (const instance of wanted ? [...wanted] : [undefined]) {
    let page: ScannedItem[] = [];
    for await (const entry of deps.ledger.allItems(instance)) {
      page.push(entry);
      if (page.length >= PAGE) {
        await verifyPage(page);
        page = [];
      }
    }
    await verifyPage(page);
  }

  // Files RDS lists that the ledger does not know (a file not written to for the stale threshold had
  // time to be detected; confirmed with a fresh read in case the detector created it meanwhile).
  for (const [instance, files] of listings) {
    for (const listed of files.values()) {
      if (known.has(fileKey(instance, listed.LogFileName))) continue;
      if (options.now - listed.LastWritten < options.staleMs) continue;
      if (await deps.ledger.get({ instance, file: listed.LogFileName })) continue;
      findings.push({
        code: 'NOT_IN_LEDGER',
        instance,
        file: listed.LogFileName,
        detail: `RDS lists ${listed.Size} bytes, last written ${iso(listed.LastWritten)}; no ledger item`,
      });
    }
  }

  // Every object under the prefix(es) must be a segment of a file the ledger knows.
  if (!stopped) {
    const prefixes = wanted ? [...wanted].map((instance) => `${LOG_OBJECT_PREFIX}${instance}/`) : [LOG_OBJECT_PREFIX];
    for (const prefix of prefixes) {
      for await (const object of deps.objects.list(prefix)) {
        totals.objectsListed++;
        const parsed = parseSegmentObjectKey(object.key);
        if (!parsed) {
          const instance = object.key.slice(LOG_OBJECT_PREFIX.length).split('/')[0] ?? '';
          findings.push({ code: 'UNKNOWN_OBJECT', instance, key: object.key, detail: `${object.bytes} bytes; not a segment key` });
          continue;
        }
        if (known.has(fileKey(parsed.instance, parsed.logFileName))) continue;
        if (await deps.ledger.get({ instance: parsed.instance, file: parsed.logFileName })) {
          known.add(fileKey(parsed.instance, parsed.logFileName));
          continue;
        }
        findings.push({
          code: 'ORPHAN_OBJECT',
          instance: parsed.instance,
          file: parsed.logFileName,
          key: object.key,
          detail: `bytes ${parsed.start}-${parsed.end} of a file with no ledger item`,
        });
      }
    }
  }
  if (stopped) {
    findings.push({
      code: 'VERIFY_INCOMPLETE',
      instance: '',
      detail: `stopped after inspecting the objects of ${totals.itemsInspected} of ${totals.ledgerItems} ledger items; the orphan check did not run`,
    });
  }

  totals.backupLagSeconds = oldestWait;
  totals.findings = findings.length;
  for (const f of findings) totals.findingsByCode[f.code] = (totals.findingsByCode[f.code] ?? 0) + 1;
  return {
    report: {
      startedAt: iso(startedAt),
      finishedAt: iso(Date.now()),
      options: {
        ...(options.instances ? { instances: options.instances } : {}),
        deep: options.deep ?? false,
        staleMinutes: options.staleMs / MINUTE_MS,
        ...(options.windowMs !== undefined ? { windowMs: options.windowMs } : {}),
        ...(options.windowMs !== undefined && sweep !== undefined ? { sweep } : {}),
      },
      totals,
      findings,
    },
    attention: [...attention.values()],
  };
}
