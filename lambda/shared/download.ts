/**
 * Downloader core: back up the not-yet-stored bytes of one audit log file. The ledger is the source of
 * truth (the stream record only says "look at this item"): claim it, read pages from the stored
 * marker, spool them into one checksummed object per segment, and leave the item DONE, PENDING
 * (hand-off or more data), FAILED or LOST.
 *
 * Each object is stored with a two-phase commit so that a holder dying at any point (timeout, crash,
 * OOM) never leaves an object the ledger does not know: (1) record the intended segment on the item
 * (PendingSegment: range, SHA-256, resume marker), (2) PUT, (3) checkpoint, which appends the segment
 * and removes the intent in one write. The next holder finds an open intent on its claim and resolves
 * it before reading RDS: the object exists with the recorded length and SHA-256 -> adopt it (checkpoint
 * from the recorded values, no byte read again); no object -> drop the intent and re-read from the
 * checkpoint; a different object -> FAILED, never overwritten. Objects under a file's prefix are
 * therefore always exactly the ledger's Segments, contiguous and non-overlapping.
 *
 * PUTs are conditional (If-None-Match: *), so a holder judged dead whose PUT lands late can never be
 * overwritten, nor overwrite: when S3 refuses a PUT because the key holds an object, that object is
 * settled like an intent (the same length and SHA-256: adopted; different: FAILED, left untouched).
 *
 * Storing overlaps reading: a spool sealed because it reached MAX_OBJECT_BYTES is stored (intent, PUT,
 * checkpoint, in that order) in the background while the next pages go to a new spool. At most one store
 * is in flight, and it is awaited before the next spool is sealed, at the end, at a hand-off and on any
 * error, so intent N+1 still follows checkpoint N and no two PUTs ever overlap. A failed background store
 * stops the reading before its next page and fails the pass like a foreground one. /tmp holds up to two
 * spools (the one being stored and the one being filled). A page is hashed and its write to the spool
 * started, then the next page is read while that write completes (one write in flight): memory holds two
 * pages.
 *
 * The resume point is a Marker plus MarkerSkipBytes: RDS's last page normally carries a Marker, but when
 * one with data carries none its bytes are still stored, and the checkpoint keeps the Marker from before
 * that page plus the page's length; the next pass re-reads the page and drops the bytes already stored.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { DownloaderConfig } from './config';
import { LedgerStatus, type PendingSegment, segmentObjectKey } from './contract';
import type { Ledger, LedgerKey } from './ledger';
import { FIRST_MARKER, isInstanceNotFound, isLogFileNotFound, LineTooLongError, type LogPage, type RdsLogReader } from './rds-log-reader';
import type { ExistingObject } from './backup-objects';
import type { SealedSpool, SegmentSpool, SegmentWriter } from './segment-writer';

/** Empty pages that still claim more data, in a row, before the pass gives up on the file. */
const MAX_EMPTY_PAGES = 20;
/**
 * Pauses before reading again a file RDS refused (DBLogFileNotFoundFault) but still lists: the refusal
 * lasts moments during a rotation. After the last one the pass ends FAILED (re-driven after a backoff).
 */
export const REFUSED_BUT_LISTED_RETRY_DELAYS_MS: readonly number[] = [500, 1000, 2000];

export interface DownloadDependencies {
  ledger: Ledger;
  reader: RdsLogReader;
  segments: SegmentWriter;
  config: Pick<DownloaderConfig, 'safetyMarginMs' | 'maxObjectBytes'>;
  logger: Logger;
  now: () => number;
}

/** The invocation's remaining time (Lambda's context.getRemainingTimeInMillis). */
export interface TimeBudget {
  remainingMs(): number;
}

