/**
 * Page cutting of the local RDS log endpoint at its edges (positioned reads on real files), and its
 * command line.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { FileHandle, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readForwardPage, readTailPage } from '../../scripts/local-lab/rds-endpoint/log-pages';
import { TRUNCATION_SUFFIX } from '../../scripts/local-lab/rds-endpoint';

let root: string;
const handles: FileHandle[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'rds-endpoint-pages-'));
});

afterEach(async () => {
  for (const handle of handles.splice(0)) await handle.close();
  rmSync(root, { recursive: true, force: true });
});

async function fileWith(content: string | Buffer): Promise<{ handle: FileHandle; size: number }> {
  const path = join(root, `f${handles.length}`);
  writeFileSync(path, content);
  const handle = await open(path, 'r');
  handles.push(handle);
  return { handle, size: (await handle.stat()).size };
}

const never = () => false;

describe('forward pages', () => {
  test('a line of exactly the page limit fits; one byte more is cut', async () => {
    const exact = `${'a'.repeat(99)}\n`;
    const file = await fileWith(exact + exact);
    const page = await readForwardPage(file.handle, { ...file, offset: 0, maxLines: 10, pageLimit: 100, fillAndCut: never });
    expect(page.data.toString()).toBe(exact);
    expect(page.nextOffset).toBe(100);

    const over = await fileWith(`${'b'.repeat(100)}\nnext\n`);
    const cut = await readForwardPage(over.handle, { ...over, offset: 0, maxLines: 10, pageLimit: 100, fillAndCut: never });
    expect(cut.truncated).toBe(true);
    expect(cut.data.toString()).toBe('b'.repeat(100 - TRUNCATION_SUFFIX.length) + TRUNCATION_SUFFIX);
    expect(cut.nextOffset).toBe(101);
  });

  test('a final line without LF is served; a character still being written at EOF waits', async () => {
    const file = await fileWith('whole\npartial');
    const page = await readForwardPage(file.handle, { ...file, offset: 0, maxLines: 10, pageLimit: 100, fillAndCut: never });
    expect(page.data.toString()).toBe('whole\npartial');
    expect(page.nextOffset).toBe(file.size);

    const euro = Buffer.from('€');
    const midChar = await fileWith(Buffer.concat([Buffer.from('x\nab'), euro.subarray(0, 2)]));
    const waiting = await readForwardPage(midChar.handle, {
      ...midChar,
      offset: 0,
      maxLines: 10,
      pageLimit: 100,
      fillAndCut: never,
    });
    expect(waiting.data.toString()).toBe('x\nab');
    expect(waiting.nextOffset).toBe(midChar.size - 2);
  });

  test('the cut line of an over-long line is found far beyond the page', async () => {
    const file = await fileWith(`${'z'.repeat(300_000)}\nafter\n`);
    const page = await readForwardPage(file.handle, { ...file, offset: 0, maxLines: 10, pageLimit: 1000, fillAndCut: never });
    expect(page.nextOffset).toBe(300_001);
    const next = await readForwardPage(file.handle, {
      ...file,
      offset: page.nextOffset,
      maxLines: 10,
      pageLimit: 1000,
      fillAndCut: never,
    });
    expect(next.data.toString()).toBe('after\n');
  });

  test('the truncate fault is not offered when the requested lines fit or no whole line precedes the cut', async () => {
    const lines = 'l1\nl2\nl3\n';
    const file = await fileWith(lines.repeat(100));
    let asked = 0;
    const ask = () => {
      asked++;
      return true;
    };
    const fits = await readForwardPage(file.handle, { ...file, offset: 0, maxLines: 3, pageLimit: 100, fillAndCut: ask });
    expect(fits.data.toString()).toBe(lines);
    expect(asked).toBe(0);

    const single = await fileWith(`${'s'.repeat(90)}\n${'m'.repeat(20)}\n`);
    const alone = await readForwardPage(single.handle, { ...single, offset: 0, maxLines: 5, pageLimit: 100, fillAndCut: ask });
    expect(alone.data.toString()).toBe(`${'s'.repeat(90)}\n`);
    expect(asked).toBe(0);
  });
});

describe('tail pages (no Marker)', () => {
  test('the newest lines that fit, in file order, ending at EOF', async () => {
    const file = await fileWith('one\ntwo\nthree\nfour\n');
    const two = await readTailPage(file.handle, { size: file.size, maxLines: 2, pageLimit: 100 });
    expect(two.data.toString()).toBe('three\nfour\n');
    expect(two.nextOffset).toBe(file.size);
    const bytes = await readTailPage(file.handle, { size: file.size, maxLines: 100, pageLimit: 12 });
    expect(bytes.data.toString()).toBe('three\nfour\n');
    const all = await readTailPage(file.handle, { size: file.size, maxLines: 100, pageLimit: 100 });
    expect(all.data.toString()).toBe('one\ntwo\nthree\nfour\n');
  });

  test('a window starting exactly at a line start includes that line', async () => {
    const file = await fileWith('aaaa\nbbbb\ncccc\n'); // 15 bytes; a 10-byte page holds the last two lines
    const page = await readTailPage(file.handle, { size: file.size, maxLines: 100, pageLimit: 10 });
    expect(page.data.toString()).toBe('bbbb\ncccc\n');
  });

  test('a newest line longer than the page is cut from its start', async () => {
    const file = await fileWith(`old\n${'n'.repeat(500)}\n`);
    const page = await readTailPage(file.handle, { size: file.size, maxLines: 100, pageLimit: 100 });
    expect(page.truncated).toBe(true);
    expect(page.data.toString()).toBe('n'.repeat(100 - TRUNCATION_SUFFIX.length) + TRUNCATION_SUFFIX);
    expect(page.nextOffset).toBe(file.size);
  });
});

describe('command line', () => {
  test('prints the URL on stdout, serves the config, and stops on SIGTERM', async () => {
    const config = join(root, 'endpoint.json');
    writeFileSync(join(root, 'f.log'), 'hello\n');
    writeFileSync(
      config,
      JSON.stringify({
        clusters: [{ id: 'lab', parameterGroup: 'pg', instances: [{ id: 'w', logs: { kind: 'directory', dir: '.' } }] }],
        parameterGroups: { pg: { server_audit_logging: '1' } },
      }),
    );
    const child = spawn(
      process.execPath,
      [require.resolve('tsx/cli'), join(__dirname, '../../scripts/local-lab/rds-endpoint/cli.ts'), '--config', config],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]);
        });
        child.once('exit', (code) => reject(new Error(`cli exited with ${code}`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const files = (await (await fetch(`${url}/__admin/files`)).json()) as Array<{ LogFileName: string }>;
      expect(files.map((file) => file.LogFileName).sort()).toEqual(['endpoint.json', 'f.log']);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
