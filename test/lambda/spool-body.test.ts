import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SpoolBody } from '../../lambda/shared/spool-body';

const CHUNK = 64 * 1024;

let dir: string;
let path: string;
let content: Buffer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'spool-body-'));
  path = join(dir, 'segment.spool');
  content = randomBytes(6 * 1024 * 1024 + 123);
  writeFileSync(path, content);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** What a loopback server received: its length and SHA-256. `pauseMs` makes it read slowly. */
async function putThroughHttp(body: SpoolBody, pauseMs = 0): Promise<{ bytes: number; sha256: string }> {
  const server = createServer((incoming: IncomingMessage, response) => {
    const hash = createHash('sha256');
    let bytes = 0;
    incoming.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (pauseMs > 0) {
        // Stop reading for a while: the client's socket fills and its writes stay pending.
        incoming.pause();
        setTimeout(() => incoming.resume(), pauseMs);
      }
    });
    incoming.on('end', () => response.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      const outgoing = request({ host: '127.0.0.1', port, method: 'PUT', headers: { 'content-length': String(content.length) } }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (piece: string) => (text += piece));
        response.on('end', () => resolve(JSON.parse(text) as { bytes: number; sha256: string }));
      });
      outgoing.on('error', reject);
      body.on('error', reject);
      body.pipe(outgoing);
    });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Resolves once `condition` has held on two checks in a row (nothing moves any more), or fails. */
async function stuck(condition: () => boolean): Promise<void> {
  let held = 0;
  for (let waited = 0; waited < 5000; waited += 20) {
    held = condition() ? held + 1 : 0;
    if (held === 2) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the transfer never stalled');
}

describe('SpoolBody', () => {
  it('piped into an HTTP request, sends the spool byte for byte through one reused buffer', async () => {
    const body = new SpoolBody(path, content.length, CHUNK);
    const received = await putThroughHttp(body);
    expect(received).toEqual({ bytes: content.length, sha256: sha256(content) });
    expect(body.chunks.reused + body.chunks.fresh).toBe(Math.ceil(content.length / CHUNK));
    expect(body.chunks.reused).toBeGreaterThan(body.chunks.fresh);
  });

  it('sends the spool byte for byte to a server that reads slowly', async () => {
    const body = new SpoolBody(path, content.length, CHUNK);
    const received = await putThroughHttp(body, 2);
    expect(received).toEqual({ bytes: content.length, sha256: sha256(content) });
    expect(body.chunks.reused).toBeGreaterThan(0);
  });

  it('reads into a new buffer when asked for a chunk while the request still holds unsent bytes', async () => {
    let serverSide: IncomingMessage | undefined;
    const hash = createHash('sha256');
    const server = createServer();
    const done = new Promise<number>((resolve) => {
      let bytes = 0;
      server.on('request', (incoming: IncomingMessage, response) => {
        serverSide = incoming;
        // Not read until the test says so: the client's socket fills and its writes stay pending.
        incoming.pause();
        incoming.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          bytes += chunk.length;
        });
        incoming.on('end', () => {
          response.end();
          resolve(bytes);
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const outgoing = request({ host: '127.0.0.1', port, method: 'PUT', headers: { 'content-length': String(content.length) } });
      const answered = new Promise((resolve, reject) => outgoing.on('response', resolve).on('error', reject));
      const body = new SpoolBody(path, content.length, CHUNK);
      body.pipe(outgoing);
      // The server stops reading, the socket fills, and the pipe pauses the body with the request holding
      // bytes it could not send yet.
      await stuck(() => body.isPaused() && outgoing.writableLength > 0);
      const before = { ...body.chunks };
      // Ask for a chunk anyway, as a consumer other than the pipe could.
      const pushed = new Promise((resolve) => body.once('readable', resolve));
      body.read(0);
      await pushed;
      expect(body.chunks).toEqual({ reused: before.reused, fresh: before.fresh + 1 });
      serverSide?.resume();
      // Had the chunk reused the buffer, the bytes still waiting in the request would have changed.
      expect(await done).toBe(content.length);
      expect(hash.digest('hex')).toBe(sha256(content));
      await answered;
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('gives any other consumer a new buffer per chunk, since it may keep the chunks it accepted', async () => {
    const iterated = new SpoolBody(path, content.length, CHUNK);
    const kept: Buffer[] = [];
    for await (const chunk of iterated) kept.push(chunk as Buffer);
    expect(sha256(Buffer.concat(kept))).toBe(sha256(content));
    expect(iterated.chunks.reused).toBe(0);

    const piped = new SpoolBody(path, content.length, CHUNK);
    const through = new PassThrough();
    const collected: Buffer[] = [];
    through.on('data', (chunk: Buffer) => collected.push(chunk));
    await pipeline(piped, through);
    expect(sha256(Buffer.concat(collected))).toBe(sha256(content));
    expect(piped.chunks.reused).toBe(0);
  });

  it('stops at the sealed length', async () => {
    const body = new SpoolBody(path, 1000, CHUNK);
    const kept: Buffer[] = [];
    for await (const chunk of body) kept.push(chunk as Buffer);
    expect(Buffer.concat(kept)).toEqual(content.subarray(0, 1000));
  });

  it('fails when the file holds fewer bytes than sealed', async () => {
    const body = new SpoolBody(path, content.length + 10, CHUNK);
    await expect(async () => {
      for await (const chunk of body) void chunk;
    }).rejects.toThrow(`holds ${content.length} bytes, not the ${content.length + 10} sealed`);
  });

  it('closes the file when destroyed before the end', async () => {
    const openFiles = (): number => readdirSync('/proc/self/fd').length;
    const before = openFiles();
    const body = new SpoolBody(path, content.length, CHUNK);
    await new Promise<void>((resolve) => body.once('readable', () => resolve()));
    expect(openFiles()).toBe(before + 1);
    body.destroy();
    await new Promise((resolve) => body.once('close', resolve));
    expect(openFiles()).toBe(before);
  });
});
