import { createHash } from 'node:crypto';
import { LedgerStatus, segmentObjectKey } from '../../lambda/shared/contract';
import { LineTooLongError } from '../../lambda/shared/rds-log-reader';
import {
  catchUpState,
  FileEvidence,
  judgeFile,
  ledgerCatchUpSources,
  ProblemCode,
  sliceKey,
  summarize,
  unexplainedReconcilerFindings,
} from '../../scripts/local-lab/verify';

const INSTANCE = 'lab-writer';
const FILE = 'audit/audit.log.0.2026-11-25-13-05.0';
const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('base64');

const SOURCE = Buffer.from(
  Array.from({ length: 40 }, (_, index) => `20261125 13:05:${String(index % 60).padStart(2, '0')},vm,lab,127.0.0.1,${index},0,QUERY,sbtest,'SELECT ${index}',0\n`).join(''),
);

interface ObjectSpec {
  start: number;
  end: number;
  /** Body override (default: the source slice). */
  body?: Buffer;
  /** S3 checksum override; null: stored without a checksum. */
  checksum?: string | null;
}

/** Evidence as the collector would gather it for `objects` stored from `source`. */
function evidence(options: {
  source?: Buffer | null;
  objects: ObjectSpec[];
  status?: string;
  backedUpBytes?: number;
  segments?: Array<{ Start: number; End: number; Sha256: string }>;
  noLedger?: boolean;
  expectLost?: boolean;
  expectFailedAt?: number;
}): FileEvidence {
  const source = options.source === undefined ? SOURCE : options.source;
  const bodies = options.objects.map((spec) => spec.body ?? SOURCE.subarray(spec.start, spec.end));
  const storedEnd = options.objects.reduce((max, spec) => Math.max(max, spec.end), 0);
  const slices: Record<string, string> = {};
  if (source) {
    for (const spec of options.objects) if (spec.end <= source.length) slices[sliceKey(spec.start, spec.end)] = sha(source.subarray(spec.start, spec.end));
    if (storedEnd <= source.length) slices[sliceKey(0, storedEnd)] = sha(source.subarray(0, storedEnd));
  }
  const segments =
    options.segments ??
    options.objects.map((spec, index) => ({ Start: spec.start, End: spec.end, Sha256: sha(bodies[index] ?? Buffer.alloc(0)) }));
  return {
    instance: INSTANCE,
    logFileName: FILE,
    ...(source ? { source: { size: source.length, sha256: sha(source), slices } } : {}),
    objects: options.objects.map((spec, index) => {
      const body = bodies[index] ?? Buffer.alloc(0);
      return {
        key: segmentObjectKey(INSTANCE, FILE, spec.start, spec.end),
        bytes: body.length,
        sha256: sha(body),
        ...(spec.checksum === null ? {} : { checksumSha256: spec.checksum ?? sha(body) }),
      };
    }),
    storedSha256: sha(Buffer.concat(bodies)),
    ...(options.noLedger
      ? {}
      : {
          ledger: {
            DBInstanceIdentifier: INSTANCE,
            LogFileName: FILE,
            Size: source?.length ?? storedEnd,
            LastWritten: 1_764_000_000_000,
            Status: options.status ?? LedgerStatus.DONE,
            StatusChangedAt: 1_764_000_000_000,
            BackedUpBytes: options.backedUpBytes ?? storedEnd,
            Segments: segments,
          },
        }),
    ...(options.expectLost ? { expectLost: true } : {}),
    ...(options.expectFailedAt !== undefined ? { expectFailedAt: options.expectFailedAt } : {}),
  };
}

const codes = (report: ReturnType<typeof judgeFile>): ProblemCode[] => report.problems.map((problem) => problem.code);
const third = Math.floor(SOURCE.length / 3);

