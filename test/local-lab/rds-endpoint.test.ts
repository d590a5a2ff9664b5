/**
 * The local RDS log endpoint, driven by the real @aws-sdk/client-rds (the same client the handlers use)
 * over loopback, on temporary directories.
 */
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeDBClusterParametersCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBLogFilesCommand,
  DownloadDBLogFilePortionCommand,
  DownloadDBLogFilePortionCommandOutput,
  RDSClient,
  RDSClientConfig,
} from '@aws-sdk/client-rds';
import {
  ClusterConfig,
  DEFAULT_PAGE_LIMIT_BYTES,
  RdsLogEndpoint,
  RdsLogEndpointOptions,
  startRdsLogEndpoint,
  TRUNCATION_SUFFIX,
} from '../../scripts/local-lab/rds-endpoint';

const AUDIT_ON = { server_audit_logging: '1', server_audit_events: 'CONNECT,QUERY,QUERY_DCL,QUERY_DDL,QUERY_DML,TABLE' };
const AUDIT_OFF = { server_audit_logging: '0' };
const AURORA_STABLE_NAME = /^audit\/audit\.log\.0\.\d{4}-\d{2}-\d{2}-\d{2}-\d{2}\.\d+$/;

/** A record as MariaDB's server_audit writes it: commas and escaped quotes inside the quoted query. */
const MARIADB_RECORD =
  "20261125 13:05:02,lab-host,sbtest,localhost,13,402,QUERY,sbtest,'INSERT INTO sbtest1 (k, c, pad) VALUES " +
  "(5012, \\'68487932199-96439406143\\', \\'22195207048-70116052123,x\\')',0\n";

let root: string;
const endpoints: RdsLogEndpoint[] = [];
const clients: RDSClient[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'rds-endpoint-test-'));
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  for (const endpoint of endpoints.splice(0)) await endpoint.close();
  rmSync(root, { recursive: true, force: true });
});

async function start(options: RdsLogEndpointOptions): Promise<RdsLogEndpoint> {
  const endpoint = await startRdsLogEndpoint(options);
  endpoints.push(endpoint);
  return endpoint;
}

function rds(endpoint: RdsLogEndpoint, config: Partial<RDSClientConfig> = {}): RDSClient {
  const client = new RDSClient({
    region: 'us-east-1',
    endpoint: endpoint.url,
    credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
    ...config,
  });
  clients.push(client);
  return client;
}

