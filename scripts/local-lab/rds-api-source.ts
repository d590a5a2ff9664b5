/**
 * When the lab runs against another RDS-API-compatible endpoint it cannot read the log files from disk,
 * so the verification compares the backup with reference copies read through the RDS API itself — an
 * independent, deliberately simple reader (whole file from Marker "0", whole lines only), not the
 * downloader's code.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { DescribeDBInstancesCommand, DescribeDBLogFilesCommand, DownloadDBLogFilePortionCommand, RDSClient } from '@aws-sdk/client-rds';
import { AUDIT_LOG_FILENAME_FRAGMENT, LEDGER_ATTR } from '../../lambda/shared/contract';
import { LAB_CREDENTIALS } from './aws-services';
import { PreflightError } from './preflight';
import type { LabSession } from './lab-session';
import { scanLedger, SourceFile } from './verify';

const TRUNCATION_TEXT = '[Your log message was truncated]';
const LINES_PER_PAGE = 10_000;
const ENDPOINT_CHECK_TIMEOUT_MS = 10_000;

async function downloadWholeFile(rds: RDSClient, instance: string, logFileName: string, target: string): Promise<void> {
  mkdirSync(dirname(target), { recursive: true });
  const out = createWriteStream(target);
  try {
    let marker = '0';
    let lines = LINES_PER_PAGE;
    for (;;) {
      const page = await rds.send(
        new DownloadDBLogFilePortionCommand({ DBInstanceIdentifier: instance, LogFileName: logFileName, Marker: marker, NumberOfLines: lines }),
      );
      const data = page.LogFileData ?? '';
      if (data.includes(TRUNCATION_TEXT) && lines > 1) {
        // A line was cut at the page limit: read the same position again in smaller steps.
        lines = Math.max(1, Math.floor(lines / 2));
        continue;
      }
      if (!out.write(data, 'utf8')) await once(out, 'drain');
      if (!page.AdditionalDataPending) break;
      if (!page.Marker) throw new Error(`${instance}/${logFileName}: AdditionalDataPending without a Marker`);
      marker = page.Marker;
      lines = LINES_PER_PAGE;
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
}

/**
 * Fails fast, before anything starts, when the endpoint does not answer: otherwise every scan would
 * fail, cycle after cycle, until the workload time is over. One call, no retries.
 */
export async function checkRdsEndpointAnswers(url: string, region: string): Promise<void> {
  const rds = new RDSClient({ region, endpoint: url, credentials: LAB_CREDENTIALS, maxAttempts: 1 });
  try {
    await rds.send(new DescribeDBInstancesCommand({ MaxRecords: 20 }), { abortSignal: AbortSignal.timeout(ENDPOINT_CHECK_TIMEOUT_MS) });
  } catch (error) {
    throw new PreflightError(`the RDS endpoint ${url} does not answer DescribeDBInstances: ${(error as Error).message || String(error)}`);
  } finally {
    rds.destroy();
  }
}

/** Reference copies of every audit file of every instance the ledger knows. */
export async function downloadReferenceCopies(session: LabSession, dir: string): Promise<Array<SourceFile & { size: number }>> {
  const rds = new RDSClient({ region: session.aws.region, endpoint: session.rdsEndpointUrl, credentials: LAB_CREDENTIALS });
  const ledger = await scanLedger(session.clients.ledger, session.resources.ledgerTable);
  const instances = [...new Set(ledger.map((item) => String(item[LEDGER_ATTR.instance])))].sort();
  const files: Array<SourceFile & { size: number }> = [];
  for (const instance of instances) {
    let marker: string | undefined;
    do {
      const page = await rds.send(
        new DescribeDBLogFilesCommand({ DBInstanceIdentifier: instance, FilenameContains: AUDIT_LOG_FILENAME_FRAGMENT, Marker: marker }),
      );
      for (const file of page.DescribeDBLogFiles ?? []) {
        if (!file.LogFileName) continue;
        const path = join(dir, instance, file.LogFileName);
        await downloadWholeFile(rds, instance, file.LogFileName, path);
        files.push({ instance, logFileName: file.LogFileName, path, size: file.Size ?? 0 });
      }
      marker = page.Marker;
    } while (marker);
  }
  return files;
}