export type DownloadOutcome =
  /** Every byte RDS listed is stored. */
  | 'DONE'
  /** Time ran out: stored and checkpointed what was read, back to PENDING for the next invocation. */
  | 'HANDED_OFF'
  /** RDS listed more bytes while this pass ran: back to PENDING. */
  | 'MORE_DATA'
  /** RDS returns fewer bytes than it lists and this pass made no progress. */
  | 'FAILED'
  /** RDS no longer has the file (or instance) and some of its bytes were never stored. */
  | 'LOST'
  /** The item was not PENDING (a duplicate trigger or another downloader holds it). */
  | 'NOTHING_TO_DO'
  /** The claim was taken over (the detector judged it stale); the new holder continues. */
  | 'CLAIM_LOST';

/** JSON-serialisable: Powertools idempotency stores it as the record's result. */
export interface DownloadResult {
  outcome: DownloadOutcome;
  instance: string;
  file: string;
  /** Bytes stored in S3 by this pass. */
  bytesStored: number;
  objectsStored: number;
  /** Bytes of an object a previous holder stored but did not checkpoint, recorded by this pass. */
  bytesAdopted: number;
  portionCalls: number;
  /** BackedUpBytes after this pass. */
  backedUpBytes?: number;
}

/** An object under the key this pass stores differs from the bytes it means to store. */
class SegmentConflictError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'SegmentConflictError';
  }
}

/** The ledger refused a checkpoint: the claim is no longer ours. */
class ClaimLostError extends Error {
  constructor(work: LedgerKey) {
    super(`claim on ${work.instance} ${work.file} was taken over`);
    this.name = 'ClaimLostError';
  }
}

type StopReason = 'end' | 'time';

/** Why the object under `key` is not the one expected, or undefined when it is. */
function conflictWith(key: string, existing: ExistingObject, expectedBytes: number, expectedSha256: string): string | undefined {
  if (existing.bytes === expectedBytes && existing.sha256 === expectedSha256) return undefined;
  return (
    `object ${key} exists but is not the one the ledger intended to store ` +
    `(ledger: ${expectedBytes} bytes, SHA-256 ${expectedSha256}; ` +
    `S3: ${existing.bytes} bytes, SHA-256 ${existing.sha256 ?? 'absent'}); it is left untouched, never overwritten`
  );
}

type IntentResolution = { kind: 'adopted' } | { kind: 'dropped' } | { kind: 'conflict'; reason: string };

/** A sealed spool and the segment it becomes: its range, digest and the resume point after it. */
interface SealedSegment {
  spool: SegmentSpool;
  sealed: SealedSpool;
  segment: PendingSegment;
}

/** The background store of one sealed spool; `failure` is set as soon as it rejects. */
interface StoreInFlight {
  settled: Promise<void>;
  failure?: { error: unknown };
  /** The budget's remaining time when it started: it may take up to a safety margin from then. */
  startedAtRemainingMs: number;
}

/** One download pass under one claim. */
class Pass {
  /** BackedUpBytes: bytes checkpointed in the ledger. */
  private offset: number;
  /** Where the spool being filled starts: `offset` plus the bytes of the spool being stored, if any. */
  private spoolStart: number;
  /**
   * Where the bytes after the spool start: read from `marker`, drop the first `skipBytes` (non-zero only
   * after a page that came without a Marker).
   */
  private marker: string;
  private skipBytes: number;
  private bytesStored = 0;
  private objectsStored = 0;
  private bytesAdopted = 0;
  private portionCalls = 0;
  private spool: SegmentSpool;
  private inFlight: StoreInFlight | undefined;

  constructor(
    private readonly deps: DownloadDependencies,
    private readonly work: LedgerKey,
    private readonly token: string,
    backedUpBytes: number,
    storedMarker: string | undefined,
    storedSkipBytes: number | undefined,
  ) {
    this.offset = backedUpBytes;
    this.spoolStart = backedUpBytes;
    this.marker = storedMarker ?? FIRST_MARKER;
    this.skipBytes = storedSkipBytes ?? 0;
    this.spool = deps.segments.openSpool();
  }