function fixtureDir(name: string, files: Record<string, string | Buffer>): string {
  const dir = join(root, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

function oneInstance(dir: string, extra: Partial<RdsLogEndpointOptions> = {}): RdsLogEndpointOptions {
  return {
    clusters: [
      { id: 'lab', parameterGroup: 'lab-audit', instances: [{ id: 'writer', logs: { kind: 'directory', dir } }] },
    ],
    parameterGroups: { 'lab-audit': AUDIT_ON },
    ...extra,
  };
}

async function errorOf(promise: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

const download = (client: RDSClient, instance: string, file: string, marker?: string, numberOfLines?: number) =>
  client.send(
    new DownloadDBLogFilePortionCommand({
      DBInstanceIdentifier: instance,
      LogFileName: file,
      Marker: marker,
      NumberOfLines: numberOfLines,
    }),
  );

/**
 * What a correct client does: start at Marker "0", loop on AdditionalDataPending, and re-read a page
 * that ends with the truncation text with as many lines as it held whole.
 */
async function downloadAll(client: RDSClient, instance: string, file: string) {
  const pages: string[] = [];
  let rereads = 0;
  let marker = '0';
  let final: DownloadDBLogFilePortionCommandOutput;
  for (;;) {
    let page = await download(client, instance, file, marker);
    const data = page.LogFileData ?? '';
    if (data.endsWith(TRUNCATION_SUFFIX)) {
      const wholeLines = data.split('\n').length - 2;
      if (wholeLines === 0) throw new Error(`a line of ${file} is longer than a page`);
      page = await download(client, instance, file, marker, wholeLines);
      rereads++;
    }
    pages.push(page.LogFileData ?? '');
    final = page;
    if (!page.AdditionalDataPending) break;
    marker = page.Marker ?? '';
  }
  return { data: Buffer.from(pages.join(''), 'utf8'), pages, rereads, final };
}

/** Log text with the characters that need care in XML: markup, CR, controls, multi-byte UTF-8. */
function trickyLog(lines: number): string {
  const samples = [
    MARIADB_RECORD.trimEnd(),
    "20261125 13:05:03,lab-host,app,10.0.0.7,14,403,QUERY,shop,'SELECT * FROM t WHERE a < 3 && b > 4',0",
    '20261125 13:05:04,lab-host,app,10.0.0.7,14,404,QUERY,shop,\'SELECT "€ ü 漢字 🚀"\',0',
    '20261125 13:05:05,lab-host,app,10.0.0.7,14,405,QUERY,shop,\'tab\tcr\rbell\u0007 &amp; ]]>\',0',
  ];
  let text = '';
  for (let i = 0; i < lines; i++) text += `${samples[i % samples.length]} #${i}${'.'.repeat(i % 97)}\n`;
  return text;
}

describe('Describe actions', () => {
  function manyClusters(dir: string): RdsLogEndpointOptions {
    const fillers: ClusterConfig[] = Array.from({ length: 20 }, (_, i) => ({
      id: `filler-${String(i).padStart(2, '0')}`,
      parameterGroup: 'lab-audit',
      instances: [{ id: `filler-${String(i).padStart(2, '0')}-1` }],
    }));
    return {
      clusters: [
        {
          id: 'lab',
          parameterGroup: 'lab-audit',
          instances: [
            { id: 'lab-reader', writer: false, logs: { kind: 'directory', dir } },
            { id: 'lab-writer', writer: true, logs: { kind: 'directory', dir } },
          ],
        },
        { id: 'quiet', parameterGroup: 'quiet-params', instances: [{ id: 'quiet-1' }] },
        ...fillers,
      ],
      parameterGroups: { 'lab-audit': AUDIT_ON, 'quiet-params': AUDIT_OFF },
    };
  }

  test('DescribeDBInstances pages with Marker/MaxRecords and reports Aurora MySQL instances', async () => {
    const endpoint = await start(manyClusters(fixtureDir('logs', {})));
    const client = rds(endpoint);
    const first = await client.send(new DescribeDBInstancesCommand({ MaxRecords: 20 }));
    expect(first.DBInstances).toHaveLength(20);
    expect(first.Marker).toBeTruthy();
    const second = await client.send(new DescribeDBInstancesCommand({ MaxRecords: 20, Marker: first.Marker }));
    expect(second.Marker).toBeUndefined();
    const ids = [...(first.DBInstances ?? []), ...(second.DBInstances ?? [])].map((i) => i.DBInstanceIdentifier);
    expect(ids).toHaveLength(23);
    expect(new Set(ids).size).toBe(23);

    const writer = (await client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'lab-writer' })))
      .DBInstances?.[0];
    expect(writer).toMatchObject({
      DBInstanceIdentifier: 'lab-writer',
      DBClusterIdentifier: 'lab',
      Engine: 'aurora-mysql',
      DBInstanceStatus: 'available',
      DBInstanceClass: 'db.t4g.medium',
      DBInstanceArn: 'arn:aws:rds:us-east-1:000000000000:db:lab-writer',
    });
    expect(writer?.DbiResourceId).toMatch(/^db-[A-Z2-7]{26}$/);

    const inCluster = await client.send(
      new DescribeDBInstancesCommand({ Filters: [{ Name: 'db-cluster-id', Values: ['lab'] }] }),
    );
    expect(inCluster.DBInstances?.map((i) => i.DBInstanceIdentifier)).toEqual(['lab-reader', 'lab-writer']);

    const missing = await errorOf(client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'nope' })));
    expect(missing.name).toBe('DBInstanceNotFoundFault');
    expect(missing.$metadata?.httpStatusCode).toBe(404);
    const badPage = await errorOf(client.send(new DescribeDBInstancesCommand({ MaxRecords: 5 })));
    expect(badPage.name).toBe('InvalidParameterValue');
  });

  test('DescribeDBClusters pages and names the parameter group and the writer/reader members', async () => {
    const endpoint = await start(manyClusters(fixtureDir('logs', {})));
    const client = rds(endpoint);
    const clusters = [];
    let marker: string | undefined;
    do {
      const page = await client.send(new DescribeDBClustersCommand({ MaxRecords: 20, Marker: marker }));
      clusters.push(...(page.DBClusters ?? []));
      marker = page.Marker;
    } while (marker);
    expect(clusters).toHaveLength(22);
    const lab = clusters.find((cluster) => cluster.DBClusterIdentifier === 'lab');
    expect(lab).toMatchObject({ DBClusterParameterGroup: 'lab-audit', Engine: 'aurora-mysql', Status: 'available' });
    expect(lab?.DBClusterMembers).toEqual([
      expect.objectContaining({ DBInstanceIdentifier: 'lab-reader', IsClusterWriter: false }),
      expect.objectContaining({ DBInstanceIdentifier: 'lab-writer', IsClusterWriter: true }),
    ]);
    const quiet = await client.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'quiet' }));
    expect(quiet.DBClusters?.[0].DBClusterParameterGroup).toBe('quiet-params');
    const missing = await errorOf(client.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'nope' })));
    expect(missing.name).toBe('DBClusterNotFoundFault');
  });

  test('DescribeDBClusterParameters pages and reports server_audit_logging per group', async () => {
    const endpoint = await start(manyClusters(fixtureDir('logs', {})));
    const client = rds(endpoint);
    const readAll = async (group: string, source?: string) => {
      const parameters = [];
      let marker: string | undefined;
      let pages = 0;
      do {
        const page = await client.send(
          new DescribeDBClusterParametersCommand({
            DBClusterParameterGroupName: group,
            Source: source,
            MaxRecords: 20,
            Marker: marker,
          }),
        );
        parameters.push(...(page.Parameters ?? []));
        marker = page.Marker;
        pages++;
      } while (marker);
      return { parameters, pages };
    };
    const lab = await readAll('lab-audit');
    expect(lab.pages).toBeGreaterThan(1);
    expect(new Set(lab.parameters.map((p) => p.ParameterName)).size).toBe(lab.parameters.length);
    const value = (parameters: typeof lab.parameters, name: string) =>
      parameters.find((parameter) => parameter.ParameterName === name);
    expect(value(lab.parameters, 'server_audit_logging')).toMatchObject({ ParameterValue: '1', Source: 'user' });
    expect(value(lab.parameters, 'server_audit_events')?.ParameterValue).toBe(AUDIT_ON.server_audit_events);

    const quiet = await readAll('quiet-params');
    expect(value(quiet.parameters, 'server_audit_logging')?.ParameterValue).toBe('0');
    expect(value(quiet.parameters, 'server_audit_events')?.ParameterValue).toBeUndefined();

    const userOnly = await readAll('lab-audit', 'user');
    expect(userOnly.parameters.map((p) => p.ParameterName).sort()).toEqual(['server_audit_events', 'server_audit_logging']);
    const missing = await errorOf(
      client.send(new DescribeDBClusterParametersCommand({ DBClusterParameterGroupName: 'nope' })),
    );
    expect(missing.name).toBe('DBParameterGroupNotFoundFault');
  });
});

