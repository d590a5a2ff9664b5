/**
 * The endpoint's raw serve rate: one file downloaded start to end with @aws-sdk/client-rds
 * (Marker "0", loop on AdditionalDataPending, pages counted and released), as the denominator of the benchmark's
 * "pipeline throughput ÷ raw serve rate". The client decodes LogFileData as the downloader's does.
 *
 *   node --import tsx scripts/local-lab/rds-endpoint/serve-rate.ts [--size-mib 1024] [--dir /tmp] [--encoding escaped|cdata]
 *
 * writes a synthetic MariaDB-format audit file of that size, serves it from an in-process endpoint (as
 * the local lab runs it, in the runner's process), measures, prints JSON and deletes the file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DownloadDBLogFilePortionCommand, RDSClient } from '@aws-sdk/client-rds';
import { logFileDataBytes, logPortionFastPath, releaseLogFileData } from '../../../lambda/shared/log-portion-decoder';
import { startRdsLogEndpoint } from './server';

export interface ServeRate {
  bytes: number;
  calls: number;
  seconds: number;
  /** Decimal megabytes (1,000,000 bytes) per second, the unit of the 1 MB page. */
  mbPerSecond: number;
}

/** Downloads `logFileName` whole and times it; the data is counted, not kept. */
export async function measureServeRate(client: RDSClient, instanceId: string, logFileName: string): Promise<ServeRate> {
  const began = process.hrtime.bigint();
  let bytes = 0;
  let calls = 0;
  let marker = '0';
  for (;;) {
    const page = await client.send(
      new DownloadDBLogFilePortionCommand({ DBInstanceIdentifier: instanceId, LogFileName: logFileName, Marker: marker }),
    );
    calls++;
    bytes += logFileDataBytes(page).length;
    // As the downloader does once a page is spooled: its buffer takes the next page.
    releaseLogFileData(page);
    if (!page.AdditionalDataPending) break;
    if (!page.Marker) throw new Error(`page ${calls} of ${logFileName} has data pending but no Marker`);
    marker = page.Marker;
  }
  const seconds = Number(process.hrtime.bigint() - began) / 1e9;
  return { bytes, calls, seconds, mbPerSecond: bytes / 1e6 / seconds };
}

/** Writes about `bytes` of MariaDB server_audit records (whole lines) to `path`; returns the size. */
export async function writeSyntheticAuditLog(path: string, bytes: number): Promise<number> {
  const file = await open(path, 'w');
  try {
    let written = 0;
    let queryId = 0;
    while (written < bytes) {
      let block = '';
      while (block.length < 4 * 1024 * 1024) {
        queryId++;
        // One query in four compares with < and >, which travel as character references when escaped.
        const query =
          queryId % 4 === 0
            ? `SELECT c FROM sbtest1 WHERE id>=${queryId % 100000} AND id<${(queryId % 100000) + 100} AND k<>0`
            : `UPDATE sbtest1 SET k=k+1 WHERE id=${queryId % 100000}, c=\\'${queryId}-x\\'`;
        block +=
          `20261125 13:05:${String(queryId % 60).padStart(2, '0')},lab-host,sbtest,localhost,${queryId % 64},${queryId},` +
          `QUERY,sbtest,'${query}',0\n`;
      }
      const buffer = Buffer.from(block, 'utf8');
      await file.write(buffer);
      written += buffer.length;
    }
    return written;
  } finally {
    await file.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '1024' },
      dir: { type: 'string' },
      encoding: { type: 'string', default: 'escaped' },
    },
    strict: true,
  });
  const encoding = values.encoding;
  if (encoding !== 'escaped' && encoding !== 'cdata') throw new Error('--encoding must be escaped or cdata');
  const root = mkdtempSync(join(values.dir ?? tmpdir(), 'rds-serve-rate-'));
  try {
    const logFileName = 'audit/audit.log.0.2026-11-25-13-05.0';
    await mkdir(join(root, 'audit'));
    const size = await writeSyntheticAuditLog(join(root, logFileName), Number(values['size-mib']) * 1024 * 1024);
    const endpoint = await startRdsLogEndpoint({
      clusters: [{ id: 'bench', parameterGroup: 'bench', instances: [{ id: 'bench-1', logs: { kind: 'directory', dir: root } }] }],
      parameterGroups: { bench: {} },
      logDataEncoding: encoding,
    });
    const client = new RDSClient({
      region: 'us-east-1',
      endpoint: endpoint.url,
      credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
    });
    client.middlewareStack.use(logPortionFastPath);
    try {
      const rate = await measureServeRate(client, 'bench-1', logFileName);
      if (rate.bytes !== size) throw new Error(`served ${rate.bytes} bytes of a ${size}-byte file`);
      process.stdout.write(`${JSON.stringify({ encoding, fileBytes: size, ...rate, peakRssMiB: process.memoryUsage().rss / 2 ** 20 })}\n`);
    } finally {
      client.destroy();
      await endpoint.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