  result(outcome: DownloadOutcome): DownloadResult {
    return {
      outcome,
      instance: this.work.instance,
      file: this.work.file,
      bytesStored: this.bytesStored,
      objectsStored: this.objectsStored,
      bytesAdopted: this.bytesAdopted,
      portionCalls: this.portionCalls,
      backedUpBytes: this.offset,
    };
  }

  /** Reads pages until RDS has no more data or the time budget says stop. */
  async download(budget: TimeBudget): Promise<StopReason> {
    let emptyPages = 0;
    for (;;) {
      // A failed background store ends the pass before another page is read.
      if (this.inFlight?.failure) await this.settleInFlight();
      if (!this.hasTimeToStore(budget)) return 'time';
      const page = await this.readPageKeepingWhatPrecedesALongLine(budget);
      if (!page) return 'time';
      this.portionCalls += page.calls;
      const pageBytes = page.data.length;
      let written: Promise<void> | undefined;
      try {
        ({ written } = await this.take(page, budget));
      } finally {
        // Its buffer can take a later page once its bytes are on disk (or failed to get there), not before.
        const release = (): void => page.release();
        if (written) void written.then(release, release);
        else release();
      }
      if (pageBytes > 0) {
        emptyPages = 0;
      } else if (page.additionalDataPending && ++emptyPages > MAX_EMPTY_PAGES) {
        throw new Error(`RDS returned ${emptyPages} empty pages in a row with AdditionalDataPending at ${this.resumePoint()}`);
      }
      // Loop on AdditionalDataPending, never on the Marker: the last page can carry a non-empty Marker.
      if (!page.additionalDataPending) return 'end';
    }
  }

  /**
   * The next page. A line RDS cannot return whole fails the pass (it is never stored cut), but only
   * after the complete lines read before it are stored: a retry then starts at that line instead of
   * reading them again, and if the file rotates away before anyone can read it, only its bytes from
   * that line on are LOST.
   */
  private async readPageKeepingWhatPrecedesALongLine(budget: TimeBudget): Promise<LogPage | undefined> {
    // A read that runs long (the SDK's retries, a connection that never answers) may eat into the safety
    // margin, but only its first half: then it is given up (its page is read again by the next pass)
    // and the pass hands off (undefined) with the rest of the margin for storing. A deadline at the
    // margin itself would cut ordinary reads that start just above it, and read their pages twice.
    const readAllowanceMs = budget.remainingMs() - this.inFlightWorstCaseMs(budget) - this.deps.config.safetyMarginMs / 2;
    const deadline = AbortSignal.timeout(Math.max(1, Math.floor(readAllowanceMs)));
    try {
      return await this.deps.reader.readPage(this.work.instance, this.work.file, this.marker, deadline);
    } catch (error) {
      if (deadline.aborted) {
        this.deps.logger.warn('a page read outlasted the time left for it: handing off', { work: this.work, error });
        return undefined;
      }
      // With no time left to store them the next pass reads them again, as after a hand-off.
      if (error instanceof LineTooLongError && this.hasTimeToStore(budget)) await this.store();
      throw error;
    }
  }

  /** Whether the store in flight and one more store of the spool still fit before the safety margin. */
  private hasTimeToStore(budget: TimeBudget): boolean {
    return budget.remainingMs() >= this.deps.config.safetyMarginMs + this.inFlightWorstCaseMs(budget);
  }

  /**
   * How much longer the store in flight may still take: a store is given up to a safety margin, so a
   * hand-off decided now must leave that much on top of the margin for storing the current spool.
   */
  private inFlightWorstCaseMs(budget: TimeBudget): number {
    if (!this.inFlight) return 0;
    const elapsed = this.inFlight.startedAtRemainingMs - budget.remainingMs();
    return Math.max(0, this.deps.config.safetyMarginMs - elapsed);
  }

