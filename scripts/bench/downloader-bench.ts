/**
 * Downloader benchmark (not a test): backs up one synthetic audit log of --mb MiB through the real
 * downloader core (ledger, RDS log reader, segment writer, download pass) against mocked clients:
 * RDS serves 1 MB pages of generated lines (the file is never held whole in memory), S3 consumes each
 * PUT's body stream and checks its SHA-256, the ledger is an in-memory table. Prints and writes
 * (bench-results/downloader.json) peak RSS and heap growth, DownloadDBLogFilePortion calls per MiB and
 * throughput, and fails if the stored bytes differ from the source.
 *
 *   node --import tsx scripts/bench/downloader-bench.ts [--mb 300] [--max-object-mb 128] [--page-kb 1024]
 *       [--pages-per-pass N] [--cut-straddling] [--out bench-results/downloader.json]
 *
 * --pages-per-pass N ends each pass after N pages (a time-budget hand-off) to measure resumption;
 * --cut-straddling makes every full page end in a truncated line (worst case for re-reads).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { positiveNumber, wholeNumberFromZero } from '../cli/args';
import { Logger } from '@aws-lambda-powertools/logger';
import { DownloadDBLogFilePortionCommand, RDSClient } from '@aws-sdk/client-rds';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { ledgerDocumentClient, rdsClient, s3Client } from '../../lambda/shared/clients';
import { LEDGER_KEY, LedgerStatus, type LedgerItem, RDS_TRUNCATION_TEXT } from '../../lambda/shared/contract';
import { type DownloadResult, backUpLogFile } from '../../lambda/shared/download';
import { Ledger } from '../../lambda/shared/ledger';
import { RdsLogReader } from '../../lambda/shared/rds-log-reader';
import { SegmentWriter } from '../../lambda/shared/segment-writer';
import { FakeTable, type Item } from '../../test/lambda/support/fake-dynamodb';

const MIB = 1024 * 1024;
const { values: args } = parseArgs({
  options: {
    mb: { type: 'string' },
    'max-object-mb': { type: 'string' },
    'page-kb': { type: 'string' },
    'pages-per-pass': { type: 'string' },
    'cut-straddling': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench-results/downloader.json' },
  },
});

const targetBytes = Math.round(positiveNumber('--mb', args.mb, 300) * MIB);
const maxObjectBytes = Math.round(positiveNumber('--max-object-mb', args['max-object-mb'], 128) * MIB);
const pageLimit = Math.round(positiveNumber('--page-kb', args['page-kb'], 1024) * 1024);
const pagesPerPass = wholeNumberFromZero('--pages-per-pass', args['pages-per-pass'], 0);
const cutStraddling = args['cut-straddling'] ?? false;

/** Deterministic audit-like lines (sysbench statements, a few long INSERTs), generated on demand. */
class SyntheticAuditLog {
  constructor(readonly lineCount: number) {}

  static line(index: number): string {
    // xorshift-style hash of the index: the same line for the same index, every time.
    let x = (index + 1) * 0x9e3779b1;
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    const r = (x >>> 0) % 1000;
    const table = `sbtest${(r % 8) + 1}`;
    const id = (x >>> 3) % 100_000;
    let statement: string;
    if (r < 700) statement = `SELECT c FROM ${table} WHERE id=${id}`;
    else if (r < 850) statement = `UPDATE ${table} SET k=k+1 WHERE id=${id}`;
    else if (r < 990) statement = `DELETE FROM ${table} WHERE id=${id}`;
    else statement = `INSERT INTO ${table} (id, k, c, pad) VALUES (${id}, ${r}, '${'7'.repeat(120 + r)}', '${'3'.repeat(60)}')`;
    const timestamp = 1_704_355_200_000_000 + index * 137;
    return `${timestamp},ip-10-0-1-23,sbtest_user,10.0.2.${index % 250},${1000 + (index % 64)},${index},QUERY,sbtest,'${statement.replace(/'/g, "\\'")}',0\n`;
  }

  /** Lines until the target size: the file's exact size and SHA-256, computed without keeping it. */
  static measure(target: number): { log: SyntheticAuditLog; size: number; sha256: string } {
    const hash = createHash('sha256');
    let size = 0;
    let lines = 0;
    while (size < target) {
      const line = SyntheticAuditLog.line(lines++);
      size += Buffer.byteLength(line);
      hash.update(line);
    }
    return { log: new SyntheticAuditLog(lines), size, sha256: hash.digest('base64') };
  }
}

