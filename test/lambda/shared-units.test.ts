import { CONFIG_DEFAULTS, ConfigError, readDetectorConfig, readDownloaderConfig, readReconcilerConfig, readScannerConfig } from '../../lambda/shared/config';
import { ENV, RDS_TRUNCATION_TEXT } from '../../lambda/shared/contract';
import { LedgerFormatError, toLedgerItem } from '../../lambda/shared/ledger';
import { completeLinesBeforeTruncation } from '../../lambda/shared/rds-log-reader';

describe('configuration', () => {
  const downloaderEnv = { [ENV.ledgerTable]: 'l', [ENV.idempotencyTable]: 'i', [ENV.bucket]: 'b' };

  test('required variables are named when missing', () => {
    expect(() => readScannerConfig({})).toThrow(new ConfigError(`environment variable ${ENV.scanQueueUrl} is required`));
    expect(() => readDetectorConfig({ [ENV.ledgerTable]: '  ' })).toThrow(ConfigError);
    expect(() => readDownloaderConfig({ [ENV.ledgerTable]: 'l', [ENV.bucket]: 'b' })).toThrow(ENV.idempotencyTable);
  });

  test('optional numbers default, and must be positive integers when set', () => {
    expect(readDownloaderConfig(downloaderEnv)).toMatchObject({
      maxObjectBytes: CONFIG_DEFAULTS.maxObjectBytes,
      safetyMarginMs: CONFIG_DEFAULTS.safetyMarginMs,
    });
    expect(readDownloaderConfig({ ...downloaderEnv, [ENV.maxObjectBytes]: '2048' }).maxObjectBytes).toBe(2048);
    for (const bad of ['0', '-5', '1.5', 'lots']) {
      expect(() => readDetectorConfig({ [ENV.ledgerTable]: 'l', [ENV.staleClaimMs]: bad })).toThrow(ENV.staleClaimMs);
    }
  });

  test("the reconciler's window defaults to its sweep period, which defaults to a day of hourly runs", () => {
    const reconcilerEnv = { [ENV.ledgerTable]: 'l', [ENV.bucket]: 'b' };
    expect(readReconcilerConfig(reconcilerEnv)).toMatchObject({
      verifySweepMs: CONFIG_DEFAULTS.verifySweepMs,
      verifyWindowMs: CONFIG_DEFAULTS.verifySweepMs,
      reconcileRateMs: CONFIG_DEFAULTS.reconcileRateMs,
    });
    expect(CONFIG_DEFAULTS.verifySweepMs).toBe(24 * CONFIG_DEFAULTS.reconcileRateMs);
    expect(readReconcilerConfig({ ...reconcilerEnv, [ENV.verifySweepMs]: '7200000' })).toMatchObject({ verifySweepMs: 7_200_000, verifyWindowMs: 7_200_000 });
    expect(readReconcilerConfig({ ...reconcilerEnv, [ENV.verifyWindowMs]: '60000' }).verifyWindowMs).toBe(60_000);
    for (const name of [ENV.verifySweepMs, ENV.verifyWindowMs, ENV.reconcileRateMs]) {
      expect(() => readReconcilerConfig({ ...reconcilerEnv, [name]: '0' })).toThrow(name);
    }
  });

  test('instance lists accept commas and whitespace; empty means none', () => {
    const config = readScannerConfig({ [ENV.scanQueueUrl]: 'q', [ENV.includeInstances]: ' a,b  c,,', [ENV.excludeInstances]: '' });
    expect([...config.includeInstances]).toEqual(['a', 'b', 'c']);
    expect(config.excludeInstances.size).toBe(0);
  });
});

describe('truncation detection', () => {
  const line = (n: number) => `1700000000000000,host,user,client,1,${n},QUERY,db,'SELECT ${n}',0\n`;

  test('counts the complete lines before a cut line, with or without a final line break', () => {
    const cut = `1700000000000000,host,user,client,1,9,QUERY,db,'SELECT ${'x'.repeat(50)} ${RDS_TRUNCATION_TEXT}`;
    expect(completeLinesBeforeTruncation(Buffer.from(line(1) + line(2) + cut))).toBe(2);
    expect(completeLinesBeforeTruncation(Buffer.from(line(1) + line(2) + cut + '\n'))).toBe(2);
    expect(completeLinesBeforeTruncation(Buffer.from(line(1) + cut + '\r\n'))).toBe(1);
    expect(completeLinesBeforeTruncation(Buffer.from(cut + '\n'))).toBe(0);
  });

  test('whole pages, and the text anywhere but at the end, are not truncation', () => {
    expect(completeLinesBeforeTruncation(Buffer.from(line(1) + line(2)))).toBeUndefined();
    expect(completeLinesBeforeTruncation(Buffer.from(''))).toBeUndefined();
    const quoted = `1700000000000000,host,user,client,1,3,QUERY,db,'SELECT "${RDS_TRUNCATION_TEXT}"',0\n`;
    expect(completeLinesBeforeTruncation(Buffer.from(line(1) + quoted))).toBeUndefined();
  });
});

describe('ledger item validation', () => {
  const raw = {
    DBInstanceIdentifier: 'db-1',
    LogFileName: 'audit/audit.log.0',
    Size: 300,
    LastWritten: 1,
    Status: 'IN_PROGRESS',
    StatusChangedAt: 2,
    BackedUpBytes: 100,
  };

  test('an open intent is read with its resume marker', () => {
    const intent = { Start: 100, End: 300, Sha256: 'abc=', Marker: '4:300' };
    expect(toLedgerItem({ ...raw, PendingSegment: intent }).PendingSegment).toEqual(intent);
    expect(toLedgerItem(raw).PendingSegment).toBeUndefined();
  });

  test('a malformed intent is an error, never guessed at', () => {
    for (const bad of [
      { Start: 100, End: 300, Sha256: 'abc=' },
      { Start: 100, End: 100, Sha256: 'abc=', Marker: '4:100' },
      { Start: '100', End: 300, Sha256: 'abc=', Marker: '4:300' },
      'not a map',
    ]) {
      expect(() => toLedgerItem({ ...raw, PendingSegment: bad })).toThrow(LedgerFormatError);
    }
  });

  test('MarkerSkipBytes is read on the item and on an intent, absent when not set', () => {
    const intent = { Start: 100, End: 300, Sha256: 'abc=', Marker: '4:200', MarkerSkipBytes: 100 };
    const item = toLedgerItem({ ...raw, Marker: '3:40', MarkerSkipBytes: 60, PendingSegment: intent });
    expect(item).toMatchObject({ Marker: '3:40', MarkerSkipBytes: 60, PendingSegment: intent });
    const plain = toLedgerItem({ ...raw, PendingSegment: { Start: 100, End: 300, Sha256: 'abc=', Marker: '4:300' } });
    expect(plain.MarkerSkipBytes).toBeUndefined();
    expect(plain.PendingSegment).not.toHaveProperty('MarkerSkipBytes');
  });

  test('a MarkerSkipBytes that is not a byte count is an error', () => {
    for (const bad of [-1, 1.5, '60']) {
      expect(() => toLedgerItem({ ...raw, Marker: '3:40', MarkerSkipBytes: bad })).toThrow(LedgerFormatError);
      const intent = { Start: 100, End: 300, Sha256: 'abc=', Marker: '4:200', MarkerSkipBytes: bad };
      expect(() => toLedgerItem({ ...raw, PendingSegment: intent })).toThrow(LedgerFormatError);
    }
  });
});
