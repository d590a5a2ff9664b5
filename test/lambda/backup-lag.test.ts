import { MAX_SIZE_HISTORY, backupLagSeconds, nextSizeHistory, oldestUnstoredWrite } from '../../lambda/shared/backup-lag';
import { LedgerStatus, type LedgerItem } from '../../lambda/shared/contract';
import { pendingLedgerItem } from './support/lambda-harness';

const MINUTE = 60_000;
const T0 = 1_700_000_000_000;

function item(fields: Partial<LedgerItem>): LedgerItem {
  return pendingLedgerItem('db-1', 'audit/audit.log.0.2024-01-04-08-30.0', { LastWritten: T0, StatusChangedAt: T0, ...fields });
}

describe('SizeHistory', () => {
  test('a growth past the stored bytes is appended; entries of stored bytes are dropped', () => {
    const before = item({
      Size: 300,
      BackedUpBytes: 200,
      SizeHistory: [
        { Size: 100, LastWritten: T0 },
        { Size: 300, LastWritten: T0 + MINUTE },
      ],
    });
    expect(nextSizeHistory(before, 500, T0 + 2 * MINUTE)).toEqual([
      { Size: 300, LastWritten: T0 + MINUTE },
      { Size: 500, LastWritten: T0 + 2 * MINUTE },
    ]);
  });

  test('an idle DONE file that grows starts a new history at the listing that shows the new bytes', () => {
    const done = item({ Status: LedgerStatus.DONE, Size: 300, BackedUpBytes: 300, SizeHistory: [{ Size: 300, LastWritten: T0 }] });
    expect(nextSizeHistory(done, 320, T0 + 180 * MINUTE)).toEqual([{ Size: 320, LastWritten: T0 + 180 * MINUTE }]);
  });

  test('a later LastWritten without more bytes adds nothing', () => {
    const pending = item({ Size: 300, SizeHistory: [{ Size: 300, LastWritten: T0 }] });
    expect(nextSizeHistory(pending, 300, T0 + MINUTE)).toEqual([{ Size: 300, LastWritten: T0 }]);
  });

  test('the history is bounded; the first entry (the oldest unstored byte) is always kept', () => {
    let current = item({ Size: 1 });
    for (let i = 1; i <= MAX_SIZE_HISTORY + 50; i++) {
      current = { ...current, Size: i, SizeHistory: nextSizeHistory(current, i, T0 + i * MINUTE) };
    }
    expect(current.SizeHistory).toHaveLength(MAX_SIZE_HISTORY);
    expect(current.SizeHistory?.[0]).toEqual({ Size: 1, LastWritten: T0 + MINUTE });
    expect(current.SizeHistory?.at(-1)).toEqual({ Size: MAX_SIZE_HISTORY + 50, LastWritten: T0 + (MAX_SIZE_HISTORY + 50) * MINUTE });
  });
});

describe('backup lag', () => {
  test('dated by the first listing that showed the oldest unstored byte', () => {
    const behind = item({
      Size: 500,
      BackedUpBytes: 250,
      LastWritten: T0 + 50 * MINUTE,
      SizeHistory: [
        { Size: 200, LastWritten: T0 },
        { Size: 300, LastWritten: T0 + 10 * MINUTE },
        { Size: 500, LastWritten: T0 + 50 * MINUTE },
      ],
    });
    expect(oldestUnstoredWrite(behind)).toBe(T0 + 10 * MINUTE);
    expect(backupLagSeconds([behind], T0 + 70 * MINUTE)).toBe(60 * 60);
  });

  test('the maximum over items; stored, DONE and LOST items do not count; nothing waiting is 0', () => {
    const stored = item({ Status: LedgerStatus.DONE, Size: 10, BackedUpBytes: 10, SizeHistory: [{ Size: 10, LastWritten: T0 }] });
    const lost = item({ Status: LedgerStatus.LOST, Size: 10, BackedUpBytes: 0, SizeHistory: [{ Size: 10, LastWritten: T0 }] });
    const recent = item({ Size: 10, SizeHistory: [{ Size: 10, LastWritten: T0 + 55 * MINUTE }] });
    const older = item({ Status: LedgerStatus.FAILED, Size: 10, SizeHistory: [{ Size: 10, LastWritten: T0 + 30 * MINUTE }] });
    const now = T0 + 60 * MINUTE;
    expect(backupLagSeconds([stored, lost, recent, older], now)).toBe(30 * 60);
    expect(backupLagSeconds([stored, lost], now)).toBe(0);
    expect(backupLagSeconds([], now)).toBe(0);
  });

  test('items written before SizeHistory existed fall back to their LastWritten', () => {
    expect(oldestUnstoredWrite(item({ Size: 10, LastWritten: T0 + MINUTE }))).toBe(T0 + MINUTE);
  });
});