/**
 * Serves DownloadDBLogFilePortion pages sequentially: a request must start where the previous page
 * started (a re-read) or ended (the next page); anything else would be a re-download and fails.
 */
class PageServer {
  private pageStart = { line: 0, offset: 0 };
  private pageEnd = { line: 0, offset: 0 };
  private sequence = 0;
  calls = 0;
  bytesServed = 0;

  constructor(
    private readonly log: SyntheticAuditLog,
    private readonly size: number,
  ) {}

  page(marker: string, numberOfLines: number | undefined) {
    this.calls++;
    const offset = marker === '0' ? 0 : Number(marker.split(':')[1]);
    if (offset === this.pageEnd.offset) this.pageStart = { ...this.pageEnd };
    else if (offset !== this.pageStart.offset) throw new Error(`non-sequential read at ${offset}`);
    let { line, offset: position } = this.pageStart;
    const parts: string[] = [];
    let bytes = 0;
    const maxLines = numberOfLines ?? Number.POSITIVE_INFINITY;
    let lines = 0;
    while (line < this.log.lineCount && lines < maxLines) {
      const text = SyntheticAuditLog.line(line);
      const length = Buffer.byteLength(text);
      if (bytes + length > pageLimit) {
        if (cutStraddling || lines === 0) {
          const suffix = ` ${RDS_TRUNCATION_TEXT}\n`;
          parts.push(text.slice(0, Math.max(0, pageLimit - bytes - suffix.length)), suffix);
          line++;
          position += length;
        }
        break;
      }
      parts.push(text);
      bytes += length;
      position += length;
      line++;
      lines++;
    }
    this.pageEnd = { line, offset: position };
    const data = parts.join('');
    this.bytesServed += Buffer.byteLength(data);
    return { LogFileData: data, Marker: `${++this.sequence}:${position}`, AdditionalDataPending: position < this.size };
  }
}

/** Consumes each PUT's body as a stream, verifies its SHA-256 and feeds a digest of all bytes in order. */
class VerifyingBucket {
  readonly whole = createHash('sha256');
  objects: Array<{ key: string; bytes: number }> = [];

  async put(input: { Key?: string; Body?: unknown; ContentLength?: number; ChecksumSHA256?: string }) {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of input.Body as Readable) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      this.whole.update(buffer);
      bytes += buffer.length;
    }
    const digest = hash.digest('base64');
    if (digest !== input.ChecksumSHA256 || bytes !== input.ContentLength) {
      throw new Error(`object ${input.Key}: checksum or length mismatch`);
    }
    this.objects.push({ key: input.Key ?? '', bytes });
    return { ChecksumSHA256: digest };
  }
}

class MemorySampler {
  private timer: NodeJS.Timeout | undefined;
  readonly baseline = process.memoryUsage();
  peakRss = this.baseline.rss;
  peakHeapUsed = this.baseline.heapUsed;
  peakExternal = this.baseline.external + this.baseline.arrayBuffers;
  samples = 0;

  start(intervalMs = 25): void {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    const usage = process.memoryUsage();
    this.samples++;
    this.peakRss = Math.max(this.peakRss, usage.rss);
    this.peakHeapUsed = Math.max(this.peakHeapUsed, usage.heapUsed);
    this.peakExternal = Math.max(this.peakExternal, usage.external + usage.arrayBuffers);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }
}

const mib = (bytes: number) => Math.round((bytes / MIB) * 10) / 10;