describe('DescribeDBLogFiles', () => {
  test('lists real sizes and mtimes, filters, and pages with Marker/MaxRecords', async () => {
    const files: Record<string, string> = { 'error/mysql-error.log': 'boot\n' };
    for (let i = 0; i < 5; i++) files[`audit/audit.log.${i}.2026-11-25-13-05.0`] = 'x\n'.repeat(i + 1);
    const dir = fixtureDir('logs', files);
    const written = Date.UTC(2026, 10, 25, 13, 5, 0);
    utimesSync(join(dir, 'audit/audit.log.4.2026-11-25-13-05.0'), written / 1000, written / 1000);
    const endpoint = await start(oneInstance(dir));
    const client = rds(endpoint);

    const names: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(
        new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'writer', MaxRecords: 2, Marker: marker }),
      );
      names.push(...(page.DescribeDBLogFiles ?? []).map((file) => file.LogFileName ?? ''));
      marker = page.Marker;
      pages++;
    } while (marker);
    expect(pages).toBe(3);
    expect(names).toEqual([...Object.keys(files)].sort());

    const audit = await client.send(
      new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'writer', FilenameContains: 'audit' }),
    );
    const last = audit.DescribeDBLogFiles?.find((file) => file.LogFileName === 'audit/audit.log.4.2026-11-25-13-05.0');
    expect(audit.DescribeDBLogFiles).toHaveLength(5);
    expect(last).toEqual({ LogFileName: 'audit/audit.log.4.2026-11-25-13-05.0', Size: 10, LastWritten: written });

    const large = await client.send(
      new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'writer', FilenameContains: 'audit', FileSize: 6 }),
    );
    expect(large.DescribeDBLogFiles?.map((file) => file.Size)).toEqual([8, 10]);
    const recent = await client.send(
      new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'writer', FileLastWritten: written + 1 }),
    );
    expect(recent.DescribeDBLogFiles?.map((file) => file.LogFileName)).not.toContain(last?.LogFileName);
    expect(recent.DescribeDBLogFiles).toHaveLength(5);
  });

  test('an unknown instance is DBInstanceNotFound for listing and download', async () => {
    const endpoint = await start(oneInstance(fixtureDir('logs', {})));
    const client = rds(endpoint);
    const listing = await errorOf(client.send(new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'ghost' })));
    expect(listing.name).toBe('DBInstanceNotFoundFault');
    const fetch = await errorOf(download(client, 'ghost', 'audit/audit.log.0.2026-11-25-13-05.0', '0'));
    expect(fetch.name).toBe('DBInstanceNotFoundFault');
    expect(fetch.$metadata?.httpStatusCode).toBe(404);
  });
});

