/**
 * At-least-once delivery: the same scan message delivered several times (and once more after its
 * visibility timeout, as when a detector's delete is lost), and ledger-stream records replayed to the
 * downloader. Neither may cause an extra ledger write, an extra object or an extra byte read.
 */
import { ChangeMessageVisibilityCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { BatchWriteItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { IDEMPOTENCY_KEY, LEDGER_ATTR, LedgerStatus } from '../../../../lambda/shared/contract';
import { LAB_INSTANCE_IDS, type LabSession } from '../../lab-session';
import { buildDynamoDbStreamEvent, buildSqsEvent, toDynamoDbRecord } from '../../runner/events';
import { compileFilters } from '../../runner/filter-matcher';
import type { FixtureFile } from '../fixtures';
import { fileId, Scenario, ScenarioRun, servedBytes } from '../harness';
import { drainEventSources, fixtureSession, portionCalls, pumpQueueOnly, readWholeStream, scanMessageBody, scanQueueUrl, sendToScanQueue } from './common';

/** Everything a duplicate could change: the ledger, the objects (and their versions), RDS reads. */
async function snapshot(run: ScenarioRun): Promise<{ ledger: string; versions: string; portionCalls: number }> {
  const ledger = (await run.ledgerItems()).sort((a, b) => fileId(a.DBInstanceIdentifier, a.LogFileName).localeCompare(fileId(b.DBInstanceIdentifier, b.LogFileName)));
  const versions = [...(await run.objectVersions())].sort(([a], [b]) => a.localeCompare(b));
  return { ledger: JSON.stringify(ledger), versions: JSON.stringify(versions), portionCalls: portionCalls(run.session) };
}

function checkUnchanged(run: ScenarioRun, what: string, before: Awaited<ReturnType<typeof snapshot>>, after: Awaited<ReturnType<typeof snapshot>>): void {
  run.check(`${what}: no ledger write`, before.ledger === after.ledger);
  run.check(`${what}: no new or rewritten object`, before.versions === after.versions);
  run.check(`${what}: no RDS download`, before.portionCalls === after.portionCalls, `${after.portionCalls - before.portionCalls} calls`);
}

/**
 * A message the detector handles while its deletion is lost: delivered to the detector directly, left
 * in the queue and made visible again, so the queue delivers it a second time.
 */
async function deliverWithoutDelete(session: LabSession): Promise<boolean> {
  const queueUrl = scanQueueUrl(session);
  const { Messages = [] } = await session.clients.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] }),
  );
  const message = Messages[0];
  if (!message) return false;
  const source = session.service.sqsSource.settings;
  const result = await session.service.functions.detector.invoke(buildSqsEvent([message], source.queueArn, source.region));
  await session.clients.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 }));
  return result.ok && ((result.value as { batchItemFailures?: unknown[] } | null)?.batchItemFailures ?? []).length === 0;
}

const COPIES = 3;

export const duplicateScanMessages: Scenario = {
  id: 'duplicate-sqs',
  title: 'scan messages delivered several times and re-delivered',
  mariadb: false,
  timeoutMs: 120_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, { seed: 'dup-sqs', filesPerInstance: 2, bytesPerFile: 200_000 });
    const sources = () => fixtures.sources();
    const caughtUp = await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 40_000 });
    run.require('initial backup complete', caughtUp);
    const instances = Object.values(LAB_INSTANCE_IDS);
    const duplicates = (): string[] => instances.flatMap((instance) => Array.from({ length: COPIES }, () => scanMessageBody(instance)));

    run.log(`idle: every instance's scan message ${COPIES} times, one of them delivered again after its visibility timeout`);
    const idleBefore = await snapshot(run);
    await sendToScanQueue(session, duplicates());
    run.check('a delivery whose delete was lost succeeded', await deliverWithoutDelete(session));
    const idle = await drainEventSources(run, sources);
    run.check(
      'every copy was delivered to the detector and succeeded',
      idle.sqsMessages === instances.length * COPIES && idle.sqsFailed === 0,
      `${idle.sqsMessages} deliveries, ${idle.sqsFailed} failed`,
    );
    run.check('idle duplicates: no ledger stream record at all', idle.streamRead === 0, `${idle.streamRead} records`);
    checkUnchanged(run, 'idle duplicates', idleBefore, await snapshot(run));

    run.log(`growth: every file grows, then ${COPIES} copies per instance and a re-delivery`);
    const objectsBefore = (await run.objectVersions()).size;
    const appended = fixtures.files.map((file) => ({ file, bytes: file.append(80_000), servedBefore: servedBytes(session, file.instance, file.logFileName) }));
    await sendToScanQueue(session, duplicates());
    run.check('a delivery whose delete was lost succeeded', await deliverWithoutDelete(session));
    const grown = await drainEventSources(run, sources);
    run.check(
      'exactly one transition into PENDING per grown file reached the downloader',
      grown.streamDelivered === fixtures.files.length && grown.streamRetries === 0,
      `${grown.streamDelivered} records delivered for ${fixtures.files.length} files`,
    );
    const objectsAfter = (await run.objectVersions()).size;
    run.check('exactly one new object per grown file', objectsAfter - objectsBefore === fixtures.files.length, `${objectsAfter - objectsBefore} new objects`);
    const reread = appended.filter(({ file, bytes, servedBefore }) => servedBytes(session, file.instance, file.logFileName) - servedBefore !== bytes);
    run.check('exactly the appended bytes were downloaded, once', reread.length === 0, reread.map(({ file }) => file.logFileName).join(', '));
    const finalCatchUp = await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 20_000 });
    await run.finish({ sources: sources(), caughtUp: finalCatchUp });
  },
};

