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
import { AUDIT_LOG_FILENAME_FRAGMENT, LEDGER_ATTR, RDS_TRUNCATION_TEXT } from '../../lambda/shared/contract';
import { LAB_CREDENTIALS } from './aws-services';
import { PreflightError } from './preflight';
import type { LabSession } from './lab-session';
import { scanLedger, SourceFile } from './verify';

const LINES_PER_PAGE = 10_000;
const ENDPOINT_CHECK_TIMEOUT_MS = 10_000;

/** A reference copy: every byte RDS returns whole, up to a line it can only return truncated. */
export interface ReferenceCopy {
  bytes: number;
  /** Where a line starts that comes back truncated even when read alone (its bytes and the rest are not in the copy). */
  unreadableLineAt?: number;
}

/** Whether a page ends with RDS's truncation text (a cut line is always the page's last). */
function endsTruncated(data: string): boolean {
  return data.replace(/\r?\n$/, '').endsWith(RDS_TRUNCATION_TEXT);
}

/** Reads a whole file from Marker "0" into `target`: whole lines only, re-reading a cut page in smaller steps. */
export async function downloadWholeFile(rds: RDSClient, instance: string, logFileName: string, target: string): Promise<ReferenceCopy> {
  mkdirSync(dirname(target), { recursive: true });
  const out = createWriteStream(target);
  let bytes = 0;
  try {
    let marker = '0';
    let lines = LINES_PER_PAGE;
    for (;;) {
      const page = await rds.send(
        new DownloadDBLogFilePortionCommand({ DBInstanceIdentifier: instance, LogFileName: logFileName, Marker: marker, NumberOfLines: lines }),
      );
      const data = page.LogFileData ?? '';
      if (endsTruncated(data)) {
        // A line was cut at the page limit: read the same position again in smaller steps. Cut even
        // alone, it can never be read whole: the copy ends before it, where the pipeline must stop too.
        if (lines === 1) return { bytes, unreadableLineAt: bytes };
        lines = Math.max(1, Math.floor(lines / 2));
        continue;
      }
      if (!out.write(data, 'utf8')) await once(out, 'drain');
      bytes += Buffer.byteLength(data, 'utf8');
      if (!page.AdditionalDataPending) return { bytes };
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
        const copy = await downloadWholeFile(rds, instance, file.LogFileName, path);
        files.push({
          instance,
          logFileName: file.LogFileName,
          path,
          size: file.Size ?? 0,
          ...(copy.unreadableLineAt !== undefined ? { expectFailedAt: copy.unreadableLineAt } : {}),
        });
      }
      marker = page.Marker;
    } while (marker);
  }
  return files;
}
