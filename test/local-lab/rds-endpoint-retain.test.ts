/**
 * The retain folder: MariaDB deletes its oldest audit file once server_audit_file_rotations are kept,
 * and the lab still compares that file with its backup through a hard link the catalog made when it
 * first saw the file, by a request's scan or by the folder watcher between requests.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogFileCatalog } from '../../scripts/local-lab/rds-endpoint/log-files';

const BASE = 'server_audit.log';
let root: string;
let dir: string;
let retainDir: string;
let catalog: LogFileCatalog | undefined;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'rds-endpoint-retain-'));
  dir = join(root, 'audit');
  retainDir = join(root, 'retained');
  mkdirSync(dir);
});
afterEach(() => {
  catalog?.close();
  catalog = undefined;
  rmSync(root, { recursive: true, force: true });
});

const sources = () => new Map([['writer', { kind: 'mariadb-audit' as const, dir, baseName: BASE }]]);

/** MariaDB's rotation with `server_audit_file_rotations` = 1: the current file becomes .1, the old .1 is deleted. */
function rotate(nextContent: string): void {
  rmSync(join(dir, `${BASE}.1`), { force: true });
  renameSync(join(dir, BASE), join(dir, `${BASE}.1`));
  writeFileSync(join(dir, BASE), nextContent);
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a deleted file keeps its bytes, all of them, under its stable name in the retain folder', async () => {
  writeFileSync(join(dir, BASE), 'first file, line 1\n');
  catalog = await LogFileCatalog.create(sources(), { retainDir });
  const [first] = await catalog.list('writer');
  appendFileSync(join(dir, BASE), 'first file, line 2\n'); // written after the link: the link is the same file
  rotate('second file\n');
  await catalog.list('writer');
  rotate('third file\n'); // deletes the first file
  await catalog.list('writer');

  const described = await catalog.describeAll(() => false);
  const deleted = described.find((file) => file.LogFileName === first?.name);
  expect(deleted).toMatchObject({ gone: true, retainedPath: join(retainDir, 'writer', ...(first?.name ?? '').split('/')) });
  expect(readFileSync(deleted?.retainedPath ?? '', 'utf8')).toBe('first file, line 1\nfirst file, line 2\n');
  // Every file has its link, present ones included (the same inode as the file itself).
  for (const file of described) expect(statSync(file.retainedPath ?? '').ino).toBe(file.gone ? statSync(deleted?.retainedPath ?? '').ino : statSync(file.path).ino);
});

test('the watcher retains a file that lives and dies between two requests', async () => {
  writeFileSync(join(dir, BASE), 'before\n');
  catalog = await LogFileCatalog.create(sources(), { retainDir });
  await catalog.list('writer');
  rotate('short-lived\n');
  // Give the watcher a moment to see the new file before the next rotation deletes... its predecessor,
  // and then the short-lived file itself: no request in between.
  await until(async () => (await catalog!.describeAll(() => false)).some((file) => file.retainedPath && readFileSync(file.retainedPath, 'utf8') === 'short-lived\n'), 'the new file to be retained');
  rotate('after\n');
  rotate('last\n'); // the short-lived file is deleted here
  await until(async () => (await catalog!.describeAll(() => false)).filter((file) => file.gone).length === 2, 'both deletions to be seen');
  const gone = (await catalog.describeAll(() => false)).filter((file) => file.gone);
  expect(gone.map((file) => readFileSync(file.retainedPath ?? '', 'utf8')).sort()).toEqual(['before\n', 'short-lived\n']);
});

test('a leftover link to another file under the name is replaced, never taken for the file', async () => {
  writeFileSync(join(dir, BASE), 'the real file\n');
  catalog = await LogFileCatalog.create(sources(), { retainDir });
  const [file] = await catalog.list('writer');
  const target = join(retainDir, 'writer', ...(file?.name ?? '').split('/'));
  // Simulate a link that ended up pointing at another file (an earlier run, a rotation mid-link).
  unlinkSync(target);
  writeFileSync(target, 'someone else\n');
  catalog.close();
  const fresh = await LogFileCatalog.create(sources(), { retainDir });
  catalog = fresh;
  await fresh.list('writer'); // finds another file under the name: removes it, links nothing yet
  await fresh.list('writer');
  const [described] = await fresh.describeAll(() => false);
  expect(readFileSync(described?.retainedPath ?? '', 'utf8')).toBe('the real file\n');
  expect(statSync(described?.retainedPath ?? '').ino).toBe(statSync(join(dir, BASE)).ino);
});
