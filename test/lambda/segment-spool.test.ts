import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { SegmentSpool } from '../../lambda/shared/segment-writer';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'segment-spool-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

// Never sent anything: these tests only append, seal and discard.
const s3 = new S3Client({ region: 'eu-west-1' });
const spoolAt = (path: string): SegmentSpool => new SegmentSpool(s3, 'unused-bucket', path);

describe('SegmentSpool.append', () => {
  it('returns before its write completes; sealed, the file holds every page in order with their SHA-256', async () => {
    const path = join(dir, 'segment.spool');
    const spool = spoolAt(path);
    const pages = [randomBytes(300_000), randomBytes(1), randomBytes(1_048_576), randomBytes(70_000)];
    const writes: Promise<void>[] = [];
    const settled: boolean[] = [];
    for (const page of pages) {
      const { written } = await spool.append(page);
      const index = writes.push(written) - 1;
      void written.then(() => (settled[index] = true));
      // The write of the page just appended is still running: the caller may fetch its next page.
      expect(settled[index]).toBeUndefined();
    }
    const whole = Buffer.concat(pages);
    const sealed = await spool.seal();
    // The seal waited for the last write.
    await Promise.all(writes);
    expect(sealed).toEqual({ bytes: whole.length, sha256: createHash('sha256').update(whole).digest('base64') });
    expect(readFileSync(path)).toEqual(whole);
    await spool.discard();
    expect(existsSync(path)).toBe(false);
  });

  it('an empty page writes nothing', async () => {
    const path = join(dir, 'segment.spool');
    const spool = spoolAt(path);
    const { written } = await spool.append(Buffer.alloc(0));
    await written;
    expect(spool.bytes).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  it('a failed write fails the next append and the seal; the spool can still be discarded', async () => {
    // /dev/full accepts open() and fails every write with ENOSPC, like a full /tmp.
    const path = join(dir, 'segment.spool');
    symlinkSync('/dev/full', path);
    const spool = spoolAt(path);
    const { written } = await spool.append(Buffer.from('first page'));
    await expect(written).rejects.toThrow(/ENOSPC/);
    await expect(spool.append(Buffer.from('second page'))).rejects.toThrow(/ENOSPC/);
    await expect(spool.seal()).rejects.toThrow(/ENOSPC/);
    await spool.discard();
    // Only the link went, not the device.
    expect(existsSync(path)).toBe(false);
    expect(existsSync('/dev/full')).toBe(true);
  });
});
