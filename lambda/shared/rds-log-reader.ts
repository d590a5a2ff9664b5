/**
 * The RDS log APIs as the pipeline needs them: list an instance's audit files (all pages) and read
 * one page of a file from a marker, with the 1 MB truncation handled so a cut line is never returned.
 */
import {
  DownloadDBLogFilePortionCommand,
  type RDSClient,
  paginateDescribeDBLogFiles,
} from '@aws-sdk/client-rds';
import { AUDIT_LOG_FILENAME_FRAGMENT, RDS_TRUNCATION_TEXT } from './contract';
import type { LogFileListing } from './ledger';
import { logFileDataBytes, releaseLogFileData } from './log-portion-decoder';

/** The marker that starts a file from its first byte (without one RDS returns the newest lines). */
export const FIRST_MARKER = '0';

export interface LogPage {
  /** UTF-8 bytes of the page's complete lines. */
  data: Buffer;
  /** Marker after this page; undefined when RDS returned none. */
  marker: string | undefined;
  additionalDataPending: boolean;
  /** DownloadDBLogFilePortion calls this page took (more than one when a truncated page was re-read). */
  calls: number;
  /**
   * Done with `data`: its buffer may be reused for a later page (see log-portion-decoder), so `data`
   * must not be read afterwards. Optional for the caller; a page never released is garbage-collected.
   */
  release(): void;
}

/** A single line longer than a page: RDS cannot return it whole, so it must not be stored cut. */
export class LineTooLongError extends Error {
  static readonly errorName = 'LineTooLongError';

  /** Whether a ledger item's LastError was written for this error (the downloader records `name: message`). */
  static isRecordedReason(lastError: string | undefined): boolean {
    return lastError?.startsWith(`${LineTooLongError.errorName}:`) === true;
  }

  constructor(instance: string, file: string, marker: string) {
    super(
      `a single line of ${instance} ${file} at marker ${marker} exceeds the 1 MB page limit and comes back ` +
        `truncated even when read alone; it cannot be backed up byte-identical`,
    );
    this.name = LineTooLongError.errorName;
  }
}

function errorNamed(error: unknown, names: readonly string[]): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { Code?: unknown }).Code;
  return names.includes(error.name) || (typeof code === 'string' && names.includes(code));
}

/** The SDK names the wire code `DBInstanceNotFound` as `DBInstanceNotFoundFault`; accept both. */
export function isInstanceNotFound(error: unknown): boolean {
  return errorNamed(error, ['DBInstanceNotFoundFault', 'DBInstanceNotFound']);
}

export function isLogFileNotFound(error: unknown): boolean {
  return errorNamed(error, ['DBLogFileNotFoundFault', 'DBLogFileNotFound']);
}

const TRUNCATION = Buffer.from(RDS_TRUNCATION_TEXT, 'utf8');
const LF = 0x0a;
const CR = 0x0d;

/**
 * When `data` ends with a line RDS cut at the page limit, the number of complete lines before it;
 * otherwise undefined. The text is checked at the very end of the page (optionally followed by a line
 * break): audit records end with their return code, so a whole record never ends with that text.
 */
export function completeLinesBeforeTruncation(data: Buffer): number | undefined {
  let end = data.length;
  if (data[end - 1] === LF) end -= data[end - 2] === CR ? 2 : 1;
  if (end < TRUNCATION.length || !data.subarray(end - TRUNCATION.length, end).equals(TRUNCATION)) return undefined;
  let lines = 0;
  for (let at = data.indexOf(LF); at !== -1 && at < end; at = data.indexOf(LF, at + 1)) lines++;
  return lines;
}

export class RdsLogReader {
  constructor(private readonly rds: RDSClient) {}

  /** Every audit log file RDS lists for the instance (all pages). */
  async listAuditLogFiles(instance: string): Promise<LogFileListing[]> {
    const files: LogFileListing[] = [];
    const pages = paginateDescribeDBLogFiles(
      { client: this.rds },
      { DBInstanceIdentifier: instance, FilenameContains: AUDIT_LOG_FILENAME_FRAGMENT },
    );
    for await (const page of pages) {
      for (const entry of page.DescribeDBLogFiles ?? []) {
        if (!entry.LogFileName || entry.Size === undefined || entry.LastWritten === undefined) {
          throw new Error(`DescribeDBLogFiles for ${instance} returned an incomplete entry: ${JSON.stringify(entry)}`);
        }
        files.push({ LogFileName: entry.LogFileName, Size: entry.Size, LastWritten: entry.LastWritten });
      }
    }
    return files;
  }

  /**
   * Whether RDS still lists this file of the instance (false when the instance is gone too). A
   * download can answer DBLogFileNotFoundFault briefly during a rotation while the file stays listed.
   */
  async isListed(instance: string, file: string): Promise<boolean> {
    try {
      const pages = paginateDescribeDBLogFiles({ client: this.rds }, { DBInstanceIdentifier: instance, FilenameContains: file });
      for await (const page of pages) {
        if ((page.DescribeDBLogFiles ?? []).some((entry) => entry.LogFileName === file)) return true;
      }
      return false;
    } catch (error) {
      if (isInstanceNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * One page from `marker`. A page that ends in a truncated line is read again from the same marker
   * with only the complete lines before the cut (halving when that is still truncated), so the
   * returned data always ends at a line boundary of the source file. `abortSignal` ends the calls (and
   * the SDK's retries) early.
   */
  async readPage(instance: string, file: string, marker: string, abortSignal?: AbortSignal): Promise<LogPage> {
    let lineLimit: number | undefined;
    for (let calls = 1; ; calls++) {
      const response = await this.rds.send(
        new DownloadDBLogFilePortionCommand({
          DBInstanceIdentifier: instance,
          LogFileName: file,
          Marker: marker,
          NumberOfLines: lineLimit,
        }),
        { abortSignal },
      );
      const data = logFileDataBytes(response);
      const completeLines = completeLinesBeforeTruncation(data);
      if (completeLines === undefined) {
        return {
          data,
          marker: response.Marker || undefined,
          additionalDataPending: response.AdditionalDataPending === true,
          calls,
          release: () => releaseLogFileData(response),
        };
      }
      // The cut page is read again with fewer lines: its buffer can take that page.
      releaseLogFileData(response);
      if (lineLimit === 1) throw new LineTooLongError(instance, file, marker);
      const fewer = lineLimit === undefined ? completeLines : Math.min(completeLines, Math.floor(lineLimit / 2));
      lineLimit = Math.max(1, fewer);
    }
  }
}