describe('DownloadDBLogFilePortion', () => {
  const FILE = 'audit/audit.log.0.2026-11-25-13-05.0';

  test('lines are capped at 10000 only without Marker and NumberOfLines, as RDS documents; from a Marker the byte limit governs', async () => {
    // 30000 short lines (30 bytes each, 900,000 bytes): more than 10000 lines fit in one page.
    const content = Array.from({ length: 30_000 }, (_, index) => `${String(index).padStart(28, '0')},\n`).join('');
    const dir = fixtureDir('short-lines', { [FILE]: content });
    const client = rds(await start(oneInstance(dir)));
    const lines = (page: { LogFileData?: string }) => (page.LogFileData ?? '').split('\n').length - 1;

    const fromStart = await download(client, 'writer', FILE, '0');
    expect(lines(fromStart)).toBe(30_000);
    expect(fromStart.AdditionalDataPending).toBe(false);
    expect(lines(await download(client, 'writer', FILE))).toBe(10_000); // the newest lines
    expect(lines(await download(client, 'writer', FILE, '0', 12_345))).toBe(12_345);
    expect(lines(await download(client, 'writer', FILE, undefined, 20_000))).toBe(20_000);
  });

  test.each(['escaped', 'cdata'] as const)('a multi-page download from Marker "0" is byte-identical to the file (%s)', async (encoding) => {
    const content = trickyLog(3000);
    const dir = fixtureDir('logs', { [FILE]: content });
    const pageLimit = 16 * 1024;
    const endpoint = await start(oneInstance(dir, { pageLimitBytes: pageLimit, logDataEncoding: encoding }));
    const client = rds(endpoint);

    const { data, pages, rereads, final } = await downloadAll(client, 'writer', FILE);
    expect(data.equals(Buffer.from(content, 'utf8'))).toBe(true);
    expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(Buffer.byteLength(content) / pageLimit));
    expect(pages.length).toBeLessThanOrEqual(Math.ceil(Buffer.byteLength(content) / pageLimit) * 2);
    for (const page of pages) {
      expect(Buffer.byteLength(page)).toBeLessThanOrEqual(pageLimit);
      expect(page.endsWith('\n')).toBe(true);
    }
    expect(rereads).toBe(0);
    expect(final.AdditionalDataPending).toBe(false);
    const stats = endpoint.stats();
    expect(stats.bytesServed).toBe(Buffer.byteLength(content));
    expect(stats.perFile[`writer/${FILE}`]).toEqual({ calls: pages.length, bytesServed: Buffer.byteLength(content) });
    expect(stats.truncatedPages).toBe(0);
    expect(stats.unrepresentablePages).toBe(0);
  });

  test('the default page limit is 1,000,000 bytes of whole lines', async () => {
    const line = `${MARIADB_RECORD.trimEnd()}${'-'.repeat(300 - MARIADB_RECORD.length)}\n`;
    const content = line.repeat(Math.ceil(2_500_000 / line.length));
    const endpoint = await start(oneInstance(fixtureDir('logs', { [FILE]: content })));
    const client = rds(endpoint);
    const first = await download(client, 'writer', FILE, '0');
    const firstBytes = Buffer.byteLength(first.LogFileData ?? '');
    expect(firstBytes).toBeLessThanOrEqual(DEFAULT_PAGE_LIMIT_BYTES);
    expect(firstBytes).toBeGreaterThan(DEFAULT_PAGE_LIMIT_BYTES - line.length);
    expect(firstBytes % line.length).toBe(0);
    expect(first.AdditionalDataPending).toBe(true);
    const { data } = await downloadAll(client, 'writer', FILE);
    expect(data.toString('utf8')).toBe(content);
  });

  test('NumberOfLines caps the lines of a page; without a Marker the newest lines come back', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => `20261125 13:05:0${i % 10},h,u,localhost,1,${i},QUERY,db,'SELECT ${i}',0\n`);
    const endpoint = await start(oneInstance(fixtureDir('logs', { [FILE]: lines.join('') })));
    const client = rds(endpoint);

    const first = await download(client, 'writer', FILE, '0', 3);
    expect(first.LogFileData).toBe(lines.slice(0, 3).join(''));
    expect(first.AdditionalDataPending).toBe(true);
    const second = await download(client, 'writer', FILE, first.Marker, 4);
    expect(second.LogFileData).toBe(lines.slice(3, 7).join(''));
    const rest = await download(client, 'writer', FILE, second.Marker);
    expect(rest.LogFileData).toBe(lines.slice(7).join(''));
    expect(rest.AdditionalDataPending).toBe(false);

    const tail = await download(client, 'writer', FILE, undefined, 2);
    expect(tail.LogFileData).toBe(lines.slice(8).join(''));
    expect(tail.AdditionalDataPending).toBe(false);
    const zero = await errorOf(download(client, 'writer', FILE, '0', 0));
    expect(zero.name).toBe('InvalidParameterValue');
  });

  test('a line longer than the page is cut, ends with the truncation text, and the Marker skips it', async () => {
    const pageLimit = 200;
    const long = `${MARIADB_RECORD.trimEnd()}${'y'.repeat(500)}\n`;
    const before = 'first short line\n';
    const after = 'last short line\n';
    const endpoint = await start(oneInstance(fixtureDir('logs', { [FILE]: before + long + after }), { pageLimitBytes: pageLimit }));
    const client = rds(endpoint);

    const first = await download(client, 'writer', FILE, '0');
    expect(first.LogFileData).toBe(before); // stops before the line that does not fit: never truncates here
    const cut = await download(client, 'writer', FILE, first.Marker);
    expect(TRUNCATION_SUFFIX).toBe(' [Your log message was truncated]\n'); // the documented wire bytes
    expect(cut.LogFileData).toBe(long.slice(0, pageLimit - TRUNCATION_SUFFIX.length) + TRUNCATION_SUFFIX);
    expect(Buffer.byteLength(cut.LogFileData ?? '')).toBe(pageLimit);
    expect(cut.AdditionalDataPending).toBe(true);
    const again = await download(client, 'writer', FILE, first.Marker, 1);
    expect(again.LogFileData).toBe(cut.LogFileData); // one line that cannot fit stays cut
    const last = await download(client, 'writer', FILE, cut.Marker);
    expect(last.LogFileData).toBe(after);
    expect(endpoint.stats().truncatedPages).toBe(2);
  });

  test('a cut never splits a UTF-8 character', async () => {
    const pageLimit = 100;
    const long = `${'€'.repeat(60)}\n`; // 3 bytes each
    const endpoint = await start(oneInstance(fixtureDir('logs', { [FILE]: long }), { pageLimitBytes: pageLimit }));
    const page = await download(rds(endpoint), 'writer', FILE, '0');
    const room = pageLimit - TRUNCATION_SUFFIX.length;
    expect(page.LogFileData).toBe('€'.repeat(Math.floor(room / 3)) + TRUNCATION_SUFFIX);
  });

  test('truncate-pages fault: pages are filled and cut like RDS; re-reading with fewer lines gives whole lines', async () => {
    const content = trickyLog(400);
    const endpoint = await start(
      oneInstance(fixtureDir('logs', { [FILE]: content }), {
        pageLimitBytes: 4096,
        faults: { truncatePagesFraction: 1 },
      }),
    );
    const client = rds(endpoint);
    const first = await download(client, 'writer', FILE, '0');
    const text = first.LogFileData ?? '';
    expect(text.endsWith(TRUNCATION_SUFFIX)).toBe(true);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(4096);
    const body = text.slice(0, -TRUNCATION_SUFFIX.length);
    expect(content.startsWith(body)).toBe(true);
    expect(content[body.length]).not.toBe('\n'); // cut inside a line
    const wholeLines = text.split('\n').length - 2;
    expect(wholeLines).toBeGreaterThan(0);
    const reread = await download(client, 'writer', FILE, '0', wholeLines);
    expect(reread.LogFileData).toBe(content.split('\n').slice(0, wholeLines).join('\n') + '\n');

    const { data, rereads } = await downloadAll(client, 'writer', FILE);
    expect(data.toString('utf8')).toBe(content);
    expect(rereads).toBeGreaterThan(0);
    expect(endpoint.stats().truncatedPages).toBeGreaterThan(0);
  });

  test('the last page carries a Marker by default (RDS), which resumes exactly after growth', async () => {
    const dir = fixtureDir('logs', { [FILE]: MARIADB_RECORD });
    const endpoint = await start(oneInstance(dir));
    const client = rds(endpoint);
    const last = await download(client, 'writer', FILE, '0');
    expect(last.LogFileData).toBe(MARIADB_RECORD);
    expect(last.AdditionalDataPending).toBe(false);
    expect(last.Marker).toBeTruthy();

    const idle = await download(client, 'writer', FILE, last.Marker);
    expect(idle.LogFileData).toBe('');
    expect(idle.Marker).toBe(last.Marker);
    appendFileSync(join(dir, FILE), 'appended line\n');
    const grown = await download(client, 'writer', FILE, last.Marker);
    expect(grown.LogFileData).toBe('appended line\n');

    endpoint.setFaults({ nonEmptyFinalMarker: false });
    const bare = await download(client, 'writer', FILE, '0');
    expect(bare.AdditionalDataPending).toBe(false);
    expect(bare.Marker).toBeUndefined();
  });

  test('page-size override applies while set', async () => {
    const content = trickyLog(200);
    const endpoint = await start(oneInstance(fixtureDir('logs', { [FILE]: content })));
    const client = rds(endpoint);
    expect((await download(client, 'writer', FILE, '0')).AdditionalDataPending).toBe(false);
    endpoint.setFaults({ pageLimitBytes: 1000 });
    const small = await downloadAll(client, 'writer', FILE);
    expect(small.data.toString('utf8')).toBe(content);
    expect(small.pages.length).toBeGreaterThan(Buffer.byteLength(content) / 1000);
    for (const page of small.pages) expect(Buffer.byteLength(page)).toBeLessThanOrEqual(1000);
    endpoint.resetFaults();
    expect((await download(client, 'writer', FILE, '0')).AdditionalDataPending).toBe(false);
  });

  test('markers are opaque and bound to their file', async () => {
    const other = 'audit/audit.log.1.2026-11-25-13-05.0';
    const endpoint = await start(
      oneInstance(fixtureDir('logs', { [FILE]: 'a\nb\n', [other]: 'c\nd\n' }), { pageLimitBytes: 64 }),
    );
    const client = rds(endpoint);
    const page = await download(client, 'writer', FILE, '0', 1);
    expect(page.Marker).not.toMatch(/\d+:\d+/);
    expect((await errorOf(download(client, 'writer', other, page.Marker))).name).toBe('InvalidParameterValue');
    expect((await errorOf(download(client, 'writer', FILE, '2:2'))).name).toBe('InvalidParameterValue');
  });

  test('an empty file downloads as empty data without pending data', async () => {
    const endpoint = await start(oneInstance(fixtureDir('logs', { [FILE]: '' })));
    const page = await download(rds(endpoint), 'writer', FILE, '0');
    expect(page.LogFileData).toBe('');
    expect(page.AdditionalDataPending).toBe(false);
  });

  test('bytes that are not UTF-8 are refused by default, or replaced when configured', async () => {
    const bytes = Buffer.concat([Buffer.from('ok\n'), Buffer.from([0xff, 0xfe, 0x0a])]);
    const strict = await start(oneInstance(fixtureDir('strict', { [FILE]: bytes })));
    const refused = await errorOf(download(rds(strict), 'writer', FILE, '0'));
    expect(refused.name).toBe('InvalidLogFileData');
    expect(strict.stats().invalidUtf8Pages).toBe(1);

    const lenient = await start(oneInstance(fixtureDir('lenient', { [FILE]: bytes }), { invalidUtf8: 'replace' }));
    const replaced = await download(rds(lenient), 'writer', FILE, '0');
    expect(replaced.LogFileData).toBe('ok\n\uFFFD\uFFFD\n');
  });
});

