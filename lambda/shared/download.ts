/**
 * Downloader core: back up the not-yet-stored bytes of one audit log file. The ledger is the source of
 * truth (the stream record only says "look at this item"): claim it, read pages from the stored
 * marker, spool them into one checksummed object per segment, checkpoint after each object, and
 * leave the item DONE, PENDING (hand-off or more data), FAILED or LOST.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { DownloaderConfig } from './config';
import { LedgerStatus, segmentObjectKey } from './contract';
import type { Ledger, LedgerKey } from './ledger';
import { FIRST_MARKER, isInstanceNotFound, isLogFileNotFound, type RdsLogReader } from './rds-log-reader';
import type { SegmentSpool, SegmentWriter } from './segment-writer';

/** Empty pages that still claim more data, in a row, before the pass gives up on the file. */
const MAX_EMPTY_PAGES = 20;

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
  portionCalls: number;
  /** BackedUpBytes after this pass. */
  backedUpBytes?: number;
}

/** The ledger refused a checkpoint: the claim is no longer ours. */
class ClaimLostError extends Error {
  constructor(work: LedgerKey) {
    super(`claim on ${work.instance} ${work.file} was taken over`);
    this.name = 'ClaimLostError';
  }
}

type StopReason = 'end' | 'time';

/** One download pass under one claim. */
class Pass {
  private offset: number;
  /** Marker after the last page appended to the spool (or stored). */
  private marker: string;
  private bytesStored = 0;
  private objectsStored = 0;
  private portionCalls = 0;
  private readonly spool: SegmentSpool;

  constructor(
    private readonly deps: DownloadDependencies,
    private readonly work: LedgerKey,
    private readonly token: string,
    backedUpBytes: number,
    storedMarker: string | undefined,
  ) {
    this.offset = backedUpBytes;
    this.marker = storedMarker ?? FIRST_MARKER;
    this.spool = deps.segments.openSpool();
  }

  result(outcome: DownloadOutcome): DownloadResult {
    return {
      outcome,
      instance: this.work.instance,
      file: this.work.file,
      bytesStored: this.bytesStored,
      objectsStored: this.objectsStored,
      portionCalls: this.portionCalls,
      backedUpBytes: this.offset,
    };
  }

  /** Reads pages until RDS has no more data or the time budget says stop. */
  async download(budget: TimeBudget): Promise<StopReason> {
    const { reader, config } = this.deps;
    let emptyPages = 0;
    for (;;) {
      if (budget.remainingMs() < config.safetyMarginMs) return 'time';
      const page = await reader.readPage(this.work.instance, this.work.file, this.marker);
      this.portionCalls += page.calls;
      if (page.data.length > 0) {
        if (!page.marker) {
          throw new Error(`RDS returned ${page.data.length} bytes without a Marker after ${this.marker}; cannot checkpoint`);
        }
        // Objects stay within the limit unless a single page exceeds it.
        if (this.spool.bytes > 0 && this.spool.bytes + page.data.length > config.maxObjectBytes) await this.store();
        await this.spool.append(page.data);
        this.marker = page.marker;
        emptyPages = 0;
      } else {
        if (page.marker) this.marker = page.marker;
        if (page.additionalDataPending && ++emptyPages > MAX_EMPTY_PAGES) {
          throw new Error(`RDS returned ${emptyPages} empty pages in a row with AdditionalDataPending at ${this.marker}`);
        }
      }
      // Loop on AdditionalDataPending, never on the Marker: the last page can carry a non-empty Marker.
      if (!page.additionalDataPending) return 'end';
    }
  }

  /** Stores the spool as one object and checkpoints it; a no-op when nothing is spooled. */
  async store(): Promise<void> {
    if (this.spool.bytes === 0) return;
    const start = this.offset;
    const end = start + this.spool.bytes;
    const stored = await this.spool.store(segmentObjectKey(this.work.instance, this.work.file, start, end));
    const recorded = await this.deps.ledger.checkpoint(this.work, this.token, {
      start,
      end,
      marker: this.marker,
      sha256: stored.sha256,
      now: this.deps.now(),
    });
    if (!recorded) throw new ClaimLostError(this.work);
    this.offset = end;
    this.bytesStored += stored.bytes;
    this.objectsStored++;
  }

  async finish(stop: StopReason): Promise<DownloadResult> {
    const { ledger, logger } = this.deps;
    await this.store();
    if (stop === 'time') {
      const released = await ledger.release(this.work, this.token, this.deps.now());
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
    if (this.bytesStored > 0) {
      return this.result((await ledger.release(this.work, this.token, this.deps.now())) ? 'MORE_DATA' : 'CLAIM_LOST');
    }
    const reason =
      `RDS lists ${current.Size} bytes but returns only ${this.offset} ` +
      `(no more data after marker ${this.marker}); retried later`;
    logger.error('audit log file FAILED', { instance: this.work.instance, file: this.work.file, reason });
    const abandoned = await ledger.abandon(this.work, this.token, LedgerStatus.FAILED, reason, this.deps.now());
    return this.result(abandoned ? 'FAILED' : 'CLAIM_LOST');
  }

  /** RDS says the file (or instance) is gone: keep what was read, then LOST unless nothing is missing. */
  async vanished(error: Error): Promise<DownloadResult> {
    const { ledger, logger } = this.deps;
    await this.store();
    const current = await ledger.get(this.work);
    if (!current || current.ClaimToken !== this.token) return this.result('CLAIM_LOST');
    if (this.offset >= current.Size) {
      const done = await ledger.markDone(this.work, this.token, this.offset, this.deps.now());
      return this.result(done ? 'DONE' : 'CLAIM_LOST');
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

  async close(): Promise<void> {
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
    portionCalls: 0,
  };
  const item = await deps.ledger.get(work);
  if (!item || item.Status !== LedgerStatus.PENDING) return nothingToDo;
  const claimed = await deps.ledger.claim(work, claimToken, deps.now());
  if (!claimed) return nothingToDo;

  const pass = new Pass(deps, work, claimToken, claimed.BackedUpBytes, claimed.Marker);
  try {
    let stop: StopReason;
    try {
      stop = await pass.download(budget);
    } catch (error) {
      if (isLogFileNotFound(error) || isInstanceNotFound(error)) return await pass.vanished(error as Error);
      throw error;
    }
    return await pass.finish(stop);
  } catch (error) {
    if (error instanceof ClaimLostError) {
      deps.logger.warn('claim taken over while downloading; the new holder continues', { work });
      return pass.result('CLAIM_LOST');
    }
    await pass.fail(error);
    throw error;
  } finally {
    await pass.close();
  }
}
