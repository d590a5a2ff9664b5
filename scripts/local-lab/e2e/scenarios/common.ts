/** Building blocks the scenarios share: fixture sessions, growth rounds, fault proxies, log evidence. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ShardIteratorType,
  _Record as StreamSdkRecord,
} from '@aws-sdk/client-dynamodb-streams';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { LOG_OBJECT_PREFIX, type ScanMessage } from '../../../../lambda/shared/contract';
import { LAB_CLUSTER_ID, type LabSession } from '../../lab-session';
import type { RdsLogEndpointOptions } from '../../rds-endpoint';
import type { FunctionRole } from '../../stack-definition';
import { FaultProxy, InterceptedRequest, Interceptor } from '../fault-proxy';
import { FixtureLogs } from '../fixtures';
import { fileId, ScenarioRun, SessionSpec, SourceList } from '../harness';
import { emptyStreamPumpStats } from '../../runner/stream-source';

/** Lab-time stand-ins for the queue's visibility timeout and the stream mapping's retry back-off. */
export const LAB_TIME = { sqsRetryDelaySeconds: 1, streamRetryDelayMs: 250 } as const;

/** Small pages (RDS: 1 MB) so that fixture files of a few hundred KB already take many pages. */
export const FIXTURE_PAGE_LIMIT = 64 * 1024;

export interface FixtureSessionOptions {
  seed: string;
  /** Files created per instance before the session starts, and bytes in each. */
  filesPerInstance?: number;
  bytesPerFile?: number;
  maxLineBytes?: number;
  endpoint?: SessionSpec['endpoint'];
  lambda?: SessionSpec['lambda'];
  /** Started before the session (their URLs go into the functions' environment). */
  beforeStart?: () => Promise<void>;
}

export async function fixtureSession(run: ScenarioRun, options: FixtureSessionOptions): Promise<{ fixtures: FixtureLogs; session: LabSession }> {
  const fixtures = new FixtureLogs(join(run.workDir, 'fixtures'), options.seed, options.maxLineBytes);
  if (options.filesPerInstance) fixtures.populate(options.filesPerInstance, options.bytesPerFile ?? 200_000);
  await options.beforeStart?.();
  const endpoint: Pick<RdsLogEndpointOptions, 'faults' | 'pageLimitBytes' | 'logDataEncoding'> = {
    pageLimitBytes: FIXTURE_PAGE_LIMIT,
    ...options.endpoint,
  };
  const session = await run.startSession({ fixtures, endpoint, lambda: { ...LAB_TIME, ...options.lambda } });
  return { fixtures, session };
}

/** Appends to every live file, then runs a cycle; `rounds` times. */
export async function growAcrossCycles(run: ScenarioRun, fixtures: FixtureLogs, rounds: number, bytesPerFile: number): Promise<void> {
  for (let round = 0; round < rounds; round += 1) {
    for (const file of fixtures.files) if (!file.vanished) file.append(bytesPerFile);
    await run.cycle(() => fixtures.sources(), 'growth');
  }
}

/** The endpoint lists exactly the fixture files that are still there: the oracle misses none. */
export async function checkEndpointListsFixtures(run: ScenarioRun, session: LabSession, fixtures: FixtureLogs): Promise<void> {
  const listed = (await session.localSourceFiles()).filter((file) => !file.gone).map((file) => fileId(file.instance, file.logFileName)).sort();
  const expected = fixtures.files.filter((file) => !file.vanished).map((file) => fileId(file.instance, file.logFileName)).sort();
  run.check('the endpoint lists exactly the fixture files still present', JSON.stringify(listed) === JSON.stringify(expected), `${listed.length} listed`);
}

/** Sources of a MariaDB session: every audit file the databases wrote, under its stable name. */
export async function mariaDbSources(session: LabSession): Promise<SourceList> {
  return (await session.localSourceFiles()).map(({ gone: _gone, ...file }) => file);
}

/** Lines of a function's log (the handlers' JSON logs) containing `text`. */
export function countLogLines(run: ScenarioRun, role: FunctionRole, text: string): number {
  const path = join(run.workDir, 'logs', `${role}.log`);
  if (!existsSync(path)) return 0;
  return readFileSync(path, 'utf8').split('\n').filter((line) => line.includes(text)).length;
}

/** What the downloader logs when its time budget ends a pass (lambda/shared/download.ts). */
export const HAND_OFF_LOG = 'time budget nearly used: handing the rest to the next invocation';

