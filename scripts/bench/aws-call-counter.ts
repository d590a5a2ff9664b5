/**
 * A counting HTTP proxy on loopback in front of the lab's AWS endpoint (moto_server). The handlers are
 * pointed at it through their standard AWS_ENDPOINT_URL, so every call they make to S3, DynamoDB and
 * SQS is counted by service, action and (DynamoDB) table before it is forwarded unchanged. moto keeps
 * no call counter of its own, and counting on the wire also sees calls that change nothing (a
 * conditional write that fails is still a write the table is billed for).
 */
import { createServer, IncomingHttpHeaders, Agent, request, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from '../local-lab/net';

export interface AwsCall {
  /** SigV4 signing name: `s3`, `dynamodb`, `sqs`, ... (`unsigned` when the request carries none). */
  service: string;
  /** `PutItem`, `SendMessage`, ... (X-Amz-Target); for S3 the REST operation, e.g. `PutObject`. */
  action: string;
  /** DynamoDB table the call names. */
  table?: string;
}

export interface CountedCall extends AwsCall {
  count: number;
}

/** DynamoDB actions that write (billed as writes even when a condition fails). */
export const DYNAMODB_WRITE_ACTIONS: ReadonlySet<string> = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchWriteItem',
  'TransactWriteItems',
  'ExecuteStatement',
  'BatchExecuteStatement',
  'ExecuteTransaction',
]);

const CREDENTIAL_SCOPE = /Credential=[^/,\s]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/;

function s3Action(method: string, url: string): string {
  const parsed = new URL(url, 'http://placeholder');
  // Path style (the lab's endpoints are IP addresses): /bucket or /bucket/key...
  const segments = parsed.pathname.split('/').filter(Boolean);
  const onObject = segments.length > 1;
  const query = parsed.searchParams;
  if (query.has('uploads')) return 'CreateMultipartUpload';
  if (query.has('uploadId')) return method === 'PUT' ? 'UploadPart' : method === 'POST' ? 'CompleteMultipartUpload' : `${method} multipart`;
  if (onObject) {
    const verbs: Record<string, string> = { PUT: 'PutObject', GET: 'GetObject', HEAD: 'HeadObject', DELETE: 'DeleteObject' };
    return verbs[method] ?? `${method} object`;
  }
  if (method === 'GET' && query.get('list-type') === '2') return 'ListObjectsV2';
  const verbs: Record<string, string> = { PUT: 'CreateBucket', GET: 'ListObjects', HEAD: 'HeadBucket', DELETE: 'DeleteBucket', POST: 'DeleteObjects' };
  return verbs[method] ?? `${method} bucket`;
}

/** Service and action of a request from its headers and URL (the body is not needed). */
export function classifyAwsRequest(method: string, url: string, headers: IncomingHttpHeaders): AwsCall {
  const authorization = headers.authorization ?? '';
  const service = CREDENTIAL_SCOPE.exec(authorization)?.[1] ?? 'unsigned';
  const target = headers['x-amz-target'];
  if (typeof target === 'string' && target.includes('.')) return { service, action: target.slice(target.lastIndexOf('.') + 1) };
  if (service === 's3') return { service, action: s3Action(method, url) };
  return { service, action: method };
}

const callKey = (call: AwsCall): string => `${call.service}\u0000${call.action}\u0000${call.table ?? ''}`;

export interface AwsCallCounter {
  url: string;
  /** Calls counted since the start or the last reset, sorted by service, action and table. */
  calls(): CountedCall[];
  /** Requests that could not be forwarded (the upstream refused or broke the connection). */
  forwardFailures(): number;
  reset(): void;
  close(): Promise<void>;
}

/** Starts the proxy on a free loopback port, forwarding to `upstreamUrl` (an http:// endpoint). */
export async function startAwsCallCounter(upstreamUrl: string): Promise<AwsCallCounter> {
  const upstream = new URL(upstreamUrl);
  if (upstream.protocol !== 'http:') throw new Error(`the call counter forwards to http:// endpoints only, not ${upstreamUrl}`);
  const agent = new Agent({ keepAlive: true });
  const counts = new Map<string, CountedCall>();
  let failures = 0;

  const count = (call: AwsCall): void => {
    const key = callKey(call);
    const current = counts.get(key);
    if (current) current.count += 1;
    else counts.set(key, { ...call, count: 1 });
  };

  const server: Server = createServer((incoming, outgoing) => {
    const call = classifyAwsRequest(incoming.method ?? 'GET', incoming.url ?? '/', incoming.headers);
    // Node answered any `Expect: 100-continue` already; the upstream gets the body without waiting.
    const { expect: _expect, ...headers } = incoming.headers;
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers, agent },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forward.on('error', (error) => {
      failures += 1;
      if (!outgoing.headersSent) outgoing.writeHead(502, { 'content-type': 'text/plain' });
      outgoing.end(`call counter could not reach ${upstreamUrl}: ${error.message}`);
    });
    if (call.service !== 'dynamodb') {
      count(call);
      incoming.pipe(forward);
      return;
    }
    // DynamoDB bodies are small JSON documents: read the table name, then forward the same bytes.
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      let table: string | undefined;
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { TableName?: unknown };
        if (typeof parsed.TableName === 'string') table = parsed.TableName;
      } catch {
        // Not JSON (or no body): the call is still counted, without a table.
      }
      count({ ...call, ...(table ? { table } : {}) });
      forward.end(body);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${LOOPBACK}:${port}`,
    calls: () =>
      [...counts.values()]
        .map((call) => ({ ...call }))
        .sort((a, b) => callKey(a).localeCompare(callKey(b))),
    forwardFailures: () => failures,
    reset: () => {
      counts.clear();
      failures = 0;
    },
    close: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
