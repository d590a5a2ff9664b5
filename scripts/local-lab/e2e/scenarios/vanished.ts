/**
 * Files that vanish before they are fully backed up (MariaDB/Aurora deleting old rotations, RDS no
 * longer listing a file): each must end LOST with whatever was stored byte-identical, and nothing
 * else may be affected. Plus a malformed scan message, which must end in the scan DLQ while the
 * messages next to it succeed.
 */
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { LedgerStatus, logFilePrefix } from '../../../../lambda/shared/contract';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { deadLetterQueueUrls } from '../../lab-session';
import { sleep } from '../../net';
import type { FixtureFile } from '../fixtures';
import { servedCalls, type Scenario } from '../harness';
import { checkEndpointListsFixtures, drainEventSources, fixtureSession, growAcrossCycles, pumpQueueOnly, sendToScanQueue } from './common';

export const vanishedFiles: Scenario = {
  id: 'vanished-files',
  title: 'files deleted or hidden before they were backed up',
  mariadb: false,
  timeoutMs: 150_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, { seed: 'vanished', filesPerInstance: 2, bytesPerFile: 250_000 });
    const endpoint = session.endpoint!;
    const [partial, big] = fixtures.files.filter((file) => file.role === 'writer') as [FixtureFile, FixtureFile];
    big.append(300_000);

    // Deleted before the pipeline ever saw it: nobody can know it existed, so it is in no report.
    const neverSeen = fixtures.create('reader');
    neverSeen.append(50_000);
    neverSeen.vanish({ expectLost: false });
    const seen = new Set([neverSeen]);
    const sources = () => fixtures.sources(seen);

    run.require('initial backup complete', await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 40_000 }));

    run.log('1. a backed-up file grows, the detector records the growth, then the file is deleted');
    partial.append(100_000);
    await session.service.tickSchedule();
    await pumpQueueOnly(run);
    partial.vanish({ expectLost: true });
    await drainEventSources(run, sources);

    run.log('2. a new file is detected, then RDS stops listing it (hidden by the endpoint fault)');
    const hidden = fixtures.create('writer');
    hidden.append(150_000);
    await session.service.tickSchedule();
    await pumpQueueOnly(run);
    endpoint.hideFile(hidden.instance, hidden.logFileName);
    hidden.expectLost = true;
    await drainEventSources(run, sources);

    run.log('3. a large growth is being downloaded (slowly) when the file is deleted');
    const bigStoredBefore = (await run.ledgerItems()).find((item) => item.LogFileName === big.logFileName)?.BackedUpBytes ?? 0;
    big.append(1_000_000);
    endpoint.setFaults({ latencyMs: 80 });
    await session.service.tickSchedule();
    await pumpQueueOnly(run);
    const callsAtStart = servedCalls(session, big.instance, big.logFileName);
    const watcher = (async () => {
      while (servedCalls(session, big.instance, big.logFileName) < callsAtStart + 5) {
        if (run.signal.aborted) return;
        await sleep(10);
      }
      big.vanish({ expectLost: true });
      run.log(`deleted ${big.logFileName} after 5 pages of its growth were read`);
    })();
    await drainEventSources(run, sources);
    await watcher;
    endpoint.setFaults({ latencyMs: 0 });
    const bigItem = (await run.ledgerItems()).find((item) => item.LogFileName === big.logFileName);
    run.check(
      'what was read before the deletion was stored (then LOST)',
      (bigItem?.BackedUpBytes ?? 0) > bigStoredBefore && bigItem?.Status === LedgerStatus.LOST,
      `${bigStoredBefore} -> ${bigItem?.BackedUpBytes ?? 'absent'} B, ${bigItem?.Status ?? 'no item'}`,
    );

    run.log('4. the other files keep growing and are backed up as usual');
    await growAcrossCycles(run, fixtures, 2, 60_000);
    const caughtUp = await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 40_000 });

    const items = await run.ledgerItems();
    const lost = items.filter((item) => item.Status === LedgerStatus.LOST);
    run.check(
      'exactly the three vanished files are LOST, each with its reason',
      lost.length === 3 && lost.every((item) => (item.LastError ?? '').length > 0),
      lost.map((item) => `${item.LogFileName}: ${item.LastError ?? 'no reason'}`).join(' | '),
    );
    run.check('the file deleted before it was ever seen has no ledger item', !items.some((item) => item.LogFileName === neverSeen.logFileName && item.DBInstanceIdentifier === neverSeen.instance));
    const { KeyCount = 0 } = await session.clients.s3.send(
      new ListObjectsV2Command({ Bucket: session.resources.bucket, Prefix: logFilePrefix(neverSeen.instance, neverSeen.logFileName) }),
    );
    run.check('... and no object', KeyCount === 0);
    await checkEndpointListsFixtures(run, session, fixtures);
    // The hidden file is still on disk: the endpoint's list above leaves it out, the oracle checks it.
    await run.finish({ sources: sources(), caughtUp });
  },
};

/** Bodies the detector cannot use: not JSON, not an object, an empty id, no ScannedAt. */
const MALFORMED = ['this is not JSON', '[1,2,3]', '{"DBInstanceIdentifier":"","ScannedAt":1}', '{"DBInstanceIdentifier":"lab-writer"}'] as const;

export const malformedMessage: Scenario = {
  id: 'malformed-message',
  title: 'malformed scan messages end in the DLQ, siblings succeed',
  mariadb: false,
  timeoutMs: 120_000,
  async run(run) {
    const { fixtures, session } = await fixtureSession(run, { seed: 'malformed', filesPerInstance: 2, bytesPerFile: 150_000 });
    const sources = () => fixtures.sources();
    const dlq = deadLetterQueueUrls(session.definition, session.resources).scan;
    run.require('the scan queue has a dead-letter queue', dlq !== undefined);
    const deadLetters = async (): Promise<number> => {
      const { Attributes } = await session.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['ApproximateNumberOfMessages'] }));
      return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
    };

    // Sent just before the first tick, so the first batch holds them next to the scanner's messages.
    await sendToScanQueue(session, MALFORMED);
    const first = await run.cycle(sources, 'first');
    // The first batch holds all six (batch size 10); a failed message may come back within the same
    // cycle (lab-time visibility of 1 s), alone or with others, and fail again.
    run.check(
      'the valid messages queued with the malformed ones succeeded; only the malformed ones failed',
      first.sqs.succeeded === 2 && first.sqs.failed >= MALFORMED.length,
      `${first.sqs.messages} deliveries in ${first.sqs.batches} batch(es), ${first.sqs.succeeded} succeeded, ${first.sqs.failed} failed`,
    );
    // The redrive moves a message once it was received more than maxReceiveCount times.
    const deadline = Date.now() + 60_000;
    let rounds = 0;
    while ((await deadLetters()) < MALFORMED.length && Date.now() < deadline) {
      await run.pause(1100);
      for (const file of fixtures.files) file.append(20_000);
      await run.cycle(sources, 'redelivery');
      rounds += 1;
    }
    run.log(`malformed messages reached the DLQ after ${rounds} more cycle(s)`);
    const caughtUp = await run.runUntilCaughtUp(sources, { intervalMs: 500, timeoutMs: 30_000 });
    await run.finish({
      sources: sources(),
      caughtUp,
      scanDeadLetters: MALFORMED,
      // A batch holding only malformed messages fails as a whole (Powertools' FullBatchFailureError).
      expectedFunctionError: (error) => /All records failed/.test(error),
    });
  },
};