describe('vanished files', () => {
  const FILE = 'audit/audit.log.0.2026-11-25-13-05.0';

  test('a hidden file is not listed and downloads fail with DBLogFileNotFoundFault', async () => {
    const endpoint = await start(oneInstance(fixtureDir('logs', { [FILE]: MARIADB_RECORD })));
    const client = rds(endpoint);
    endpoint.hideFile('writer', FILE);
    const listing = await client.send(new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'writer' }));
    expect(listing.DescribeDBLogFiles).toEqual([]);
    const missing = await errorOf(download(client, 'writer', FILE, '0'));
    expect(missing.name).toBe('DBLogFileNotFoundFault');
    expect(missing.$metadata?.httpStatusCode).toBe(404);
    endpoint.unhideFile('writer', FILE);
    expect((await download(client, 'writer', FILE, '0')).LogFileData).toBe(MARIADB_RECORD);
  });

  test('an unknown file is DBLogFileNotFoundFault', async () => {
    const endpoint = await start(oneInstance(fixtureDir('logs', {})));
    const missing = await errorOf(download(rds(endpoint), 'writer', 'audit/nope', '0'));
    expect(missing.name).toBe('DBLogFileNotFoundFault');
  });
});

describe('MariaDB audit directories: stable names across rotation', () => {
  function mariaDbOptions(dir: string, stateFile: string): RdsLogEndpointOptions {
    return {
      clusters: [
        {
          id: 'lab',
          parameterGroup: 'lab-audit',
          instances: [{ id: 'writer', logs: { kind: 'mariadb-audit', dir, baseName: 'server_audit.log' } }],
        },
      ],
      parameterGroups: { 'lab-audit': AUDIT_ON },
      stateFile,
    };
  }

  async function listing(client: RDSClient): Promise<Map<string, number>> {
    const page = await client.send(new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'writer' }));
    return new Map((page.DescribeDBLogFiles ?? []).map((file) => [file.LogFileName ?? '', file.Size ?? -1]));
  }

  async function contentOf(client: RDSClient, name: string): Promise<string> {
    return (await downloadAll(client, 'writer', name)).data.toString('utf8');
  }

  test('a file keeps its name through renames; new files get new names; deleted files are gone', async () => {
    const dir = join(root, 'datadir');
    mkdirSync(dir);
    const stateFile = join(root, 'state', 'rds-endpoint.json');
    const log = (suffix = '') => join(dir, `server_audit.log${suffix}`);
    writeFileSync(log(), 'A1\n');
    writeFileSync(join(dir, 'ib_logfile0'), 'not an audit file');
    const endpoint = await start(mariaDbOptions(dir, stateFile));
    const client = rds(endpoint);

    const [first] = [...(await listing(client)).keys()];
    expect(first).toMatch(AURORA_STABLE_NAME);
    appendFileSync(log(), MARIADB_RECORD);

    // Rotation 1: server_audit.log -> .1, a new server_audit.log.
    renameSync(log(), log('.1'));
    writeFileSync(log(), 'B1\n');
    const afterFirst = await listing(client);
    expect(afterFirst.size).toBe(2);
    expect(afterFirst.get(first)).toBe(3 + MARIADB_RECORD.length);
    const second = [...afterFirst.keys()].find((name) => name !== first) ?? '';
    expect(second).toMatch(AURORA_STABLE_NAME);
    expect(await contentOf(client, first)).toBe(`A1\n${MARIADB_RECORD}`);
    expect(await contentOf(client, second)).toBe('B1\n');

    // Rotation 2: .1 -> .2, server_audit.log -> .1, a new server_audit.log.
    renameSync(log('.1'), log('.2'));
    renameSync(log(), log('.1'));
    writeFileSync(log(), 'C1\n');
    const afterSecond = await listing(client);
    expect(afterSecond.size).toBe(3);
    const third = [...afterSecond.keys()].find((name) => name !== first && name !== second) ?? '';
    expect(await contentOf(client, first)).toBe(`A1\n${MARIADB_RECORD}`);
    expect(await contentOf(client, second)).toBe('B1\n');
    expect(await contentOf(client, third)).toBe('C1\n');

    // MariaDB deletes the oldest rotation: its name is gone for good.
    unlinkSync(log('.2'));
    expect([...(await listing(client)).keys()].sort()).toEqual([second, third].sort());
    expect((await errorOf(download(client, 'writer', first, '0'))).name).toBe('DBLogFileNotFoundFault');
    expect((await endpoint.files()).find((file) => file.LogFileName === first)?.gone).toBe(true);

    // A restarted endpoint keeps the names (state file).
    await endpoint.close();
    endpoints.splice(endpoints.indexOf(endpoint), 1);
    const restarted = await start(mariaDbOptions(dir, stateFile));
    const restartedClient = rds(restarted);
    expect([...(await listing(restartedClient)).keys()].sort()).toEqual([second, third].sort());
    expect(await contentOf(restartedClient, second)).toBe('B1\n');
    expect((await errorOf(download(restartedClient, 'writer', first, '0'))).name).toBe('DBLogFileNotFoundFault');
  });

  test('a file deleted and re-created between scans gets a new name, never the old one', async () => {
    const dir = join(root, 'datadir');
    mkdirSync(dir);
    writeFileSync(join(dir, 'server_audit.log'), 'old content\n');
    const endpoint = await start(mariaDbOptions(dir, join(root, 'state.json')));
    const client = rds(endpoint);
    const [oldName] = [...(await listing(client)).keys()];
    unlinkSync(join(dir, 'server_audit.log'));
    writeFileSync(join(dir, 'server_audit.log'), 'new\n');
    const names = [...(await listing(client)).keys()];
    expect(names).toHaveLength(1);
    expect(names[0]).not.toBe(oldName);
    expect(await contentOf(client, names[0])).toBe('new\n');
    expect((await errorOf(download(client, 'writer', oldName, '0'))).name).toBe('DBLogFileNotFoundFault');
  });
});

