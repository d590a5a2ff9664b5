/**
 * The lab's moto_server, started as the lab starts it. moto is a Python tool (this machine image
 * ships it; elsewhere `pip install "moto[server]==5.2.1"`); its absence fails here, never passes.
 */
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createClients, startMoto } from '../../scripts/local-lab/aws-services';
import { findExecutable } from '../../scripts/local-lab/preflight';
import { ProcessRegistry } from '../../scripts/local-lab/processes';

/** Files moto has open that are deleted temporary files: where it spills objects it does not keep in memory. */
function spilledObjectFiles(pid: number): string[] {
  const fdDir = `/proc/${pid}/fd`;
  return readdirSync(fdDir)
    .map((fd) => {
      try {
        return readlinkSync(join(fdDir, fd));
      } catch {
        return ''; // closed while listing
      }
    })
    .filter((target) => target.endsWith('(deleted)'));
}

describe('the lab moto_server', () => {
  const registry = new ProcessRegistry();
  const logDir = mkdtempSync(join(tmpdir(), 'moto-server-test-'));
  let url: string;
  let pid: number;

  beforeAll(async () => {
    const motoServer = findExecutable('moto_server');
    if (!motoServer) throw new Error('moto_server is not on PATH: pip install "moto[server]==5.2.1"');
    const moto = await startMoto(registry, motoServer, logDir);
    url = moto.url;
    pid = moto.process.child.pid ?? 0;
  });

  afterAll(async () => {
    await registry.stopAll();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('keeps an object larger than its default 5 MiB buffer in memory, and returns it intact', async () => {
    const { s3 } = createClients({ url, region: 'us-east-1', accountId: '000000000000' });
    await s3.send(new CreateBucketCommand({ Bucket: 'moto-memory' }));
    const body = Buffer.alloc(12 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32LE(i, i);
    const before = spilledObjectFiles(pid).length;

    await s3.send(new PutObjectCommand({ Bucket: 'moto-memory', Key: 'big', Body: body }));

    expect(spilledObjectFiles(pid).length).toBe(before);
    const stored = await s3.send(new GetObjectCommand({ Bucket: 'moto-memory', Key: 'big' }));
    expect(Buffer.from(await stored.Body!.transformToByteArray()).equals(body)).toBe(true);
  });
});
