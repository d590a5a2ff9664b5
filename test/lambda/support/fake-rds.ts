/**
 * In-memory RDS log APIs with the behaviours that bite (FIELD-NOTES): paged DescribeDBLogFiles,
 * DownloadDBLogFilePortion pages of whole lines up to a byte limit, opaque `n:offset` markers, a
 * non-empty Marker on the final page (or, as a fault, none), NumberOfLines, the truncation text for a line cut at the limit,
 * and DBInstanceNotFound / DBLogFileNotFoundFault.
 */
import {
  DBInstanceNotFoundFault,
  DBLogFileNotFoundFault,
  type DescribeDBLogFilesCommandInput,
  type DescribeDBLogFilesCommandOutput,
  type DownloadDBLogFilePortionCommandInput,
  type DownloadDBLogFilePortionCommandOutput,
} from '@aws-sdk/client-rds';
import { RDS_TRUNCATION_TEXT } from '../../../lambda/shared/contract';

const TRUNCATION_SUFFIX = Buffer.from(` ${RDS_TRUNCATION_TEXT}\n`);

interface FakeFile {
  content: Buffer;
  lastWritten: number;
}

export interface FakeRdsOptions {
  /** Bytes per DownloadDBLogFilePortion page (RDS: 1 MB). */
  pageLimit?: number;
  /** Files per DescribeDBLogFiles page. */
  describePageSize?: number;
  /**
   * When a page is full, cut the next line into the remaining space and append the truncation text
   * (otherwise a page ends at the last whole line and only a line longer than a page is cut).
   */
  cutStraddlingLine?: boolean;
  /** RDS puts a Marker on the final page too (default); false omits it there, as RDS may not promise. */
  nonEmptyFinalMarker?: boolean;
}

export class FakeRds {
  private readonly instances = new Map<string, Map<string, FakeFile>>();
  private markerSequence = 0;
  readonly downloads: DownloadDBLogFilePortionCommandInput[] = [];
  /** Source ranges [from, to) of each untruncated page served, to prove nothing is read twice. */
  readonly servedRanges: Array<{ file: string; from: number; to: number }> = [];
  describeCalls = 0;
  pageLimit: number;
  describePageSize: number;
  cutStraddlingLine: boolean;
  nonEmptyFinalMarker: boolean;

  constructor(options: FakeRdsOptions = {}) {
    this.pageLimit = options.pageLimit ?? 1024;
    this.describePageSize = options.describePageSize ?? 100;
    this.cutStraddlingLine = options.cutStraddlingLine ?? false;
    this.nonEmptyFinalMarker = options.nonEmptyFinalMarker ?? true;
  }

  addInstance(instance: string): void {
    if (!this.instances.has(instance)) this.instances.set(instance, new Map());
  }

  removeInstance(instance: string): void {
    this.instances.delete(instance);
  }

  writeFile(instance: string, file: string, content: string, lastWritten = 1_700_000_000_000): void {
    this.addInstance(instance);
    this.instances.get(instance)?.set(file, { content: Buffer.from(content), lastWritten });
  }

  appendFile(instance: string, file: string, more: string, lastWritten: number): void {
    const existing = this.fileOf(instance, file);
    existing.content = Buffer.concat([existing.content, Buffer.from(more)]);
    existing.lastWritten = lastWritten;
  }

  deleteFile(instance: string, file: string): void {
    this.instances.get(instance)?.delete(file);
  }

  content(instance: string, file: string): Buffer {
    return this.fileOf(instance, file).content;
  }

  private files(instance: string): Map<string, FakeFile> {
    const files = this.instances.get(instance);
    if (!files) {
      throw new DBInstanceNotFoundFault({ message: `DBInstance ${instance} not found.`, $metadata: { httpStatusCode: 404 } });
    }
    return files;
  }

  private fileOf(instance: string, file: string): FakeFile {
    const found = this.files(instance).get(file);
    if (!found) {
      throw new DBLogFileNotFoundFault({ message: `DBLogFile ${file} not found.`, $metadata: { httpStatusCode: 404 } });
    }
    return found;
  }

  describeDBLogFiles(input: DescribeDBLogFilesCommandInput): Partial<DescribeDBLogFilesCommandOutput> {
    this.describeCalls++;
    const names = [...this.files(input.DBInstanceIdentifier ?? '').entries()]
      .filter(([name]) => !input.FilenameContains || name.includes(input.FilenameContains))
      .sort(([a], [b]) => a.localeCompare(b));
    const from = input.Marker ? Number(input.Marker) : 0;
    const page = names.slice(from, from + this.describePageSize);
    return {
      DescribeDBLogFiles: page.map(([name, file]) => ({
        LogFileName: name,
        Size: file.content.length,
        LastWritten: file.lastWritten,
      })),
      Marker: from + page.length < names.length ? String(from + page.length) : undefined,
    };
  }

  downloadDBLogFilePortion(input: DownloadDBLogFilePortionCommandInput): Partial<DownloadDBLogFilePortionCommandOutput> {
    this.downloads.push({ ...input });
    const file = this.fileOf(input.DBInstanceIdentifier ?? '', input.LogFileName ?? '');
    if (input.Marker === undefined) throw new Error('fake RDS: downloads without a Marker return the newest lines');
    const start = input.Marker === '0' ? 0 : Number(input.Marker.split(':')[1]);
    const lines: Buffer[] = [];
    let offset = start;
    let size = 0;
    const maxLines = input.NumberOfLines ?? Number.POSITIVE_INFINITY;
    let truncated = false;
    while (offset < file.content.length && lines.length < maxLines) {
      const newline = file.content.indexOf(0x0a, offset);
      const lineEnd = newline === -1 ? file.content.length : newline + 1;
      const line = file.content.subarray(offset, lineEnd);
      if (size + line.length <= this.pageLimit) {
        lines.push(line);
        size += line.length;
        offset = lineEnd;
        continue;
      }
      if (lines.length === 0 || this.cutStraddlingLine) {
        const room = Math.max(0, this.pageLimit - size - TRUNCATION_SUFFIX.length);
        lines.push(line.subarray(0, room), TRUNCATION_SUFFIX);
        offset = lineEnd;
        truncated = true;
      }
      break;
    }
    if (!truncated) this.servedRanges.push({ file: input.LogFileName ?? '', from: start, to: offset });
    const pending = offset < file.content.length;
    return {
      LogFileData: Buffer.concat(lines).toString('utf8'),
      // Like RDS, the final page still carries a Marker (unless the fault is on).
      Marker: pending || this.nonEmptyFinalMarker ? `${++this.markerSequence}:${offset}` : undefined,
      AdditionalDataPending: pending,
    };
  }
}

/** Audit-like CSV lines (`timestamp,host,user,client,conn,query,op,db,'statement',retcode`). */
export function auditLines(count: number, firstId = 0, statementBytes = 40): string {
  let text = '';
  for (let i = firstId; i < firstId + count; i++) {
    const statement = `SELECT ${'x'.repeat(statementBytes)} /* ${i} */`;
    text += `1700000000${String(i).padStart(6, '0')},ip-10-0-0-1,app,10.0.0.9,${i},${i},QUERY,sbtest,'${statement}',0\n`;
  }
  return text;
}