describe('faults and admin API', () => {
  const FILE = 'audit/audit.log.0.2026-11-25-13-05.0';

  test('a throttling fraction answers Throttling (HTTP 400) for that share of calls, counted in stats', async () => {
    const endpoint = await start(
      oneInstance(fixtureDir('logs', { [FILE]: MARIADB_RECORD }), { faults: { throttleFraction: 0.3, seed: 7 } }),
    );
    const client = rds(endpoint, { maxAttempts: 1 });
    let throttled = 0;
    for (let i = 0; i < 100; i++) {
      try {
        await client.send(new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'writer' }));
      } catch (error) {
        const failure = error as Error & { $metadata?: { httpStatusCode?: number } };
        expect(failure.name).toBe('Throttling');
        expect(failure.message).toBe('Rate exceeded');
        expect(failure.$metadata?.httpStatusCode).toBe(400);
        throttled++;
      }
    }
    expect(throttled).toBeGreaterThan(15);
    expect(throttled).toBeLessThan(45);
    const stats = endpoint.stats();
    expect(stats.throttled).toBe(throttled);
    expect(stats.errors.Throttling).toBe(throttled);
    expect(stats.calls.DescribeDBLogFiles).toBe(100);

    // The SDK's retries (the handlers' configuration) get through the same fault.
    const retrying = rds(endpoint, { maxAttempts: 10, retryMode: 'standard' });
    const page = await download(retrying, 'writer', FILE, '0');
    expect(page.LogFileData).toBe(MARIADB_RECORD);
  });

  test('latency delays answers', async () => {
    const endpoint = await start(oneInstance(fixtureDir('logs', {}), { faults: { latencyMs: 150 } }));
    const began = Date.now();
    await rds(endpoint).send(new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'writer' }));
    expect(Date.now() - began).toBeGreaterThanOrEqual(140);
  });

  test('the time spent answering pages is summed, latency included, and only for pages', async () => {
    const endpoint = await start(oneInstance(fixtureDir('logs', { [FILE]: MARIADB_RECORD }), { faults: { latencyMs: 60 } }));
    const client = rds(endpoint);
    await client.send(new DescribeDBLogFilesCommand({ DBInstanceIdentifier: 'writer' }));
    expect(endpoint.stats().downloadServiceMs).toBe(0);

    const began = performance.now();
    await download(client, 'writer', FILE, '0');
    await download(client, 'writer', FILE, '0');
    const elapsed = performance.now() - began;
    const { downloadServiceMs, downloadPages } = endpoint.stats();
    expect(downloadPages).toBe(2);
    expect(downloadServiceMs).toBeGreaterThanOrEqual(2 * 60 - 2);
    expect(downloadServiceMs).toBeLessThanOrEqual(elapsed);
    endpoint.resetStats();
    expect(endpoint.stats().downloadServiceMs).toBe(0);
  });

  test('admin API: faults, stats and files over HTTP', async () => {
    const endpoint = await start(oneInstance(fixtureDir('logs', { [FILE]: MARIADB_RECORD })));
    const client = rds(endpoint);
    const admin = (path: string, body?: unknown) =>
      fetch(`${endpoint.url}/__admin/${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    const set = await admin('faults', { hiddenFiles: [{ DBInstanceIdentifier: 'writer', LogFileName: FILE }] });
    expect(set.status).toBe(200);
    expect(((await set.json()) as { hiddenFiles: unknown[] }).hiddenFiles).toHaveLength(1);
    expect((await errorOf(download(client, 'writer', FILE, '0'))).name).toBe('DBLogFileNotFoundFault');
    const files = (await (await admin('files')).json()) as Array<{ LogFileName: string; hidden: boolean; size: number }>;
    expect(files).toEqual([expect.objectContaining({ LogFileName: FILE, hidden: true, size: MARIADB_RECORD.length })]);

    expect((await admin('faults', { throttleFraction: 2 })).status).toBe(400);
    expect((await admin('faults', { noSuchFault: true })).status).toBe(400);
    expect((await admin('faults/reset', {})).status).toBe(200);
    await download(client, 'writer', FILE, '0');

    const stats = (await (await admin('stats')).json()) as { bytesServed: number; calls: Record<string, number> };
    expect(stats.bytesServed).toBe(MARIADB_RECORD.length);
    expect(stats.calls.DownloadDBLogFilePortion).toBe(2);
    await admin('stats/reset', {});
    expect(endpoint.stats().bytesServed).toBe(0);
  });
});