/** Replays records to the downloader in the mapping's batch size; true when every batch fully succeeded. */
async function replay(run: ScenarioRun, records: readonly DynamoDBRecord[]): Promise<boolean> {
  const { batchSize } = run.session.definition.downloaderSource;
  let ok = true;
  for (let index = 0; index < records.length; index += batchSize) {
    const result = await run.session.service.functions.downloader.invoke(buildDynamoDbStreamEvent(records.slice(index, index + batchSize)));
    const failures = result.ok ? ((result.value as DynamoDBBatchResponse | null)?.batchItemFailures ?? []) : ['function error'];
    if (!result.ok) run.functionErrors.push(`downloader: ${result.errorType}: ${result.errorMessage}`);
    ok &&= failures.length === 0;
  }
  return ok;
}

/** Empties the Powertools idempotency table, as if every record's key had expired. */
async function forgetIdempotencyKeys(session: LabSession): Promise<number> {
  const { dynamodb } = session.clients;
  const table = session.resources.idempotencyTable;
  const { Items = [] } = await dynamodb.send(new ScanCommand({ TableName: table, ProjectionExpression: '#id', ExpressionAttributeNames: { '#id': IDEMPOTENCY_KEY.partitionKey } }));
  for (let index = 0; index < Items.length; index += 25) {
    await dynamodb.send(
      new BatchWriteItemCommand({ RequestItems: { [table]: Items.slice(index, index + 25).map((Key) => ({ DeleteRequest: { Key } })) } }),
    );
  }
  return Items.length;
}

const recordFile = (record: DynamoDBRecord): string | undefined => record.dynamodb?.Keys?.[LEDGER_ATTR.file]?.S;
const recordInstance = (record: DynamoDBRecord): string | undefined => record.dynamodb?.Keys?.[LEDGER_ATTR.instance]?.S;

export const replayedStreamRecords: Scenario = {
  id: 'replayed-stream',
  title: 'ledger-stream records replayed to the downloader',
  mariadb: false,
  timeoutMs: 120_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, { seed: 'replay', filesPerInstance: 2, bytesPerFile: 200_000 });
    const sources = () => fixtures.sources();
    run.require('initial backup complete', await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 40_000 }));
    for (const file of fixtures.files) file.append(60_000);
    run.require('growth backed up', await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 40_000 }));

    const admits = compileFilters(session.definition.downloaderSource.filters);
    const admitted = (await readWholeStream(session)).map((record) => toDynamoDbRecord(record, session.resources.ledgerStreamArn)).filter((record) => admits(record));
    run.check('the stream holds two triggering records per file (new, then grown)', admitted.length === 2 * fixtures.files.length, `${admitted.length} records`);

    const before = await snapshot(run);
    run.check('replay of every triggering record succeeds', await replay(run, admitted));
    checkUnchanged(run, 'replay within the idempotency window', before, await snapshot(run));

    const forgotten = await forgetIdempotencyKeys(session);
    run.check('replay after the idempotency keys expired succeeds', await replay(run, admitted), `${forgotten} keys removed first`);
    checkUnchanged(run, 'replay after the keys expired (the ledger status guards)', before, await snapshot(run));

    run.log('an old record replayed while its file is PENDING again: it does the new work, the new record then finds nothing to do');
    const target = fixtures.files[0] as FixtureFile;
    const appended = target.append(70_000);
    const servedBefore = servedBytes(session, target.instance, target.logFileName);
    const objectsBefore = (await run.objectVersions()).size;
    await session.service.tickSchedule();
    await pumpQueueOnly(run);
    const pending = (await run.ledgerItems()).find((item) => item.LogFileName === target.logFileName && item.DBInstanceIdentifier === target.instance);
    run.require('the grown file is PENDING', pending?.Status === LedgerStatus.PENDING, `status ${pending?.Status ?? 'absent'}`);
    await forgetIdempotencyKeys(session);
    const oldRecord = admitted.find((record) => recordFile(record) === target.logFileName && recordInstance(record) === target.instance);
    run.check('the old record backs up the new bytes', oldRecord !== undefined && (await replay(run, [oldRecord])));
    const drained = await drainEventSources(run, sources);
    run.check('the new record was delivered too', drained.streamDelivered >= 1, `${drained.streamDelivered} delivered`);
    const objectsAfter = (await run.objectVersions()).size;
    run.check('one object for the growth, not two', objectsAfter - objectsBefore === 1, `${objectsAfter - objectsBefore} new objects`);
    const served = servedBytes(session, target.instance, target.logFileName) - servedBefore;
    run.check('the appended bytes were downloaded once', served === appended, `${served} B served for ${appended} B appended`);

    const caughtUp = await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 20_000 });
    await run.finish({ sources: sources(), caughtUp });
  },
};
