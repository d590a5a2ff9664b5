/**
 * The raw serve rate's client, in a process of its own as the downloader is: reads one log file whole
 * through an RDS endpoint with @aws-sdk/client-rds as fast as it can (measureServeRate) and writes the
 * figures as JSON. The client decodes LogFileData as the downloader's does (logPortionFastPath, each page
 * released once counted), so the rate is the endpoint's and not the SDK's XML parser's; the bench starts
 * it with the downloader's NODE_OPTIONS.
 *
 *   node --import tsx scripts/bench/serve-rate-client.ts <endpoint url> <instance> <log file name> <out.json>
 */
import { writeFileSync } from 'node:fs';
import { RDSClient } from '@aws-sdk/client-rds';
import { logPortionFastPath } from '../../lambda/shared/log-portion-decoder';
import { LAB_CREDENTIALS } from '../local-lab/aws-services';
import { type MemorySnapshot, memoryGrowth, memorySnapshot, peakRssKb, resetPeakRss, sampleMemory } from '../local-lab/runner/memory-sampler';
import { measureServeRate, ServeRate } from '../local-lab/rds-endpoint/serve-rate';
import { round } from './figures';
import { ownCpuSecondsSince } from './process-cpu';

export interface ClientResources {
  /** RSS once the client is created, before the first call (KiB). */
  rssBeforeKb: number;
  /** The process's peak RSS while reading the whole file (KiB; see peakRssReset). */
  maxRssKb: number;
  /** CPU time (user + system) the process used for the reading. */
  cpuSeconds: number;
  /** What grew from client creation to the highest sampled RSS, by kind. */
  peakSampleGrowth: MemorySnapshot;
  /** Whether maxRssKb counts from client creation (true) or from process start. */
  peakRssReset: boolean;
}

export type ClientServeRate = ServeRate & ClientResources;

async function main(): Promise<void> {
  const [endpoint, instance, logFileName, out] = process.argv.slice(2);
  if (!endpoint || !instance || !logFileName || !out) throw new Error('usage: serve-rate-client.ts <endpoint url> <instance> <log file name> <out.json>');
  const client = new RDSClient({ region: process.env.AWS_REGION ?? 'us-east-1', endpoint, credentials: LAB_CREDENTIALS });
  client.middlewareStack.use(logPortionFastPath);
  try {
    // Memory of a client doing only the reads: a reference for the downloader's figure.
    // The peak below is the reading's, not the module loading's.
    const peakRssReset = resetPeakRss();
    const before = memorySnapshot();
    const stopSampling = sampleMemory();
    const cpuBefore = process.cpuUsage();
    const rate = await measureServeRate(client, instance, logFileName);
    const cpuSeconds = ownCpuSecondsSince(cpuBefore);
    const peakSample = stopSampling();
    const clientResources: ClientResources = {
      rssBeforeKb: before.rssKb,
      peakSampleGrowth: memoryGrowth(before, peakSample),
      peakRssReset,
      maxRssKb: peakRssKb(),
      cpuSeconds: round(cpuSeconds, 2),
    };
    writeFileSync(out, `${JSON.stringify({ ...rate, ...clientResources })}\n`);
  } finally {
    client.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
