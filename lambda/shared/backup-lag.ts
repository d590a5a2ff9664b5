/**
 * Backup lag: how long the oldest byte RDS holds but S3 does not has been waiting, dated from the
 * ledger's SizeHistory (what RDS listed each time the detector saw the file grow past the stored
 * bytes).
 *
 * The oldest unstored byte of an item is byte BackedUpBytes. The first SizeHistory entry with
 * Size > BackedUpBytes is the first listing in which that byte existed, so it was written after the
 * detector's previous look at the file and at or before that entry's LastWritten. Lag is taken from
 * that LastWritten: it is never over-reported (an idle file that grows after hours is not "hours
 * behind") and under-reported by less than one scan interval (the detector looks at every listed file
 * each scan). Items without SizeHistory (written before it existed) fall back to their LastWritten,
 * a further under-estimate. LOST items are excluded: their bytes can no longer be stored, and the LOST
 * metric and alarm report them.
 */
import { LedgerStatus, type LedgerItem, type SizeObservation } from './contract';

/**
 * Upper bound on SizeHistory entries, far below DynamoDB's item size limit. Reached only when a file
 * keeps growing while its backup is stuck (about 16 hours of 5-minute scans); beyond it the entries
 * after the first are thinned, which can only make the lag of later bytes read smaller.
 */
export const MAX_SIZE_HISTORY = 200;

/**
 * The item's SizeHistory after RDS listed `size` bytes written at `lastWritten`: entries of bytes
 * already stored are dropped, and the listing is appended when it shows bytes beyond the last entry.
 */
export function nextSizeHistory(item: LedgerItem, size: number, lastWritten: number): SizeObservation[] {
  const history = (item.SizeHistory ?? []).filter((entry) => entry.Size > item.BackedUpBytes);
  const last = history[history.length - 1];
  if (size > item.BackedUpBytes && (last === undefined || size > last.Size)) {
    history.push({ Size: size, LastWritten: lastWritten });
  }
  if (history.length > MAX_SIZE_HISTORY) history.splice(1, history.length - MAX_SIZE_HISTORY);
  return history;
}

/** Epoch ms by which the item's oldest unstored byte was written; undefined when nothing waits. */
export function oldestUnstoredWrite(item: LedgerItem): number | undefined {
  if (item.Status === LedgerStatus.LOST || item.BackedUpBytes >= item.Size) return undefined;
  const first = item.SizeHistory?.find((entry) => entry.Size > item.BackedUpBytes);
  return first?.LastWritten ?? item.LastWritten;
}

/** Seconds the oldest unstored byte of these items has waited (0 when every listed byte is stored). */
export function backupLagSeconds(items: Iterable<LedgerItem>, now: number): number {
  let oldest = Number.POSITIVE_INFINITY;
  for (const item of items) {
    const written = oldestUnstoredWrite(item);
    if (written !== undefined && written < oldest) oldest = written;
  }
  return oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, Math.floor((now - oldest) / 1000));
}
