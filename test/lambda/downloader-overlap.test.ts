/**
 * Storing overlaps reading: a spool sealed at MAX_OBJECT_BYTES is stored (intent, PUT, checkpoint) in the
 * background while the next pages are read into a new spool, with at most one store in flight, the
 * ledger's order unchanged (intent N+1 only after checkpoint N), failures surfacing as before, and the
 * time budget keeping room to finish the store in flight.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PutObjectCommand, type PutObjectCommandInput } from '@aws-sdk/client-s3';
import { UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import {
  FILE,
  INSTANCE,
  MAX_OBJECT_BYTES,
  SAFETY_MARGIN_MS,
  bucket,
  deliver,
  expectContiguousObjects,
  expectNoSpoolLeft,
  expectObjectsAreSegments,
  fakeRds,
  hooks,
  ledgerClient,
  ledgerItem,
  newFile,
  resetDownloaderWorld,
  s3,
  table,
} from './support/downloader-world';
import { LEDGER_ATTR, LedgerStatus, logFilePrefix } from '../../lambda/shared/contract';
import { auditLines } from './support/fake-rds';

beforeEach(resetDownloaderWorld);
afterEach(expectNoSpoolLeft);

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));
beforeEach(() => {
  unhandled.length = 0;
});
afterEach(() => expect(unhandled).toEqual([]));

/** Which ledger write an UpdateCommand is, told apart by its expression (test-only classification). */
function ledgerWrite(input: UpdateCommandInput): 'intent' | 'checkpoint' | 'other' {
  const expression = input.UpdateExpression ?? '';
  if (expression.startsWith(`SET #${LEDGER_ATTR.pendingSegment} =`)) return 'intent';
  if (expression.includes(`#${LEDGER_ATTR.segments} = list_append(`)) return 'checkpoint';
  return 'other';
}

type Event = 'intent' | 'put started' | 'put ended' | 'checkpoint' | 'read';

/** Records the order of intents, PUTs, checkpoints and page reads; PUTs are answered by `put`. */
function recordEvents(put: (input: PutObjectCommandInput) => Promise<unknown>): Event[] {
  const events: Event[] = [];
  ledgerClient.on(UpdateCommand).callsFake((input: UpdateCommandInput) => {
    const result = table.update(input);
    const write = ledgerWrite(input);
    if (write !== 'other') events.push(write);
    return result;
  });
  hooks.beforeDownload = () => events.push('read');
  s3.on(PutObjectCommand).callsFake(async (input: PutObjectCommandInput) => {
    events.push('put started');
    try {
      return await put(input);
    } finally {
      events.push('put ended');
    }
  });
  return events;
}

/** Resolves once `count` more pages have been requested, or after `timeoutMs` (reading never resumed). */
function pagesRequested(count: number, timeoutMs = 2000): Promise<'pages' | 'timeout'> {
  const target = fakeRds.downloads.length + count;
  return new Promise((resolve) => {
    const poll = setInterval(() => {
      if (fakeRds.downloads.length >= target) finish('pages');
    }, 1);
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    function finish(how: 'pages' | 'timeout'): void {
      clearInterval(poll);
      clearTimeout(timer);
      resolve(how);
    }
  });
}

test('pages are read while the previous object is being stored', async () => {
  const content = auditLines(100);
  const size = Buffer.byteLength(content);
  expect(size).toBeGreaterThan(2 * MAX_OBJECT_BYTES);
  newFile(content);
  const heldPuts: Array<'pages' | 'timeout'> = [];
  // The first PUT answers only after two more pages were requested: a downloader that waits for its
  // PUT before reading on would never get there.
  const events = recordEvents(async (input) => {
    if (heldPuts.length === 0) heldPuts.push(await pagesRequested(2));
    return bucket.putObject(input);
  });

  const { response } = await deliver(0);

  expect(response.batchItemFailures).toEqual([]);
  expect(heldPuts).toEqual(['pages']);
  const firstPut = events.indexOf('put started');
  const firstPutEnded = events.indexOf('put ended');
  expect(events.slice(firstPut, firstPutEnded).filter((e) => e === 'read').length).toBeGreaterThanOrEqual(2);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
  expectContiguousObjects(FILE, size);
  expect(bucket.concatenated(logFilePrefix(INSTANCE, FILE)).toString()).toBe(content);
  expectObjectsAreSegments();
  // Every page was read once, in order.
  const ranges = fakeRds.servedRanges;
  for (let i = 1; i < ranges.length; i++) expect(ranges[i].from).toBe(ranges[i - 1].to);
  expect(ranges.at(-1)?.to).toBe(size);
});

