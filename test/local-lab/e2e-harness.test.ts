/**
 * The fault suite's own building blocks (scripts/local-lab/e2e): the per-cycle ledger invariants, the
 * deterministic fixture logs, the fault proxy and the process-tree scan behind "no process left".
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LEDGER_ATTR, LedgerStatus } from '../../lambda/shared/contract';
import { FaultProxy, Interception } from '../../scripts/local-lab/e2e/fault-proxy';
import { AuditLineGenerator, FixtureLogs } from '../../scripts/local-lab/e2e/fixtures';
import { descendantProcesses } from '../../scripts/local-lab/e2e/harness';
import { ledgerViolations, newLedgerViolations } from '../../scripts/local-lab/verify';
import { claimRaces } from '../../scripts/local-lab/e2e/scenarios/concurrent';

const ID = 'lab-writer/audit/audit.log.0.2026-01-01-00-00.0';

function item(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    [LEDGER_ATTR.instance]: 'lab-writer',
    [LEDGER_ATTR.file]: 'audit/audit.log.0.2026-01-01-00-00.0',
    [LEDGER_ATTR.size]: 300,
    [LEDGER_ATTR.lastWritten]: 1,
    [LEDGER_ATTR.status]: LedgerStatus.DONE,
    [LEDGER_ATTR.statusChangedAt]: 1,
    [LEDGER_ATTR.backedUpBytes]: 300,
    [LEDGER_ATTR.segments]: [
      { Start: 0, End: 100, Sha256: 'a' },
      { Start: 100, End: 300, Sha256: 'b' },
    ],
    ...overrides,
  };
}

describe('ledgerViolations', () => {
  const sizes = new Map([[ID, 300]]);

  it('reports a broken rule once across checks (newLedgerViolations), matching files by instance/name', () => {
    const seen: string[] = [];
    const file = { instance: 'lab-writer', logFileName: 'audit/audit.log.0.2026-01-01-00-00.0', size: 200 };
    const beyond = `${ID}: BackedUpBytes 300 beyond the 200 bytes the source wrote`;
    expect(newLedgerViolations(seen, [item()], [file])).toEqual([beyond]);
    expect(newLedgerViolations(seen, [item()], [file])).toEqual([]);
    const claimed = item({ [LEDGER_ATTR.claimToken]: 't' });
    expect(newLedgerViolations(seen, [claimed], [file])).toEqual([`${ID}: DONE while still claimed`]);
    expect(seen).toEqual([beyond, `${ID}: DONE while still claimed`]);
    // A file of another name is no source for this item: no size to exceed.
    expect(newLedgerViolations([], [item()], [{ ...file, logFileName: 'other' }])).toEqual([]);
  });

  it('accepts a complete DONE item, and DONE beyond the last listing (the file grew during the pass)', () => {
    expect(ledgerViolations([item()], sizes)).toEqual([]);
    expect(ledgerViolations([item({ [LEDGER_ATTR.size]: 250 })], sizes)).toEqual([]);
  });

  it('flags DONE with listed bytes missing, an open intent or a live claim', () => {
    expect(ledgerViolations([item({ [LEDGER_ATTR.size]: 400 })], new Map([[ID, 400]]))).toEqual([`${ID}: DONE with 300 of 400 listed bytes stored`]);
    expect(ledgerViolations([item({ [LEDGER_ATTR.pendingSegment]: { Start: 300, End: 350, Sha256: 'c', Marker: 'm' } })], new Map([[ID, 400]]))).toEqual([
      `${ID}: DONE with an open intent`,
    ]);
    expect(ledgerViolations([item({ [LEDGER_ATTR.claimToken]: 't' })], sizes)).toEqual([`${ID}: DONE while still claimed`]);
  });

  it('flags gaps, a checkpoint that is not the end of the segments, bytes beyond the source and a misplaced intent', () => {
    const gap = item({ [LEDGER_ATTR.segments]: [{ Start: 0, End: 100, Sha256: 'a' }, { Start: 120, End: 300, Sha256: 'b' }] });
    expect(ledgerViolations([gap], sizes)).toEqual([`${ID}: segment 120-300 does not start at 100`]);
    const behind = item({ [LEDGER_ATTR.status]: LedgerStatus.PENDING, [LEDGER_ATTR.backedUpBytes]: 100 });
    expect(ledgerViolations([behind], sizes)).toEqual([`${ID}: segments end at 300, BackedUpBytes 100`]);
    expect(ledgerViolations([item()], new Map([[ID, 200]]))).toEqual([`${ID}: BackedUpBytes 300 beyond the 200 bytes the source wrote`]);
    const intent = item({
      [LEDGER_ATTR.status]: LedgerStatus.IN_PROGRESS,
      [LEDGER_ATTR.size]: 500,
      [LEDGER_ATTR.pendingSegment]: { Start: 100, End: 400, Sha256: 'c', Marker: 'm' },
    });
    expect(ledgerViolations([intent], new Map([[ID, 500]]))).toEqual([`${ID}: intent starts at 100, checkpoint is 300`]);
  });

  it('reports a malformed item instead of throwing', () => {
    expect(ledgerViolations([item({ [LEDGER_ATTR.status]: 'WHATEVER' })], sizes)[0]).toMatch(/malformed/);
  });
});

describe('fixture logs', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'e2e-fixtures-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('generates the same server_audit lines for the same seed, and other lines for another', () => {
    const a = new AuditLineGenerator('lab-writer', 'seed-1').chunk(50_000);
    const b = new AuditLineGenerator('lab-writer', 'seed-1').chunk(50_000);
    const c = new AuditLineGenerator('lab-writer', 'seed-2').chunk(50_000);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
    const lines = a.toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    for (const line of lines) {
      expect(line).toMatch(/^\d{8} \d{2}:\d{2}:\d{2},lab-writer,[^,]+,[^,]+,\d+,\d+,(QUERY,sbtest,'.*'|CONNECT,sbtest,|DISCONNECT,sbtest,),0$/);
      expect(Buffer.byteLength(line)).toBeLessThan(6000);
    }
    expect(a.toString('utf8')).toMatch(/[^\x00-\x7f]/);
  });

  it('grows files by whole lines and keeps a vanished file aside for the oracle', () => {
    const fixtures = new FixtureLogs(root, 'seed');
    const [file] = fixtures.populate(1, 10_000, ['writer']);
    if (!file) throw new Error('no file');
    expect(file.logFileName).toBe('audit/audit.log.0.2026-01-01-00-00.0');
    const written = file.append(5_000);
    expect(file.size).toBe(readFileSync(file.path).length);
    expect(readFileSync(file.path, 'utf8').endsWith('\n')).toBe(true);
    expect(written).toBeGreaterThanOrEqual(5_000);
    file.vanish({ expectLost: true });
    expect(existsSync(file.path)).toBe(false);
    expect(fixtures.sources()).toEqual([{ instance: 'lab-writer', logFileName: file.logFileName, path: file.referencePath, size: file.size, expectLost: true }]);
    expect(() => file.append(10)).toThrow(/vanished/);
  });
});

describe('FaultProxy', () => {
  let upstream: Server;
  let upstreamUrl: string;
  const seen: string[] = [];
  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => res.end('upstream answer'));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
  beforeEach(() => {
    seen.length = 0;
  });

  const call = (url: string, path: string): Promise<{ status: number; body: string } | 'hung up'> =>
    new Promise((resolve) => {
      const req = request(`${url}${path}`, { method: 'PUT' }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', () => resolve('hung up'));
      req.end('payload');
    });

  it('forwards, drops before or after the service, or fails after it, running the hook first', async () => {
    const hooks: string[] = [];
    const plan: Record<string, Interception> = {
      '/forward': { action: 'forward' },
      '/drop': { action: 'drop', afterwards: async () => void hooks.push('drop') },
      '/after': { action: 'forward-then-drop', afterwards: async () => void hooks.push('after') },
      '/fail-after': { action: 'forward-then-fail', answer: { status: 400, contentType: 'text/plain', body: 'injected' } },
    };
    const proxy = await FaultProxy.start(() => upstreamUrl, (req) => plan[req.url] ?? { action: 'forward' });
    try {
      expect(await call(proxy.url, '/forward')).toEqual({ status: 200, body: 'upstream answer' });
      expect(await call(proxy.url, '/drop')).toBe('hung up');
      expect(await call(proxy.url, '/after')).toBe('hung up');
      expect(await call(proxy.url, '/fail-after')).toEqual({ status: 400, body: 'injected' });
      expect(seen).toEqual(['PUT /forward', 'PUT /after', 'PUT /fail-after']);
      expect(hooks).toEqual(['drop', 'after']);
      expect(proxy.counts).toMatchObject({ forward: 1, drop: 1, 'forward-then-drop': 1, 'forward-then-fail': 1 });
    } finally {
      await proxy.close();
    }
  });
});

describe('descendantProcesses', () => {
  it('finds a child (and its command line) while it runs, and not after it ended', async () => {
    const child = spawn('sleep', ['30']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(descendantProcesses(process.pid)).toContainEqual({ pid: child.pid, command: 'sleep 30' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(descendantProcesses(process.pid).map((entry) => entry.pid)).not.toContain(child.pid);
  });
});

describe('claimRaces (evidence of the detector and a downloader meeting on one item)', () => {
  type Fields = { status: string; size: number; backedUp?: number; claim?: string };
  const image = ({ status, size, backedUp = 0, claim }: Fields) => ({
    [LEDGER_ATTR.status]: { S: status },
    [LEDGER_ATTR.size]: { N: String(size) },
    [LEDGER_ATTR.backedUpBytes]: { N: String(backedUp) },
    ...(claim ? { [LEDGER_ATTR.claimToken]: { S: claim } } : {}),
  });
  const modify = (before: Fields, after: Fields) => ({ eventName: 'MODIFY' as const, dynamodb: { OldImage: image(before), NewImage: image(after) } });
  const { IN_PROGRESS, PENDING, DONE } = LedgerStatus;

  it('counts growth recorded under the same live claim, and hand-backs that leave bytes to read', () => {
    expect(
      claimRaces([
        modify({ status: IN_PROGRESS, size: 100, claim: 't1' }, { status: IN_PROGRESS, size: 180, claim: 't1' }),
        modify({ status: IN_PROGRESS, size: 180, backedUp: 100, claim: 't1' }, { status: PENDING, size: 180, backedUp: 150 }),
      ]),
    ).toEqual({ grewWhileClaimed: 1, releasedToReadMore: 1 });
  });

  it('does not count a checkpoint, a new claim, a finished pass or growth while not claimed', () => {
    expect(
      claimRaces([
        // The downloader's own checkpoint: same size.
        modify({ status: IN_PROGRESS, size: 100, claim: 't1' }, { status: IN_PROGRESS, size: 100, backedUp: 50, claim: 't1' }),
        // Claimed afresh by another holder.
        modify({ status: IN_PROGRESS, size: 100, claim: 't1' }, { status: IN_PROGRESS, size: 150, claim: 't2' }),
        // DONE at the size listed; PENDING with nothing left to read.
        modify({ status: IN_PROGRESS, size: 100, claim: 't1' }, { status: DONE, size: 100, backedUp: 100 }),
        modify({ status: IN_PROGRESS, size: 100, claim: 't1' }, { status: PENDING, size: 100, backedUp: 100 }),
        // Growth of an item nobody holds.
        modify({ status: DONE, size: 100 }, { status: PENDING, size: 200, backedUp: 100 }),
        { eventName: 'INSERT' as const, dynamodb: { NewImage: image({ status: PENDING, size: 10 }) } },
      ]),
    ).toEqual({ grewWhileClaimed: 0, releasedToReadMore: 0 });
  });
});
