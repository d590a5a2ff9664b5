/**
 * Reconciler core: one verification run (verify.ts), then every item it found stuck is handed back to
 * the downloader with a transition its stream filter admits (Ledger.redrive): stale PENDING (parked as
 * FAILED, then PENDING), stale IN_PROGRESS (claim dropped) and FAILED once the detector's backoff for
 * it has passed. Items of instances the scanner no longer queues (deleted instances) are settled this
 * way too: the downloader then records them DONE or LOST.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { ReconcilerConfig } from './config';
import { LedgerStatus, type LedgerItem } from './contract';
import { failedRetryDelayMs } from './detect';
import { type FindingCode, type VerifyDependencies, type VerifyReport, type VerifySweep, verifyBackups } from './verify';

export interface ReconcileDependencies extends VerifyDependencies {
  logger: Logger;
  now: () => number;
}

/** The invocation's remaining time (Lambda's context.getRemainingTimeInMillis). */
export interface ReconcileBudget {
  remainingMs(): number;
}

type VerifyScopeConfig = Pick<ReconcilerConfig, 'verifyWindowMs' | 'verifySweepMs' | 'reconcileRateMs'>;

/**
 * What a run verifies. A scheduled run: the objects of items changed within the window and of items
 * not DONE, plus one slice of the older DONE items; consecutive scheduled times take consecutive
 * slices, so one sweep period's runs verify every object (a retried run keeps its scheduled time and
 * slice). Any other run (no scheduled time): everything. Re-reading every object every hour would cost
 * a HEAD per object per hour, growing with a year of retention until a run no longer fits its timeout.
 */
export function verifyScope(config: VerifyScopeConfig, scheduledTime: number | undefined): { windowMs?: number; sweep?: VerifySweep } {
  if (scheduledTime === undefined) return {};
  const slices = Math.max(1, Math.floor(config.verifySweepMs / config.reconcileRateMs));
  const slice = Math.floor(scheduledTime / config.reconcileRateMs) % slices;
  return { windowMs: config.verifyWindowMs, sweep: { slice, slices } };
}

export interface Redrive {
  instance: string;
  file: string;
  from: LedgerStatus;
}

/** JSON-serialisable result of one run (the function's return value). */
export interface ReconcileSummary {
  findings: number;
  findingsByCode: Partial<Record<FindingCode, number>>;
  itemsVerified: number;
  objectsChecked: number;
  redriven: Redrive[];
  /** FAILED items still inside their retry backoff. */
  waitingForBackoff: number;
  /** Items another writer changed before the re-drive (they are moving again). */
  changedMeanwhile: number;
}

/** Left for re-driving and flushing metrics when the object inspection stops early. */
export const RECONCILER_RESERVE_MS = 60_000;

function redriveReason(item: LedgerItem, now: number): string {
  const minutes = Math.floor((now - item.StatusChangedAt) / 60_000);
  return `re-driven by the reconciler: ${item.Status} for ${minutes} min without a downloader claim`;
}

export async function reconcile(
  deps: ReconcileDependencies,
  config: Pick<ReconcilerConfig, 'staleMs' | 'failedRetryBackoffMs'> & VerifyScopeConfig,
  budget: ReconcileBudget,
  /** Epoch ms the schedule meant this run for; undefined for a run the schedule did not start. */
  scheduledTime?: number,
): Promise<{ report: VerifyReport; summary: ReconcileSummary }> {
  const { ledger, logger } = deps;
  const { report, attention } = await verifyBackups(deps, {
    now: deps.now(),
    staleMs: config.staleMs,
    ...verifyScope(config, scheduledTime),
    shouldStop: () => budget.remainingMs() < RECONCILER_RESERVE_MS,
  });
  const summary: ReconcileSummary = {
    findings: report.totals.findings,
    findingsByCode: report.totals.findingsByCode,
    itemsVerified: report.totals.itemsInspected,
    objectsChecked: report.totals.objectsChecked,
    redriven: [],
    waitingForBackoff: 0,
    changedMeanwhile: 0,
  };
  for (const item of attention) {
    const now = deps.now();
    if (item.Status === LedgerStatus.FAILED && now - item.StatusChangedAt < failedRetryDelayMs(item, config.failedRetryBackoffMs)) {
      summary.waitingForBackoff++;
      continue;
    }
    const reason = redriveReason(item, now);
    if (await ledger.redrive(item, reason, deps.now)) {
      summary.redriven.push({ instance: item.DBInstanceIdentifier, file: item.LogFileName, from: item.Status });
      logger.info('re-drove a stuck ledger item to the downloader', { instance: item.DBInstanceIdentifier, file: item.LogFileName, from: item.Status });
    } else {
      summary.changedMeanwhile++;
    }
  }
  return { report, summary };
}