  /**
   * Spools the page's bytes not stored yet and moves the resume point past the page. Returns when its
   * bytes are hashed and being written; `written` settles when that write does.
   */
  private async take(page: LogPage, budget: TimeBudget): Promise<{ written?: Promise<void> }> {
    if (!page.marker && page.data.length > 0 && page.additionalDataPending) {
      // More pages follow, and nothing says where they start.
      throw new Error(`RDS returned ${page.data.length} bytes without a Marker after ${this.resumePoint()} with more data pending; cannot continue`);
    }
    if (page.data.length < this.skipBytes && !page.additionalDataPending) {
      throw new Error(
        `re-reading from ${this.resumePoint()} RDS returned only ${page.data.length} bytes, ` +
          `fewer than the ${this.skipBytes} already stored from that Marker; the file changed under its Marker`,
      );
    }
    const fresh = page.data.subarray(Math.min(this.skipBytes, page.data.length));
    let written: Promise<void> | undefined;
    if (fresh.length > 0) {
      // Objects stay within the limit unless a single page exceeds it.
      if (this.spool.bytes > 0 && this.spool.bytes + fresh.length > this.deps.config.maxObjectBytes) {
        await this.storeInBackground(budget);
      }
      ({ written } = await this.spool.append(fresh));
    }
    if (page.marker) {
      // A page shorter than the skip (a re-read cut at a truncated line) leaves the rest to skip after it.
      this.marker = page.marker;
      this.skipBytes -= page.data.length - fresh.length;
    } else if (page.data.length > 0) {
      // The last page came without a Marker: resume from the one before it, after the page's bytes.
      this.skipBytes = page.data.length;
    }
    return written ? { written } : {};
  }

  private resumePoint(): string {
    return this.skipBytes > 0 ? `marker ${this.marker} + ${this.skipBytes} bytes` : `marker ${this.marker}`;
  }

  /**
   * Resolves the intent a previous holder left open (it died between recording it and checkpointing).
   * A conflict (an object with other content under the intended key) is for the caller to record.
   */
  async resolveIntent(intent: PendingSegment): Promise<IntentResolution> {
    const { ledger, segments, logger } = this.deps;
    if (intent.Start !== this.offset) {
      throw new Error(
        `ledger item ${this.work.instance} ${this.work.file} has an intent for bytes ${intent.Start}-${intent.End} ` +
          `but ${this.offset} bytes are checkpointed; the ledger is inconsistent`,
      );
    }
    const key = segmentObjectKey(this.work.instance, this.work.file, intent.Start, intent.End);
    const existing = await segments.find(key);
    if (!existing) {
      // The PUT never happened (or never completed: S3 PUTs are all-or-nothing).
      if (!(await ledger.dropIntent(this.work, this.token, intent))) throw new ClaimLostError(this.work);
      logger.info('previous holder died before storing its object: reading those bytes again', { key });
      return { kind: 'dropped' };
    }
    const expectedBytes = intent.End - intent.Start;
    const conflict = conflictWith(key, existing, expectedBytes, intent.Sha256);
    if (conflict) return { kind: 'conflict', reason: conflict };
    if (!(await ledger.checkpoint(this.work, this.token, intent, this.deps.now()))) throw new ClaimLostError(this.work);
    this.offset = intent.End;
    this.spoolStart = intent.End;
    this.marker = intent.Marker;
    this.skipBytes = intent.MarkerSkipBytes ?? 0;
    this.bytesAdopted += expectedBytes;
    logger.info('adopted the object a previous holder stored but did not checkpoint', { key, bytes: expectedBytes });
    return { kind: 'adopted' };
  }

  /** An object under the intended key differs from the intent: FAILED, the intent kept as evidence. */
  async failOnConflict(reason: string): Promise<DownloadResult> {
    const { ledger, logger } = this.deps;
    logger.error('audit log file FAILED: a stored object conflicts with the ledger', {
      instance: this.work.instance,
      file: this.work.file,
      reason,
    });
    const abandoned = await ledger.abandon(this.work, this.token, LedgerStatus.FAILED, reason, this.deps.now());
    return this.result(abandoned ? 'FAILED' : 'CLAIM_LOST');
  }

