import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RDSClient } from '@aws-sdk/client-rds';
import { RDS_TRUNCATION_TEXT } from '../../lambda/shared/contract';
import { LAB_CREDENTIALS } from '../../scripts/local-lab/aws-services';
import { startRdsLogEndpoint } from '../../scripts/local-lab/rds-endpoint';
import { PreflightError } from '../../scripts/local-lab/preflight';
import { checkRdsEndpointAnswers, downloadWholeFile, type ReferenceCopy } from '../../scripts/local-lab/rds-api-source';

/** A loopback port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('checkRdsEndpointAnswers (npm run lab -- --rds-endpoint)', () => {
  it('passes for an endpoint that answers DescribeDBInstances', async () => {
    const endpoint = await startRdsLogEndpoint({ clusters: [], parameterGroups: {} });
    try {
      await expect(checkRdsEndpointAnswers(endpoint.url, 'us-east-1')).resolves.toBeUndefined();
      expect(endpoint.stats().calls.DescribeDBInstances).toBe(1);
    } finally {
      await endpoint.close();
    }
  });

  it('fails at once, naming the endpoint, when nothing answers there', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const started = Date.now();
    const failure = checkRdsEndpointAnswers(url, 'us-east-1');
    await expect(failure).rejects.toThrow(PreflightError);
    await expect(failure).rejects.toThrow(`the RDS endpoint ${url} does not answer DescribeDBInstances`);
    expect(Date.now() - started).toBeLessThan(5000); // one attempt, no retries with backoff
  });
});

describe('downloadWholeFile (the reference copy for an external endpoint)', () => {
  const FILE = 'audit/audit.log.0.2026-12-05-10-00.0';
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'reference-copy-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  async function copyOf(content: string): Promise<{ copy: ReferenceCopy; bytes: string; calls: number }> {
    mkdirSync(join(root, 'logs', 'audit'), { recursive: true });
    writeFileSync(join(root, 'logs', FILE), content);
    const endpoint = await startRdsLogEndpoint({
      clusters: [{ id: 'c', parameterGroup: 'g', instances: [{ id: 'writer', logs: { kind: 'directory', dir: join(root, 'logs') } }] }],
      parameterGroups: { g: { server_audit_logging: '1' } },
      pageLimitBytes: 200,
    });
    const rds = new RDSClient({ region: 'us-east-1', endpoint: endpoint.url, credentials: LAB_CREDENTIALS });
    try {
      const target = join(root, 'copy', FILE);
      const copy = await downloadWholeFile(rds, 'writer', FILE, target);
      return { copy, bytes: readFileSync(target, 'utf8'), calls: endpoint.stats().calls.DownloadDBLogFilePortion ?? 0 };
    } finally {
      rds.destroy();
      await endpoint.close();
    }
  }

  const line = (index: number) => `20261205 10:00:00,host,user,127.0.0.1,${index},0,QUERY,db,'SELECT ${index}',0\n`;

  it('copies a file of many pages byte for byte, including a line that quotes the truncation text', async () => {
    const content = [line(1), `20261205 10:00:01,host,user,127.0.0.1,2,0,QUERY,db,'SELECT "${RDS_TRUNCATION_TEXT}" x',0\n`, ...Array.from({ length: 20 }, (_, i) => line(i + 3))].join('');
    const { copy, bytes, calls } = await copyOf(content);
    expect(bytes).toBe(content);
    expect(copy).toEqual({ bytes: Buffer.byteLength(content) });
    // One call per page: the quoted text mid-page is not taken for a cut line and re-read line by line
    // (that took 14 more calls, more calls than the file has lines).
    expect(calls).toBeLessThan(22);
  });

  it('ends the copy before a line RDS cannot return whole, and says where it starts', async () => {
    const before = line(1) + line(2);
    const content = before + `20261205 10:00:02,host,user,127.0.0.1,3,0,QUERY,db,'${'x'.repeat(500)}',0\n` + line(4);
    const { copy, bytes } = await copyOf(content);
    expect(bytes).toBe(before);
    expect(copy).toEqual({ bytes: Buffer.byteLength(before), unreadableLineAt: Buffer.byteLength(before) });
  });
});
