import { CONFIG_DEFAULTS, ConfigError, readDetectorConfig, readDownloaderConfig, readScannerConfig } from '../../lambda/shared/config';
import { ENV, RDS_TRUNCATION_TEXT } from '../../lambda/shared/contract';
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
    expect(completeLinesBeforeTruncation(line(1) + line(2) + cut)).toBe(2);
    expect(completeLinesBeforeTruncation(line(1) + line(2) + cut + '\n')).toBe(2);
    expect(completeLinesBeforeTruncation(line(1) + cut + '\r\n')).toBe(1);
    expect(completeLinesBeforeTruncation(cut + '\n')).toBe(0);
  });

  test('whole pages, and the text anywhere but at the end, are not truncation', () => {
    expect(completeLinesBeforeTruncation(line(1) + line(2))).toBeUndefined();
    expect(completeLinesBeforeTruncation('')).toBeUndefined();
    const quoted = `1700000000000000,host,user,client,1,3,QUERY,db,'SELECT "${RDS_TRUNCATION_TEXT}"',0\n`;
    expect(completeLinesBeforeTruncation(line(1) + quoted)).toBeUndefined();
  });
});
