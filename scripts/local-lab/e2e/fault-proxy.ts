/**
 * A loopback HTTP proxy the fault suite puts between one function and a service (through the standard
 * AWS_ENDPOINT_URL_<SERVICE> setting, never a switch in handler code). It decides per request whether
 * to pass it on, and can make the caller die or fail at an exact point of its protocol: before a
 * request reaches the service (the service never sees it) or after the service applied it (the caller
 * never learns it did) — the two sides of every crash window.
 */
import { createServer, IncomingHttpHeaders, IncomingMessage, request as httpRequest, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { LOOPBACK } from '../net';
import { RDS_XML_NAMESPACE } from '../rds-endpoint';

export interface InterceptedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface ErrorAnswer {
  status: number;
  contentType: string;
  body: string;
}

export type Interception =
  /** Pass it on and return the answer. */
  | { action: 'forward' }
  /** Never pass it on: run `afterwards` (e.g. kill the caller), then drop the connection. */
  | { action: 'drop'; afterwards?: () => Promise<void> }
  /** Pass it on (the service applies it), run `afterwards`, then drop the connection instead of answering. */
  | { action: 'forward-then-drop'; afterwards?: () => Promise<void> }
  /** Pass it on (the service applies it), then answer this error instead of the service's answer. */
  | { action: 'forward-then-fail'; answer: ErrorAnswer }
  /** Never pass it on; answer this error. */
  | { action: 'fail'; answer: ErrorAnswer };

export type Interceptor = (request: InterceptedRequest) => Interception | Promise<Interception>;

interface UpstreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

export class FaultProxy {
  /** Requests seen, by interception applied. */
  readonly counts: Record<Interception['action'], number> = {
    forward: 0,
    drop: 0,
    'forward-then-drop': 0,
    'forward-then-fail': 0,
    fail: 0,
  };
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /**
   * @param target the service's base URL, read per request (the service may start after the proxy)
   */
  static async start(target: () => string, intercept: Interceptor): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer((request, response) => {
      void proxy?.handle(request, response, target(), intercept).catch((error: unknown) => {
        if (!response.headersSent) {
          response.writeHead(502, { 'content-type': 'text/plain' });
          response.end(`fault proxy: ${String(error)}`);
        } else {
          response.destroy();
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    proxy = new FaultProxy(server, `http://${LOOPBACK}:${port}`);
    return proxy;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse, target: string, intercept: Interceptor): Promise<void> {
    const intercepted: InterceptedRequest = {
      method: request.method ?? 'GET',
      url: request.url ?? '/',
      headers: request.headers,
      body: await readAll(request),
    };
    const interception = await intercept(intercepted);
    this.counts[interception.action] += 1;
    switch (interception.action) {
      case 'forward': {
        const answer = await this.forward(intercepted, target);
        response.writeHead(answer.status, answer.headers);
        response.end(answer.body);
        return;
      }
      case 'drop':
        await interception.afterwards?.();
        response.destroy();
        return;
      case 'forward-then-drop':
        await this.forward(intercepted, target);
        await interception.afterwards?.();
        response.destroy();
        return;
      case 'forward-then-fail':
        await this.forward(intercepted, target);
        this.answer(response, interception.answer);
        return;
      case 'fail':
        this.answer(response, interception.answer);
        return;
    }
  }

  private answer(response: ServerResponse, answer: ErrorAnswer): void {
    response.writeHead(answer.status, { 'content-type': answer.contentType, 'content-length': Buffer.byteLength(answer.body) });
    response.end(answer.body);
  }

  private forward(intercepted: InterceptedRequest, target: string): Promise<UpstreamAnswer> {
    const base = new URL(target);
    return new Promise((resolve, reject) => {
      const upstream = httpRequest(
        {
          host: base.hostname,
          port: base.port,
          method: intercepted.method,
          path: intercepted.url,
          // Signatures are not checked by the local services; the host header stays as signed.
          headers: intercepted.headers,
        },
        (answer) => {
          readAll(answer).then(
            (body) => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body }),
            reject,
          );
        },
      );
      upstream.on('error', reject);
      upstream.end(intercepted.body);
    });
  }
}

/** The RDS Query-protocol action of a form-encoded request body. */
export function rdsAction(request: InterceptedRequest): string | undefined {
  return new URLSearchParams(request.body.toString('utf8')).get('Action') ?? undefined;
}

/** An RDS Query-protocol error answer (what the SDK parses into a named, non-retryable error). */
export function rdsErrorAnswer(code: string, message: string, status = 400): ErrorAnswer {
  return {
    status,
    contentType: 'text/xml',
    body:
      `<ErrorResponse xmlns="${RDS_XML_NAMESPACE}"><Error><Type>Sender</Type>` +
      `<Code>${code}</Code><Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`,
  };
}

/** An S3 REST error answer. */
export function s3ErrorAnswer(code: string, message: string, status = 400): ErrorAnswer {
  return {
    status,
    contentType: 'application/xml',
    body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`,
  };
}
