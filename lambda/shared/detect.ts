/**
 * Detector core: compare what RDS lists for one instance with the ledger and write only what changed,
 * following the status machine. An unchanged file causes no write at all.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { backupLagSeconds, nextSizeHistory } from './backup-lag';
import type { DetectorConfig } from './config';
import { LedgerStatus, type LedgerItem, type ScanMessage } from './contract';
import { type ItemChange, type Ledger, type LogFileListing, ledgerKeyOf } from './ledger';
import { isInstanceNotFound, type RdsLogReader } from './rds-log-reader';

/** How often one item is re-read and re-evaluated when a concurrent writer keeps changing it. */
const MAX_RACE_ROUNDS = 5;
/** FAILED items wait base × 2^(attempts-1), at most this many times the base. */
const MAX_BACKOFF_FACTOR = 64;

export interface DetectDependencies {
  reader: RdsLogReader;
  ledger: Ledger;
  config: DetectorConfig;
  logger: Logger;
  now: () => number;
}

export type DetectOutcome = 'created' | 'updated' | 'redriven' | 'reclaimed' | 'lost' | 'completed' | 'unchanged';

export interface DetectSummary {
  instance: string;
  instanceGone: boolean;
  listed: number;
  outcomes: Record<DetectOutcome, number>;
  lost: string[];
  /** Seconds the oldest byte of the instance not yet stored has waited (backup-lag.ts), 0 when none. */
  backupLagSeconds: number;
}

export interface Decision {
  outcome: Exclude<DetectOutcome, 'created' | 'unchanged'>;
  change: ItemChange;
}

export interface DecisionPolicy {
  staleClaimMs: number;
  failedRetryBackoffMs: number;
  /** DescribeDBLogFiles said the instance does not exist. */
  instanceGone: boolean;
}

export class MalformedScanMessageError extends Error {
  constructor(detail: string) {
    super(`malformed scan message: ${detail}`);
    this.name = 'MalformedScanMessageError';
  }
}

/** Parses and validates an SQS body as a ScanMessage; throws on anything else. */
export function parseScanMessage(body: string): ScanMessage {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new MalformedScanMessageError('body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedScanMessageError('body is not a JSON object');
  }
  const { DBInstanceIdentifier, DBClusterIdentifier, ScannedAt } = value as Record<string, unknown>;
  if (typeof DBInstanceIdentifier !== 'string' || DBInstanceIdentifier.trim() === '') {
    throw new MalformedScanMessageError('DBInstanceIdentifier must be a non-empty string');
  }
  if (DBClusterIdentifier !== undefined && typeof DBClusterIdentifier !== 'string') {
    throw new MalformedScanMessageError('DBClusterIdentifier must be a string when present');
  }
  if (typeof ScannedAt !== 'number' || !Number.isFinite(ScannedAt)) {
    throw new MalformedScanMessageError('ScannedAt must be a number (epoch ms)');
  }
  return { DBInstanceIdentifier, DBClusterIdentifier, ScannedAt };
}

export function failedRetryDelayMs(item: LedgerItem, baseMs: number): number {
  const attempts = Math.max(1, item.Attempts ?? 1);
  return baseMs * Math.min(2 ** (attempts - 1), MAX_BACKOFF_FACTOR);
}

/**
 * The status-machine step for one item given what RDS lists now (undefined: not listed). Pure: the
 * caller writes the change conditionally on the item being exactly as observed.
 */
export function decideChange(
  item: LedgerItem,
  listed: LogFileListing | undefined,
  now: number,
  policy: DecisionPolicy,
): Decision | undefined {
  const age = now - item.StatusChangedAt;
  const claimIsStale = item.Status === LedgerStatus.IN_PROGRESS && age >= policy.staleClaimMs;

  if (!listed) {
    if (item.Status === LedgerStatus.DONE || item.Status === LedgerStatus.LOST) return undefined;
    // A live claim holder will meet the missing file itself and record the outcome.
    if (item.Status === LedgerStatus.IN_PROGRESS && !claimIsStale) return undefined;
    const dropClaim = item.Status === LedgerStatus.IN_PROGRESS;
    if (item.PendingSegment) {
      // A holder died with an object intended (maybe stored) but not checkpointed. Only a downloader,
      // which can look in S3, may settle it (adopt the object or drop the intent); DONE or LOST now
      // could leave an object no segment records. So back to PENDING: the downloader settles the
      // intent first, then meets the missing file and records DONE or LOST itself.
      if (item.Status === LedgerStatus.PENDING) return undefined;
      if (item.Status === LedgerStatus.FAILED && age < failedRetryDelayMs(item, policy.failedRetryBackoffMs)) {
        return undefined;
      }
      return { outcome: dropClaim ? 'reclaimed' : 'redriven', change: { Status: LedgerStatus.PENDING, dropClaim } };
    }
    if (item.BackedUpBytes >= item.Size) {
      return { outcome: 'completed', change: { Status: LedgerStatus.DONE, dropClaim } };
    }
    const where = policy.instanceGone ? 'the DB instance no longer exists' : 'RDS no longer lists the file';
    return {
      outcome: 'lost',
      change: {
        Status: LedgerStatus.LOST,
        dropClaim,
        LastError: `${where}; bytes ${item.BackedUpBytes}-${item.Size} were never stored`,
      },
    };
  }

  const grown = listed.Size > item.Size || listed.LastWritten > item.LastWritten;
  const size = Math.max(listed.Size, item.Size);
  const lastWritten = Math.max(listed.LastWritten, item.LastWritten);
  const change: ItemChange = grown
    ? { Size: size, LastWritten: lastWritten, SizeHistory: nextSizeHistory(item, size, lastWritten) }
    : {};
  const bytesMissing = size > item.BackedUpBytes;

  switch (item.Status) {
    case LedgerStatus.DONE:
      if (grown && bytesMissing) return { outcome: 'redriven', change: { ...change, Status: LedgerStatus.PENDING } };
      break;
    case LedgerStatus.LOST:
      // Listed again (a rotation glitch made it vanish briefly): back up what is there.
      return {
        outcome: 'redriven',
        change: { ...change, Status: bytesMissing ? LedgerStatus.PENDING : LedgerStatus.DONE },
      };
    case LedgerStatus.FAILED:
      if (age >= failedRetryDelayMs(item, policy.failedRetryBackoffMs)) {
        return { outcome: 'redriven', change: { ...change, Status: LedgerStatus.PENDING } };
      }
      break;
    case LedgerStatus.IN_PROGRESS:
      if (claimIsStale) {
        return { outcome: 'reclaimed', change: { ...change, Status: LedgerStatus.PENDING, dropClaim: true } };
      }
      break;
    case LedgerStatus.PENDING:
      break;
  }
  return grown ? { outcome: 'updated', change } : undefined;
}

