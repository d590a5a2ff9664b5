/**
 * The endpoint's stable names while MariaDB rotates: a rotation renames every audit file one by one
 * (.n -> .n+1, ..., server_audit.log -> .1, a new server_audit.log), and the endpoint scans the folder
 * meanwhile. Here another process rotates as fast as it can while the catalog scans in a loop.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogFileCatalog } from '../../scripts/local-lab/rds-endpoint/log-files';

const BASE = 'server_audit.log';

/** Rotates `files` numbered files plus the current one `cascades` times, deleting nothing. */
const ROTATOR = `
const { renameSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const [dir, base, files, cascades] = process.argv.slice(1);
let count = Number(files);
for (let cascade = 0; cascade < Number(cascades); cascade += 1) {
  for (let index = count; index >= 1; index -= 1) renameSync(join(dir, base + '.' + index), join(dir, base + '.' + (index + 1)));
  renameSync(join(dir, base), join(dir, base + '.1'));
  writeFileSync(join(dir, base), 'current ' + cascade + '\\n');
  count += 1;
}
`;

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'rds-endpoint-rotation-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

test('scans overlapping rotations never declare a present file gone nor give one file two names', async () => {
  const dir = join(root, 'audit');
  mkdirSync(dir);
  const files = 60;
  writeFileSync(join(dir, BASE), 'current\n');
  for (let index = 1; index <= files; index += 1) writeFileSync(join(dir, `${BASE}.${index}`), `file ${index}\n`);
  const catalog = await LogFileCatalog.create(new Map([['writer', { kind: 'mariadb-audit' as const, dir, baseName: BASE }]]));
  await catalog.list('writer');

  const rotator = spawn(process.execPath, ['-e', ROTATOR, dir, BASE, String(files), '300'], { stdio: 'inherit' });
  let rotating = true;
  const done = new Promise<number | null>((resolve) =>
    rotator.on('exit', (code) => {
      rotating = false;
      resolve(code);
    }),
  );
  let scans = 0;
  while (rotating) {
    await catalog.list('writer');
    scans += 1;
  }
  expect(await done).toBe(0);
  expect(scans).toBeGreaterThan(1);

  const present = readdirSync(dir).length;
  const listed = await catalog.list('writer');
  const described = await catalog.describeAll(() => false);
  expect(described.filter((file) => file.gone).map((file) => file.LogFileName)).toEqual([]);
  expect(listed).toHaveLength(present);
  expect(new Set(listed.map((file) => file.path)).size).toBe(present);
}, 60_000);