describe('judgeFile', () => {
  it('accepts one object holding the whole file', () => {
    const report = judgeFile(evidence({ objects: [{ start: 0, end: SOURCE.length }] }));
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, status: 'DONE', sourceBytes: SOURCE.length, storedBytes: SOURCE.length, objects: 1 });
    expect(report.storedSha256).toBe(report.sourceSha256);
  });

  it('accepts contiguous segments from 0', () => {
    const report = judgeFile(
      evidence({ objects: [{ start: 0, end: third }, { start: third, end: 2 * third }, { start: 2 * third, end: SOURCE.length }] }),
    );
    expect(report.problems).toEqual([]);
    expect(report.objects).toBe(3);
  });

  it('reports a gap between segments', () => {
    const report = judgeFile(evidence({ objects: [{ start: 0, end: third }, { start: 2 * third, end: SOURCE.length }] }));
    expect(report.ok).toBe(false);
    expect(codes(report)).toContain('GAP');
    expect(report.problems.find((problem) => problem.code === 'GAP')?.detail).toContain(`${third}-${2 * third}`);
  });

  it('reports a first segment that does not start at 0 as a gap', () => {
    expect(codes(judgeFile(evidence({ objects: [{ start: third, end: SOURCE.length }] })))).toContain('GAP');
  });

  it('reports overlapping segments (bytes stored twice)', () => {
    const report = judgeFile(evidence({ objects: [{ start: 0, end: 2 * third }, { start: third, end: SOURCE.length }] }));
    expect(codes(report)).toContain('OVERLAP');
    expect(report.storedBytes).toBeGreaterThan(SOURCE.length);
  });

  it('reports a body that differs from the source, even when S3 and the ledger agree with it', () => {
    const tampered = Buffer.from(SOURCE.subarray(0, SOURCE.length));
    tampered[10] = tampered[10] === 0x41 ? 0x42 : 0x41;
    const report = judgeFile(evidence({ objects: [{ start: 0, end: SOURCE.length, body: tampered }] }));
    expect(codes(report)).toEqual(expect.arrayContaining(['CONTENT_MISMATCH', 'FILE_HASH_MISMATCH']));
    expect(codes(report)).not.toContain('OBJECT_CHECKSUM_MISMATCH');
  });

  it('reports an S3 checksum that does not match the body', () => {
    const report = judgeFile(evidence({ objects: [{ start: 0, end: SOURCE.length, checksum: sha(Buffer.from('other')) }] }));
    expect(codes(report)).toEqual(['OBJECT_CHECKSUM_MISMATCH']);
  });

  it('reports an object stored without a checksum', () => {
    expect(codes(judgeFile(evidence({ objects: [{ start: 0, end: SOURCE.length, checksum: null }] })))).toEqual(['OBJECT_CHECKSUM_MISSING']);
  });

  it('reports a ledger segment digest that differs from the object', () => {
    const report = judgeFile(
      evidence({
        objects: [{ start: 0, end: SOURCE.length }],
        segments: [{ Start: 0, End: SOURCE.length, Sha256: sha(Buffer.from('not it')) }],
      }),
    );
    expect(codes(report)).toEqual(['LEDGER_SEGMENT_SHA_MISMATCH']);
  });

  it('reports ledger segments that describe other ranges than the objects', () => {
    const report = judgeFile(
      evidence({ objects: [{ start: 0, end: SOURCE.length }], segments: [{ Start: 0, End: third, Sha256: sha(SOURCE.subarray(0, third)) }] }),
    );
    expect(codes(report)).toContain('LEDGER_SEGMENTS_MISMATCH');
  });

  it('reports an object whose body is shorter than its key says', () => {
    const report = judgeFile(evidence({ objects: [{ start: 0, end: SOURCE.length, body: SOURCE.subarray(0, SOURCE.length - 1) }] }));
    expect(codes(report)).toContain('OBJECT_SIZE_MISMATCH');
  });

  it('reports DONE with bytes missing at the end, and a BackedUpBytes that disagrees with the objects', () => {
    const report = judgeFile(evidence({ objects: [{ start: 0, end: third }], backedUpBytes: SOURCE.length }));
    expect(codes(report)).toEqual(expect.arrayContaining(['NOT_CAUGHT_UP', 'BACKED_UP_BYTES_MISMATCH']));
  });

  it('reports a status other than DONE', () => {
    expect(codes(judgeFile(evidence({ objects: [{ start: 0, end: SOURCE.length }], status: LedgerStatus.PENDING })))).toEqual(['STATUS_NOT_DONE']);
  });

  it('reports an unexpected LOST', () => {
    const report = judgeFile(evidence({ objects: [{ start: 0, end: third }], status: LedgerStatus.LOST }));
    expect(codes(report)).toContain('UNEXPECTED_LOST');
  });

  it('accepts LOST for a file the scenario removed before backup, with whatever prefix was stored intact', () => {
    const report = judgeFile(evidence({ source: null, objects: [{ start: 0, end: third }], status: LedgerStatus.LOST, expectLost: true }));
    expect(report.problems).toEqual([]);
    expect(report.sourceBytes).toBeNull();
  });

  it('reports a vanished file that was not marked LOST', () => {
    const report = judgeFile(evidence({ source: null, objects: [], status: LedgerStatus.PENDING, expectLost: true }));
    expect(codes(report)).toEqual(['NOT_MARKED_LOST']);
  });

  it('accepts FAILED with exactly the bytes before an unreadable line stored, the rest of the source not', () => {
    const report = judgeFile(evidence({ objects: [{ start: 0, end: third }], status: LedgerStatus.FAILED, expectFailedAt: third }));
    expect(report.problems).toEqual([]);
  });

  it('reports a file with an unreadable line that is not FAILED, or stored short of (or past) that line', () => {
    expect(codes(judgeFile(evidence({ objects: [{ start: 0, end: third }], status: LedgerStatus.PENDING, expectFailedAt: third })))).toEqual([
      'NOT_MARKED_FAILED',
    ]);
    expect(codes(judgeFile(evidence({ objects: [], status: LedgerStatus.FAILED, expectFailedAt: third })))).toEqual(['NOT_STORED_UP_TO_UNREADABLE_LINE']);
    expect(codes(judgeFile(evidence({ objects: [{ start: 0, end: 2 * third }], status: LedgerStatus.FAILED, expectFailedAt: third })))).toEqual([
      'NOT_STORED_UP_TO_UNREADABLE_LINE',
    ]);
  });

  it('reports a source that vanished unexpectedly', () => {
    expect(codes(judgeFile(evidence({ source: null, objects: [{ start: 0, end: third }] })))).toContain('SOURCE_MISSING');
  });

  it('reports a file the ledger never saw', () => {
    const report = judgeFile(evidence({ objects: [], noLedger: true }));
    expect(codes(report)).toEqual(expect.arrayContaining(['NOT_IN_LEDGER', 'NOT_CAUGHT_UP']));
    expect(report.status).toBe('NO_LEDGER_ITEM');
  });

  it('reports a key that is not a segment key of the file', () => {
    const good = evidence({ objects: [{ start: 0, end: SOURCE.length }] });
    const stray = { ...good, objects: [...good.objects, { key: 'logs/lab-writer/other/000000000000-000000000010', bytes: 10, sha256: 'x', checksumSha256: 'x' }] };
    expect(codes(judgeFile(stray))).toContain('UNPARSEABLE_KEY');
  });

  it('reports a malformed ledger item instead of throwing', () => {
    const good = evidence({ objects: [{ start: 0, end: SOURCE.length }] });
    const report = judgeFile({ ...good, ledger: { ...good.ledger, Status: 'HALF_DONE' } });
    expect(codes(report)).toContain('LEDGER_MALFORMED');
  });
});