  /**
   * Awaits the store in flight (if any), then seals the spool being filled and hands it over with the
   * segment it becomes, opening a new spool for the pages after it. Undefined when nothing is spooled.
   */
  private async sealSegment(): Promise<SealedSegment | undefined> {
    await this.settleInFlight();
    if (this.spool.bytes === 0) return undefined;
    const sealed = await this.spool.seal();
    // The resume point now is the one after the sealed bytes: capture it before more pages move it.
    const segment: PendingSegment = {
      Start: this.spoolStart,
      End: this.spoolStart + sealed.bytes,
      Sha256: sealed.sha256,
      Marker: this.marker,
      ...(this.skipBytes > 0 ? { MarkerSkipBytes: this.skipBytes } : {}),
    };
    const spool = this.spool;
    this.spool = this.deps.segments.openSpool();
    this.spoolStart = segment.End;
    return { spool, sealed, segment };
  }

  /**
   * Seals the spool and stores it in the background while reading goes on into a new spool. The
   * rejection handler is attached at once (no unhandled rejection); the failure is rethrown by
   * `settleInFlight`, which every later step calls first.
   */
  private async storeInBackground(budget: TimeBudget): Promise<void> {
    const next = await this.sealSegment();
    if (!next) return;
    const startedAtRemainingMs = budget.remainingMs();
    const store: StoreInFlight = { settled: Promise.resolve(), startedAtRemainingMs };
    // Never rejects: the failure is recorded the moment it happens (before the spool file is removed,
    // which takes I/O), so the reading loop stops before its next page.
    store.settled = (async () => {
      try {
        await this.commit(next);
      } catch (error) {
        store.failure = { error };
      }
      try {
        await next.spool.discard();
      } catch (error) {
        store.failure ??= { error };
      }
    })();
    this.inFlight = store;
  }

  /** Waits for the store in flight to end; rethrows its failure. */
  private async settleInFlight(): Promise<void> {
    const store = this.inFlight;
    if (!store) return;
    await store.settled;
    this.inFlight = undefined;
    if (store.failure) throw store.failure.error;
  }

  /**
   * Stores what is spooled as one object (after the store in flight, if any); a no-op when nothing is
   * spooled.
   */
  async store(): Promise<void> {
    const next = await this.sealSegment();
    if (!next) return;
    try {
      await this.commit(next);
    } finally {
      await next.spool.discard();
    }
  }

  /**
   * Stores a sealed spool with a two-phase commit (intent, PUT, checkpoint). A holder dying between any
   * two steps leaves the item resolvable by the next. The caller removes the sealed spool's file.
   */
  private async commit({ spool, sealed, segment }: SealedSegment): Promise<void> {
    const { ledger } = this.deps;
    if (!(await ledger.recordIntent(this.work, this.token, segment))) throw new ClaimLostError(this.work);
    const key = segmentObjectKey(this.work.instance, this.work.file, segment.Start, segment.End);
    const stored = await spool.store(key);
    if (stored.kind === 'exists') await this.settleExisting(key, sealed);
    if (!(await ledger.checkpoint(this.work, this.token, segment, this.deps.now()))) throw new ClaimLostError(this.work);
    this.offset = segment.End;
    if (stored.kind === 'stored') {
      this.bytesStored += sealed.bytes;
      this.objectsStored++;
    } else {
      this.bytesAdopted += sealed.bytes;
    }
  }