/** A downloader's PUT of a backup object (/<bucket>/logs/...). */
export const isSegmentPut = (request: InterceptedRequest): boolean =>
  request.method === 'PUT' && (decodeURIComponent(request.url).split('?')[0] ?? '').includes(`/${LOG_OBJECT_PREFIX}`);

/** A proxy in front of one service of one function; closed when the scenario stops. */
export async function startProxy(run: ScenarioRun, target: () => string, intercept: Interceptor): Promise<FaultProxy> {
  const proxy = await FaultProxy.start(target, intercept);
  run.onCleanup(() => proxy.close());
  return proxy;
}

/** What the scanner would queue for an instance of the lab cluster. */
export function scanMessageBody(instance: string): string {
  const message: ScanMessage = { DBInstanceIdentifier: instance, DBClusterIdentifier: LAB_CLUSTER_ID, ScannedAt: Date.now() };
  return JSON.stringify(message);
}

export function scanQueueUrl(session: LabSession): string {
  const url = session.resources.queueUrls[session.definition.detectorSource.queueLogicalId];
  if (!url) throw new Error('the lab has no scan queue');
  return url;
}

export async function sendToScanQueue(session: LabSession, bodies: readonly string[]): Promise<void> {
  for (const body of bodies) {
    await session.clients.sqs.send(new SendMessageCommand({ QueueUrl: scanQueueUrl(session), MessageBody: body }));
  }
}

/** Every key under logs/ and its body (small fixture buckets only). */
export async function storedObjects(session: LabSession): Promise<Array<{ key: string; body: Buffer }>> {
  const { s3 } = session.clients;
  const objects: Array<{ key: string; body: Buffer }> = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: session.resources.bucket, Prefix: LOG_OBJECT_PREFIX, ContinuationToken: token }));
    for (const entry of page.Contents ?? []) {
      if (!entry.Key) continue;
      const { Body } = await s3.send(new GetObjectCommand({ Bucket: session.resources.bucket, Key: entry.Key }));
      objects.push({ key: entry.Key, body: Buffer.from(await (Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()) });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

/** DownloadDBLogFilePortion calls the endpoint answered so far (throttled ones included). */
export function portionCalls(session: LabSession): number {
  return session.endpoint?.stats().calls.DownloadDBLogFilePortion ?? 0;
}

/** What a direct pump of the queue and the stream did (no schedule tick). */
export interface DrainTotals {
  sqsMessages: number;
  sqsFailed: number;
  streamRead: number;
  streamDelivered: number;
  streamRetries: number;
}

/** Pumps the queue and the stream (no schedule tick) until both are quiet. */
export async function drainEventSources(run: ScenarioRun, sources: () => SourceList): Promise<DrainTotals> {
  const totals: DrainTotals = { sqsMessages: 0, sqsFailed: 0, streamRead: 0, streamDelivered: 0, streamRetries: 0 };
  const { service } = run.session;
  for (let round = 0; round < 20; round += 1) {
    run.throwIfAborted();
    const sqs = await service.sqsSource.pump();
    const stream = await service.streamSource.pump();
    run.record({ sqs, stream });
    totals.sqsMessages += sqs.messages;
    totals.sqsFailed += sqs.failed;
    totals.streamRead += stream.recordsRead;
    totals.streamDelivered += stream.delivered;
    totals.streamRetries += stream.retries;
    if (sqs.messages === 0 && stream.recordsRead === 0) break;
  }
  await run.checkLedger(sources);
  return totals;
}

/** Only the detector side: the queue pumped until quiet, the stream left alone. */
export async function pumpQueueOnly(run: ScenarioRun): Promise<number> {
  let messages = 0;
  for (;;) {
    const sqs = await run.session.service.sqsSource.pump();
    run.record({ sqs, stream: emptyStreamPumpStats() });
    messages += sqs.messages;
    if (sqs.messages === 0) return messages;
  }
}

/** Every record the ledger stream holds so far, oldest first. */
export async function readWholeStream(session: LabSession): Promise<StreamSdkRecord[]> {
  const { streams } = session.clients;
  const streamArn = session.resources.ledgerStreamArn;
  const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  const records: StreamSdkRecord[] = [];
  for (const shard of StreamDescription?.Shards ?? []) {
    let { ShardIterator: iterator } = await streams.send(
      new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: ShardIteratorType.TRIM_HORIZON }),
    );
    while (iterator) {
      const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      if (!page.Records?.length) break;
      records.push(...page.Records);
      iterator = page.NextShardIterator;
    }
  }
  return records;
}