describe('summarize', () => {
  it('totals bytes and statuses and fails on any problem, orphans included', () => {
    const ok = judgeFile(evidence({ objects: [{ start: 0, end: SOURCE.length }] }));
    expect(summarize([ok, ok], []).ok).toBe(true);
    const report = summarize([ok], [{ code: 'ORPHAN_OBJECT', detail: 'logs/x/y/000000000000-000000000001' }]);
    expect(report.ok).toBe(false);
    expect(report.totals).toMatchObject({ files: 1, filesOk: 1, sourceBytes: SOURCE.length, storedBytes: SOURCE.length, problems: 1, byStatus: { DONE: 1 } });
  });
});

describe('catchUpState', () => {
  const item = (file: string, status: string, backedUp: number) => ({
    DBInstanceIdentifier: INSTANCE,
    LogFileName: file,
    Status: status,
    BackedUpBytes: backedUp,
    StatusChangedAt: 1000,
  });

  it('is caught up when every file is DONE with all of its bytes', () => {
    const state = catchUpState([{ instance: INSTANCE, logFileName: 'a', size: 10 }], [item('a', 'DONE', 10)]);
    expect(state).toMatchObject({ caughtUp: true, done: 1, sourceBytes: 10, backedUpBytes: 10, behind: [] });
  });

  it('is behind when a file grew after it was DONE, or is unseen', () => {
    const state = catchUpState(
      [
        { instance: INSTANCE, logFileName: 'a', size: 12 },
        { instance: INSTANCE, logFileName: 'b', size: 5 },
      ],
      [item('a', 'DONE', 10)],
    );
    expect(state.caughtUp).toBe(false);
    expect(state.behind).toHaveLength(2);
    expect(state.backedUpBytes).toBe(10);
    expect(state.oldestPendingSince).toBe(1000);
  });

  it('counts an expected FAILED as settled only once the bytes before the unreadable line are stored', () => {
    const source = { instance: INSTANCE, logFileName: 'a', size: 12, expectFailedAt: 7 };
    expect(catchUpState([source], [item('a', 'FAILED', 7)]).caughtUp).toBe(true);
    expect(catchUpState([source], [item('a', 'FAILED', 0)]).caughtUp).toBe(false);
    expect(catchUpState([source], [item('a', 'IN_PROGRESS', 7)]).caughtUp).toBe(false);
  });

  it('counts an expected LOST as settled', () => {
    const state = catchUpState([{ instance: INSTANCE, logFileName: 'a', size: 12, expectLost: true }], [item('a', 'LOST', 0)]);
    expect(state.caughtUp).toBe(true);
  });

  it('does not wait for a deleted file that is LOST, DONE short of its bytes or never listed (the verification judges it)', () => {
    const deleted = (logFileName: string) => ({ instance: INSTANCE, logFileName, size: 12, gone: true });
    const state = catchUpState([deleted('lost'), deleted('grew-then-deleted'), deleted('never-listed')], [item('lost', 'LOST', 4), item('grew-then-deleted', 'DONE', 8)]);
    expect(state).toMatchObject({ caughtUp: true, done: 0, behind: [] });
    // A deleted file the pipeline still works on (it will end LOST or DONE), and a present LOST file, are waited for.
    expect(catchUpState([deleted('a')], [item('a', 'PENDING', 4)]).behind).toHaveLength(1);
    expect(catchUpState([{ instance: INSTANCE, logFileName: 'a', size: 12 }], [item('a', 'LOST', 4)]).caughtUp).toBe(false);
  });
});