async function main(): Promise<void> {
  process.env.AWS_REGION ??= 'us-east-1';
  const instance = 'bench-writer-1';
  const file = 'audit/audit.log.0.2024-01-04-08-30.0';

  process.stdout.write(`generating a ${mib(targetBytes)} MiB synthetic audit log (measured, not stored)... `);
  const { log, size, sha256: sourceSha256 } = SyntheticAuditLog.measure(targetBytes);
  console.log(`${log.lineCount} lines, ${size} bytes`);

  const server = new PageServer(log, size);
  const bucket = new VerifyingBucket();
  const table = new FakeTable(LEDGER_KEY.partitionKey, LEDGER_KEY.sortKey);
  // The mocks' call history would keep every 1 MB page alive (sinon records arguments and results):
  // forget it on every call so the figures measure the downloader, not the mock.
  const rdsMock = mockClient(RDSClient);
  rdsMock.on(DownloadDBLogFilePortionCommand).callsFake((input) => {
    queueMicrotask(() => rdsMock.resetHistory());
    return server.page(input.Marker ?? '', input.NumberOfLines);
  });
  const s3Mock = mockClient(S3Client);
  s3Mock.on(PutObjectCommand).callsFake((input) => {
    queueMicrotask(() => s3Mock.resetHistory());
    return bucket.put(input);
  });
  const ledgerMock = mockClient(DynamoDBDocumentClient);
  ledgerMock.on(GetCommand).callsFake((input) => table.get(input));
  ledgerMock.on(UpdateCommand).callsFake((input) => table.update(input));

  const item: LedgerItem = {
    DBInstanceIdentifier: instance,
    LogFileName: file,
    Size: size,
    LastWritten: Date.now(),
    Status: LedgerStatus.PENDING,
    StatusChangedAt: Date.now(),
    BackedUpBytes: 0,
  };
  table.seed(item as unknown as Item);

  const spoolDir = mkdtempSync(join(tmpdir(), 'downloader-bench-'));
  const deps = {
    ledger: new Ledger(ledgerDocumentClient(), 'bench-ledger'),
    reader: new RdsLogReader(rdsClient()),
    segments: new SegmentWriter(s3Client(), 'bench-bucket', spoolDir),
    config: { safetyMarginMs: 1, maxObjectBytes },
    logger: new Logger({ serviceName: 'downloader-bench', logLevel: 'WARN' }),
    now: Date.now,
  };

  (globalThis as { gc?: () => void }).gc?.();
  const sampler = new MemorySampler();
  sampler.start();
  const started = process.hrtime.bigint();
  const results: DownloadResult[] = [];
  try {
    for (let pass = 1; ; pass++) {
      const callsAtStart = server.calls;
      const budget = {
        remainingMs: () => (pagesPerPass > 0 && server.calls - callsAtStart >= pagesPerPass ? 0 : 900_000),
      };
      const result = await backUpLogFile(deps, { instance, file }, `bench-${pass}`, budget);
      results.push(result);
      if (result.outcome === 'DONE') break;
      if (result.outcome !== 'HANDED_OFF') throw new Error(`pass ${pass} ended ${result.outcome}`);
    }
  } finally {
    sampler.stop();
    rmSync(spoolDir, { recursive: true, force: true });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;

  const stored = table.item({ [LEDGER_KEY.partitionKey]: instance, [LEDGER_KEY.sortKey]: file }) as unknown as LedgerItem;
  const storedSha256 = bucket.whole.digest('base64');
  const identical = storedSha256 === sourceSha256 && stored.BackedUpBytes === size;
  const figures = {
    benchmark: 'downloader',
    node: process.version,
    config: { sizeBytes: size, lines: log.lineCount, pageLimitBytes: pageLimit, maxObjectBytes, pagesPerPass, cutStraddling },
    passes: results.length,
    objects: bucket.objects.length,
    portionCalls: server.calls,
    portionCallsPerMiB: Math.round((server.calls / (size / MIB)) * 1000) / 1000,
    bytesReadFromRdsPerSourceByte: Math.round((server.bytesServed / size) * 10000) / 10000,
    seconds: Math.round(seconds * 100) / 100,
    mibPerSecond: Math.round((size / MIB / seconds) * 10) / 10,
    bytesPerSecond: Math.round(size / seconds),
    memory: {
      samples: sampler.samples,
      rssBaselineMiB: mib(sampler.baseline.rss),
      rssPeakMiB: mib(sampler.peakRss),
      rssGrowthMiB: mib(sampler.peakRss - sampler.baseline.rss),
      heapUsedBaselineMiB: mib(sampler.baseline.heapUsed),
      heapUsedPeakMiB: mib(sampler.peakHeapUsed),
      heapGrowthMiB: mib(sampler.peakHeapUsed - sampler.baseline.heapUsed),
      externalPeakMiB: mib(sampler.peakExternal),
    },
    verification: { identical, status: stored.Status, segments: stored.Segments?.length ?? 0, sourceSha256, storedSha256 },
  };

  console.log(JSON.stringify(figures, null, 2));
  mkdirSync(dirname(args.out ?? ''), { recursive: true });
  writeFileSync(args.out ?? '', `${JSON.stringify(figures, null, 2)}\n`);
  console.log(`written to ${args.out}`);
  if (!identical || stored.Status !== LedgerStatus.DONE) {
    console.error('FAILED: stored bytes differ from the source or the file is not DONE');
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