test('never two PUTs in flight; each intent follows the previous checkpoint', async () => {
  const content = auditLines(200);
  const size = Buffer.byteLength(content);
  newFile(content);
  let inFlight = 0;
  let maxInFlight = 0;
  const events = recordEvents(async (input) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      // Slow PUTs: the reader fills the next spool meanwhile and must wait for this one.
      await sleep(15);
      return await bucket.putObject(input);
    } finally {
      inFlight--;
    }
  });

  await deliver(0);

  expect(maxInFlight).toBe(1);
  const storeSteps = events.filter((e) => e !== 'read');
  const objects = bucket.keys().length;
  expect(objects).toBeGreaterThan(3);
  // Strictly intent, PUT, checkpoint per object, one object after the other.
  expect(storeSteps).toEqual(Array.from({ length: objects }, () => ['intent', 'put started', 'put ended', 'checkpoint']).flat());
  // Reading overlapped at least one PUT.
  const overlapped = events.some((e, i) => e === 'read' && events.lastIndexOf('put started', i) > events.lastIndexOf('put ended', i));
  expect(overlapped).toBe(true);
  expect(ledgerItem()).toMatchObject({ Status: LedgerStatus.DONE, BackedUpBytes: size });
  expectContiguousObjects(FILE, size);
  expectObjectsAreSegments();
  expect(bucket.overwrites).toEqual([]);
});

test('a background PUT that fails fails the pass: FAILED, rethrown, no further intent, PUT or page', async () => {
  const content = auditLines(100);
  newFile(content);
  let readsAfterFailure = -1;
  const events = recordEvents(async () => {
    // Fails after the reader has moved on to the next spool.
    await pagesRequested(1);
    readsAfterFailure = 0;
    throw Object.assign(new Error('We encountered an internal error'), { name: 'InternalError' });
  });
  hooks.beforeDownload = () => {
    events.push('read');
    if (readsAfterFailure >= 0) readsAfterFailure++;
  };

  await expect(deliver(0)).rejects.toThrow('All records failed processing');

  const item = ledgerItem();
  expect(item).toMatchObject({ Status: LedgerStatus.FAILED, BackedUpBytes: 0 });
  expect(item.LastError).toMatch(/InternalError: We encountered an internal error/);
  // The intent stays open for the next holder to resolve.
  expect(item.PendingSegment).toMatchObject({ Start: 0 });
  expect(item.Segments).toBeUndefined();
  expect(events.filter((e) => e === 'intent')).toHaveLength(1);
  expect(events.filter((e) => e === 'put started')).toHaveLength(1);
  expect(events).not.toContain('checkpoint');
  expect(readsAfterFailure).toBe(0);
  expect(bucket.keys()).toEqual([]);
});

test('a read that fails while a store is in flight: the store completes and is checkpointed, then FAILED', async () => {
  const content = auditLines(100);
  newFile(content);
  const events = recordEvents(async (input) => {
    await sleep(20);
    return bucket.putObject(input);
  });
  hooks.beforeDownload = () => {
    events.push('read');
    if (events.includes('put started') && !events.includes('put ended')) {
      throw Object.assign(new Error('Service unavailable'), { name: 'ServiceUnavailable' });
    }
  };

  await expect(deliver(0)).rejects.toThrow('All records failed processing');

  const item = ledgerItem();
  expect(events.filter((e) => e !== 'read')).toEqual(['intent', 'put started', 'put ended', 'checkpoint']);
  const [segment] = item.Segments ?? [];
  expect(segment).toMatchObject({ Start: 0 });
  expect(item).toMatchObject({ Status: LedgerStatus.FAILED, BackedUpBytes: segment.End });
  expect(item.LastError).toMatch(/ServiceUnavailable: Service unavailable/);
  expect(item.PendingSegment).toBeUndefined();
  expectObjectsAreSegments();
});

test('the time budget keeps room for the store in flight: no page is read when only one margin is left', async () => {
  const content = auditLines(100);
  const size = Buffer.byteLength(content);
  newFile(content);
  const events = recordEvents(async (input) => {
    await sleep(20);
    return bucket.putObject(input);
  });

  // Enough to store one spool (one safety margin) but not two: once a store is in flight (it may still
  // take a margin) the pass hands off instead of reading on.
  const { response } = await deliver(0, () => 2 * SAFETY_MARGIN_MS - 1);

  expect(response.batchItemFailures).toEqual([]);
  expect(events.slice(0, events.indexOf('intent')).filter((e) => e === 'read').length).toBeGreaterThan(0);
  expect(events.slice(events.indexOf('intent')).filter((e) => e === 'read')).toEqual([]);
  const item = ledgerItem();
  // Both the object in flight and the spool being filled are stored before the hand-off.
  expect(item.Status).toBe(LedgerStatus.PENDING);
  expect(item.Segments).toHaveLength(2);
  expect(item.BackedUpBytes).toBe(fakeRds.servedRanges.at(-1)?.to);
  expect(item.BackedUpBytes).toBeLessThan(size);
  expect(item.PendingSegment).toBeUndefined();
  expect(item.ClaimToken).toBeUndefined();
  expectObjectsAreSegments();
});