describe('ledgerCatchUpSources (an external endpoint: the ledger is all the lab sees)', () => {
  const item = (file: string, status: string, backedUp: number, lastError?: string) => ({
    DBInstanceIdentifier: INSTANCE,
    LogFileName: file,
    Size: 12,
    Status: status,
    BackedUpBytes: backedUp,
    StatusChangedAt: 1000,
    ...(lastError !== undefined ? { LastError: lastError } : {}),
  });
  const longLine = new LineTooLongError(INSTANCE, 'a', '0:7');

  it('settles a file FAILED at a line RDS cannot return whole, where it stopped', () => {
    const ledger = [item('a', 'FAILED', 7, `${longLine.name}: ${longLine.message}`), item('b', 'DONE', 12)];
    const sources = ledgerCatchUpSources(ledger);
    expect(sources).toEqual([
      { instance: INSTANCE, logFileName: 'a', size: 12, expectFailedAt: 7 },
      { instance: INSTANCE, logFileName: 'b', size: 12 },
    ]);
    expect(catchUpState(sources, ledger)).toMatchObject({ caughtUp: true, done: 2 });
  });

  it('keeps waiting for a file FAILED for any other reason (it is re-driven), or re-driven after a long line', () => {
    const throttled = [item('a', 'FAILED', 7, 'ThrottlingException: Rate exceeded')];
    expect(catchUpState(ledgerCatchUpSources(throttled), throttled).behind).toHaveLength(1);
    const redriven = [item('a', 'PENDING', 7, `${longLine.name}: ${longLine.message}`)];
    expect(catchUpState(ledgerCatchUpSources(redriven), redriven).caughtUp).toBe(false);
    const quoted = [item('a', 'FAILED', 7, `Error: the query quoted "${longLine.name}: x"`)];
    expect(catchUpState(ledgerCatchUpSources(quoted), quoted).caughtUp).toBe(false);
  });
});

describe('unexplainedReconcilerFindings', () => {
  const summary = (findingsByCode: Record<string, number>) => ({
    findings: Object.values(findingsByCode).reduce((sum, count) => sum + count, 0),
    findingsByCode,
    itemsVerified: 3,
    objectsChecked: 3,
    redriven: [],
    waitingForBackoff: 0,
    changedMeanwhile: 0,
  });

  it('explains a FAILED and an UNSTORED_BYTES finding per file expected FAILED, no more', () => {
    expect(unexplainedReconcilerFindings(summary({}), 0)).toBe(0);
    expect(unexplainedReconcilerFindings(summary({ FAILED: 1 }), 1)).toBe(0);
    expect(unexplainedReconcilerFindings(summary({ FAILED: 1, UNSTORED_BYTES: 1 }), 1)).toBe(0);
    expect(unexplainedReconcilerFindings(summary({ FAILED: 1 }), 0)).toBe(1);
    expect(unexplainedReconcilerFindings(summary({ FAILED: 2, UNSTORED_BYTES: 2 }), 1)).toBe(2);
  });

  it('never explains another finding by an expected FAILED file', () => {
    expect(unexplainedReconcilerFindings(summary({ GAP: 1 }), 1)).toBe(1);
    expect(unexplainedReconcilerFindings(summary({ FAILED: 1, LOST: 1 }), 1)).toBe(1);
  });
});
