/**
 * The detector as the schedule runs it, against the downloader world's fakes. Import it after
 * ./downloader-world: the handler modules must load with the test environment set.
 */
import { ledgerDocumentClient, rdsClient } from '../../../lambda/shared/clients';
import { CONFIG_DEFAULTS } from '../../../lambda/shared/config';
import { detectChanges } from '../../../lambda/shared/detect';
import { Ledger } from '../../../lambda/shared/ledger';
import { logger } from '../../../lambda/shared/powertools';
import { RdsLogReader } from '../../../lambda/shared/rds-log-reader';
import { INSTANCE } from './downloader-world';
import { LEDGER_TABLE } from './lambda-harness';

/** One detector run for INSTANCE, `aheadMs` in the future (e.g. past the stale-claim age). */
export async function runDetector(aheadMs = 0): Promise<void> {
  await detectChanges(
    {
      reader: new RdsLogReader(rdsClient()),
      ledger: new Ledger(ledgerDocumentClient(), LEDGER_TABLE),
      config: {
        ledgerTableName: LEDGER_TABLE,
        staleClaimMs: CONFIG_DEFAULTS.staleClaimMs,
        failedRetryBackoffMs: CONFIG_DEFAULTS.failedRetryBackoffMs,
      },
      logger,
      now: () => Date.now() + aheadMs,
    },
    { DBInstanceIdentifier: INSTANCE, ScannedAt: Date.now() },
  );
}