  /**
   * S3 refused our conditional PUT: the key already holds an object, stored by a holder judged dead
   * whose PUT landed late. The same bytes are adopted (the caller checkpoints them); anything else is
   * a conflict, never overwritten.
   */
  private async settleExisting(key: string, sealed: SealedSpool): Promise<void> {
    const existing = await this.deps.segments.find(key);
    if (!existing) throw new Error(`S3 refused to store ${key} because an object exists, but HEAD finds none`);
    const conflict = conflictWith(key, existing, sealed.bytes, sealed.sha256);
    if (conflict) throw new SegmentConflictError(conflict);
    this.deps.logger.warn('the object was already stored by an earlier holder: adopting it', { key, bytes: sealed.bytes });
  }

  /** Whether this pass recorded any bytes (its own or adopted): each such checkpoint reset Attempts. */
  private progress(): 'stored' | 'nothing-stored' {
    return this.bytesStored + this.bytesAdopted > 0 ? 'stored' : 'nothing-stored';
  }

  async finish(stop: StopReason): Promise<DownloadResult> {
    const { ledger, logger } = this.deps;
    await this.store();
    if (stop === 'time') {
      const released = await ledger.release(this.work, this.token, this.deps.now(), this.progress());
      logger.info('time budget nearly used: handing the rest to the next invocation', { ...this.result('HANDED_OFF') });
      return this.result(released ? 'HANDED_OFF' : 'CLAIM_LOST');
    }
    if (await ledger.markDone(this.work, this.token, this.offset, this.deps.now())) return this.result('DONE');

    const current = await ledger.get(this.work);
    if (!current || current.ClaimToken !== this.token || current.Status !== LedgerStatus.IN_PROGRESS) {
      return this.result('CLAIM_LOST');
    }
    if (current.Size <= this.offset) {
      throw new Error(`could not mark ${this.work.instance} ${this.work.file} DONE at ${this.offset} bytes`);
    }
    if (this.progress() === 'stored') {
      return this.result((await ledger.release(this.work, this.token, this.deps.now(), 'stored')) ? 'MORE_DATA' : 'CLAIM_LOST');
    }
    const reason =
      `RDS lists ${current.Size} bytes but returns only ${this.offset} ` +
      `(no more data after ${this.resumePoint()}); retried later`;
    logger.error('audit log file FAILED', { instance: this.work.instance, file: this.work.file, reason });
    const abandoned = await ledger.abandon(this.work, this.token, LedgerStatus.FAILED, reason, this.deps.now());
    return this.result(abandoned ? 'FAILED' : 'CLAIM_LOST');
  }

  /**
   * RDS says the file (or instance) is gone: keep what was read, then LOST unless nothing is missing.
   * LOST means no longer listed, so a file RDS still lists (refused again and again) is FAILED
   * instead: re-driven after the backoff, and no false LOST alarm.
   */
  async vanished(error: Error, stillListed: boolean): Promise<DownloadResult> {
    const { ledger, logger } = this.deps;
    await this.store();
    const current = await ledger.get(this.work);
    if (!current || current.ClaimToken !== this.token) return this.result('CLAIM_LOST');
    if (this.offset >= current.Size) {
      const done = await ledger.markDone(this.work, this.token, this.offset, this.deps.now());
      return this.result(done ? 'DONE' : 'CLAIM_LOST');
    }
    if (stillListed) {
      const reason = `${error.name}: the download was refused, but RDS still lists the file; retried later`;
      logger.warn('audit log file refused while still listed: FAILED, retried later', {
        instance: this.work.instance,
        file: this.work.file,
        backedUpBytes: this.offset,
      });
      const abandoned = await ledger.abandon(this.work, this.token, LedgerStatus.FAILED, reason, this.deps.now());
      return this.result(abandoned ? 'FAILED' : 'CLAIM_LOST');
    }
    const reason = `${error.name}: RDS no longer has the file; bytes ${this.offset}-${current.Size} were never stored`;
    logger.error('audit log file LOST before it was fully backed up', {
      instance: this.work.instance,
      file: this.work.file,
      reason,
    });
    const abandoned = await ledger.abandon(this.work, this.token, LedgerStatus.LOST, reason, this.deps.now());
    return this.result(abandoned ? 'LOST' : 'CLAIM_LOST');
  }

