import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, S3Client, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { segmentObjectKey } from '../../lambda/shared/contract';
import { directorySource, s3Source, type LogSource, type LogStream } from '../../scripts/audit-analysis/sources';
import { verify, type PollProgress } from '../../scripts/audit-analysis/verify';

const MARKER = 'auditlab_20261125132240_3a35e43e';
const RUN_LOG = readFileSync(join(__dirname, 'fixtures', 'mariadb-run.log'));
const NOISE = Buffer.from('20261125 13:00:00,vm,other,localhost,1,0,CONNECT,,,0\n');

function memoryStream(label: string, content: Buffer): LogStream {
  return {
    label,
    parts: [label],
    bytes: content.length,
    async *open() {
      yield content;
    },
  };
}

/** An append-only source whose objects appear over successive polls, like the bucket after each pipeline run. */
function appearingSource(perPoll: LogStream[][]): LogSource & { excludes: Array<string[]> } {
  let poll = 0;
  const excludes: Array<string[]> = [];
  return {
    appendOnly: true,
    excludes,
    describe: () => 'memory',
    async list(exclude) {
      excludes.push([...(exclude ?? [])]);
      const visible = perPoll.slice(0, poll + 1).flat();
      poll += 1;
      return visible.filter((s) => !exclude?.has(s.label));
    },
  };
}

describe('verify', () => {
  test('polls until the run appears, reading each new object once', async () => {
    const half = RUN_LOG.indexOf('\n', RUN_LOG.length / 2) + 1;
    const source = appearingSource([[memoryStream('noise', NOISE)], [memoryStream('a', RUN_LOG.subarray(0, half))], [], [memoryStream('b', RUN_LOG.subarray(half))]]);
    const progress: PollProgress[] = [];
    const sleeps: number[] = [];
    let clock = 0;
    const result = await verify({
      source,
      marker: MARKER,
      timeoutMs: 60_000,
      intervalMs: 1000,
      onProgress: (p) => progress.push(p),
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
      now: () => clock,
    });
    expect(result.passed).toBe(true);
    expect(progress.map((p) => p.newParts)).toEqual([1, 1, 0, 1]);
    expect(progress[0].found).toBe(0);
    expect(progress[1].found).toBeGreaterThan(0);
    expect(progress[1].missing).toContain('cleanup/drop-table');
    expect(progress[3].missing).toEqual([]);
    expect(sleeps).toEqual([1000, 1000, 1000]);
    expect(source.excludes[3]).toEqual(['noise', 'a']);
    expect(result.source).toMatchObject({ polls: 4, parts: 3, bytes: NOISE.length + RUN_LOG.length });
    expect(result.totals.records).toBe(1 + RUN_LOG.toString().trim().split('\n').length);
  });

  test('gives up at the timeout with what is missing', async () => {
    let clock = 0;
    const partial = Buffer.from(RUN_LOG.toString().split('\n').filter((l) => !l.includes(':cleanup:')).join('\n'));
    const result = await verify({
      source: appearingSource([[memoryStream('a', partial)]]),
      marker: MARKER,
      timeoutMs: 5000,
      intervalMs: 2000,
      sleep: async (ms) => {
        clock += ms;
      },
      now: () => clock,
    });
    expect(result.passed).toBe(false);
    expect(result.source.polls).toBe(3);
    expect(result.missing).toEqual(['cleanup/drop-auth-user', 'cleanup/drop-oltp-user', 'cleanup/drop-priv-user', 'cleanup/drop-table']);
  });

  test('timeout 0 reads once', async () => {
    const result = await verify({ source: appearingSource([[memoryStream('n', NOISE)]]), marker: MARKER, timeoutMs: 0, intervalMs: 5000, sleep: () => Promise.reject(new Error('must not sleep')) });
    expect(result.source.polls).toBe(1);
    expect(result.passed).toBe(false);
  });
});

describe('directorySource', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'audit-src-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('lists files below the folder modified since the start, and re-reads a growing file', async () => {
    mkdirSync(join(dir, 'writer'));
    writeFileSync(join(dir, 'writer', 'server_audit.log'), RUN_LOG);
    writeFileSync(join(dir, 'server_audit.log.1'), NOISE);
    const old = new Date('2020-01-01T00:00:00Z');
    utimesSync(join(dir, 'server_audit.log.1'), old, old);
    const source = directorySource(dir, Date.parse('2026-01-01T00:00:00Z'));
    expect(source.appendOnly).toBe(false);
    const streams = await source.list();
    expect(streams.map((s) => s.label)).toEqual([join(dir, 'writer', 'server_audit.log')]);

    const result = await verify({ source, marker: MARKER, timeoutMs: 0, intervalMs: 0 });
    expect(result.passed).toBe(true);
    expect(result.source).toMatchObject({ parts: 1, bytes: RUN_LOG.length });
  });
});

describe('s3Source', () => {
  const s3 = mockClient(S3Client);
  const file = 'audit/audit.log.0.2026-11-25-13-20.0';
  const body = (content: Buffer): GetObjectCommandOutput['Body'] => Readable.from([content]) as unknown as GetObjectCommandOutput['Body'];

  beforeEach(() => s3.reset());

  test('reads contiguous segments of a file as one stream, so a line cut between objects survives', async () => {
    const cut = 10001; // inside a line
    const first = segmentObjectKey('writer-1', file, 0, cut);
    const second = segmentObjectKey('writer-1', file, cut, RUN_LOG.length);
    const oldKey = segmentObjectKey('reader-1', file, 0, NOISE.length);
    s3.on(ListObjectsV2Command)
      .resolvesOnce({
        Contents: [
          { Key: second, Size: RUN_LOG.length - cut, LastModified: new Date('2026-11-25T13:40:00Z') },
          { Key: oldKey, Size: NOISE.length, LastModified: new Date('2026-11-25T10:00:00Z') },
        ],
        IsTruncated: true,
        NextContinuationToken: 'page2',
      })
      .resolvesOnce({ Contents: [{ Key: first, Size: cut, LastModified: new Date('2026-11-25T13:30:00Z') }], IsTruncated: false });
    s3.on(GetObjectCommand, { Key: first }).resolves({ Body: body(RUN_LOG.subarray(0, cut)) });
    s3.on(GetObjectCommand, { Key: second }).resolves({ Body: body(RUN_LOG.subarray(cut)) });

    const source = s3Source('lab-bucket', 'logs/', Date.parse('2026-11-25T13:17:40Z'));
    const result = await verify({ source, marker: MARKER, timeoutMs: 0, intervalMs: 0 });

    expect(result.passed).toBe(true);
    expect(result.totals.unparseable).toBe(0);
    expect(result.source).toMatchObject({ parts: 2, bytes: RUN_LOG.length });
    const listings = s3.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input);
    expect(listings).toHaveLength(2);
    expect(listings[1]).toMatchObject({ Bucket: 'lab-bucket', Prefix: 'logs/', ContinuationToken: 'page2' });
    // The object older than the run is never downloaded.
    expect(s3.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Key)).toEqual([first, second]);
  });

  test('objects already read are left out of the next listing', async () => {
    const key = segmentObjectKey('writer-1', file, 0, 10);
    s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: key, Size: 10, LastModified: new Date() }] });
    const source = s3Source('lab-bucket', 'logs/', 0);
    expect((await source.list()).map((s) => s.parts)).toEqual([[key]]);
    expect(await source.list(new Set([key]))).toEqual([]);
  });
});