export async function detectChanges(deps: DetectDependencies, message: ScanMessage): Promise<DetectSummary> {
  const { reader, ledger, config, logger } = deps;
  const instance = message.DBInstanceIdentifier;
  let instanceGone = false;
  let listing: LogFileListing[];
  try {
    listing = await reader.listAuditLogFiles(instance);
  } catch (error) {
    if (!isInstanceNotFound(error)) throw error;
    instanceGone = true;
    listing = [];
    logger.warn('DB instance no longer exists; its unfinished audit files are lost', { instance });
  }

  const items = await ledger.itemsOfInstance(instance);
  const itemsByFile = new Map(items.map((item) => [item.LogFileName, item]));
  const listedByFile = new Map(listing.map((file) => [file.LogFileName, file]));
  const policy: DecisionPolicy = { ...config, instanceGone };
  const summary: DetectSummary = {
    instance,
    instanceGone,
    listed: listing.length,
    outcomes: { created: 0, updated: 0, redriven: 0, reclaimed: 0, lost: 0, completed: 0, unchanged: 0 },
    lost: [],
    backupLagSeconds: 0,
  };

  const files = new Set([...listedByFile.keys(), ...itemsByFile.keys()]);
  const itemsAfter: LedgerItem[] = [];
  for (const file of files) {
    const { outcome, item } = await reconcileFile(deps, instance, file, listedByFile.get(file), itemsByFile.get(file), policy);
    summary.outcomes[outcome]++;
    if (outcome === 'lost') summary.lost.push(file);
    if (item) itemsAfter.push(item);
  }
  summary.backupLagSeconds = backupLagSeconds(itemsAfter, deps.now());
  logger.info('detected audit log changes', { summary });
  return summary;
}

/** The item as a successful conditional write of `change` left it. */
function withChange(item: LedgerItem, change: ItemChange, now: number): LedgerItem {
  const statusChanged = change.Status !== undefined && change.Status !== item.Status;
  return {
    ...item,
    Size: change.Size ?? item.Size,
    LastWritten: change.LastWritten ?? item.LastWritten,
    Status: change.Status ?? item.Status,
    StatusChangedAt: statusChanged ? now : item.StatusChangedAt,
    LastError: change.LastError ?? item.LastError,
    SizeHistory: change.SizeHistory ?? item.SizeHistory,
    ClaimToken: change.dropClaim ? undefined : item.ClaimToken,
  };
}

interface FileResult {
  outcome: DetectOutcome;
  /** The item as this detection left it (undefined: there is none). */
  item: LedgerItem | undefined;
}

async function reconcileFile(
  deps: DetectDependencies,
  instance: string,
  file: string,
  listed: LogFileListing | undefined,
  observed: LedgerItem | undefined,
  policy: DecisionPolicy,
): Promise<FileResult> {
  const { ledger, logger } = deps;
  let item = observed;
  for (let round = 1; round <= MAX_RACE_ROUNDS; round++) {
    const now = deps.now();
    if (!item) {
      if (!listed) return { outcome: 'unchanged', item: undefined };
      const created = await ledger.createPending(instance, listed, now);
      if (created) return { outcome: 'created', item: created };
    } else {
      if (listed && listed.Size < item.Size) {
        logger.warn('RDS lists fewer bytes than the ledger recorded; keeping the larger size', {
          instance,
          file,
          listedSize: listed.Size,
          ledgerSize: item.Size,
        });
      }
      if (item.Status === LedgerStatus.PENDING && now - item.StatusChangedAt >= policy.staleClaimMs) {
        logger.warn('file has been PENDING without a downloader claim for longer than a stale claim', {
          instance,
          file,
          pendingForMs: now - item.StatusChangedAt,
        });
      }
      const decision = decideChange(item, listed, now, policy);
      if (!decision) return { outcome: 'unchanged', item };
      if (await ledger.applyChange(item, decision.change, now)) {
        if (decision.outcome === 'lost') {
          logger.error('audit log file LOST before it was fully backed up', {
            instance,
            file,
            backedUpBytes: item.BackedUpBytes,
            size: item.Size,
            reason: decision.change.LastError,
          });
        } else if (decision.outcome !== 'updated') {
          logger.info('ledger item moved', { instance, file, from: item.Status, to: decision.change.Status });
        }
        return { outcome: decision.outcome, item: withChange(item, decision.change, now) };
      }
    }
    // A concurrent writer (downloader or another detector) changed the item: look again.
    item = await ledger.get(ledgerKeyOf({ DBInstanceIdentifier: instance, LogFileName: file }));
  }
  throw new Error(`ledger item ${instance} ${file} kept changing during ${MAX_RACE_ROUNDS} conditional writes`);
}