  /** Records the failure on the item (while the claim holds); the caller rethrows the error. */
  async fail(error: unknown): Promise<void> {
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    try {
      await this.deps.ledger.abandon(this.work, this.token, LedgerStatus.FAILED, reason, this.deps.now());
    } catch (ledgerError) {
      // The original error is rethrown by the caller; this one must still be visible.
      this.deps.logger.error('could not record FAILED in the ledger', { work: this.work, error: ledgerError });
    }
  }

  /**
   * After an error elsewhere: waits for the store in flight, so that it never writes to the item after
   * the pass recorded its outcome, nor outlives the pass. Its own failure is secondary to the error
   * already on its way (which the caller rethrows or records) and is logged, not lost.
   */
  async endStoreInFlight(): Promise<void> {
    const store = this.inFlight;
    this.inFlight = undefined;
    if (!store) return;
    await store.settled;
    if (store.failure) {
      this.deps.logger.error('a background store failed while the pass was ending on another error', {
        work: this.work,
        error: store.failure.error,
      });
    }
  }

  /** Removes the spool files whatever happened. */
  async close(): Promise<void> {
    await this.endStoreInFlight();
    await this.spool.discard();
  }
}

/**
 * Backs up one file from its ledger checkpoint. Errors after the SDK's retries mark the item FAILED
 * and are rethrown, so the batch reports the record as failed.
 */
export async function backUpLogFile(
  deps: DownloadDependencies,
  work: LedgerKey,
  claimToken: string,
  budget: TimeBudget,
): Promise<DownloadResult> {
  const nothingToDo: DownloadResult = {
    outcome: 'NOTHING_TO_DO',
    instance: work.instance,
    file: work.file,
    bytesStored: 0,
    objectsStored: 0,
    bytesAdopted: 0,
    portionCalls: 0,
  };
  const item = await deps.ledger.get(work);
  if (!item || item.Status !== LedgerStatus.PENDING) return nothingToDo;
  const claimed = await deps.ledger.claim(work, claimToken, deps.now());
  if (!claimed) return nothingToDo;

  const pass = new Pass(deps, work, claimToken, claimed.BackedUpBytes, claimed.Marker, claimed.MarkerSkipBytes);
  try {
    // Before any RDS call: an open intent decides where this pass starts.
    if (claimed.PendingSegment) {
      const resolution = await pass.resolveIntent(claimed.PendingSegment);
      if (resolution.kind === 'conflict') return await pass.failOnConflict(resolution.reason);
    }
    let stop: StopReason;
    for (let refusals = 0; ; refusals++) {
      try {
        stop = await pass.download(budget);
        break;
      } catch (error) {
        if (!isLogFileNotFound(error) && !isInstanceNotFound(error)) throw error;
        // LOST means no longer listed: a file RDS still lists was refused during a rotation.
        const stillListed = isLogFileNotFound(error) && (await deps.reader.isListed(work.instance, work.file));
        const delay = REFUSED_BUT_LISTED_RETRY_DELAYS_MS[refusals];
        if (!stillListed || delay === undefined) return await pass.vanished(error as Error, stillListed);
        deps.logger.warn('RDS refused a file it still lists (a rotation): reading it again shortly', { work, delayMs: delay });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    return await pass.finish(stop);
  } catch (error) {
    // Nothing is recorded on the item while a store of this pass may still write to it.
    await pass.endStoreInFlight();
    if (error instanceof ClaimLostError) {
      deps.logger.warn('claim taken over while downloading; the new holder continues', { work });
      return pass.result('CLAIM_LOST');
    }
    if (error instanceof SegmentConflictError) return await pass.failOnConflict(error.reason);
    await pass.fail(error);
    throw error;
  } finally {
    await pass.close();
  }
}
