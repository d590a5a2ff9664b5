/**
 * A counting HTTP proxy on loopback in front of the lab's AWS endpoint (moto_server). The lab is
 * pointed at it as its AWS endpoint, so every call to S3, DynamoDB and SQS is counted by caller,
 * service, action and (DynamoDB) table before it is forwarded unchanged. moto keeps no call counter of
 * its own, and counting on the wire also sees calls that change nothing (a conditional write that
 * fails is still a write the table is billed for).
 *
 * The caller comes from the SDK's standard User-Agent: the app id (`app/<id>`, AWS_SDK_UA_APP_ID) when
 * the process sets one, else `function` for a process with AWS_EXECUTION_ENV (`exec-env/...`, what
 * Lambda sets and the local Lambda service sets for the handlers), else `lab` (the runner's own polling
 * and checks). The queue URLs moto hands out name the host they were created through, so SQS calls,
 * which the SDK sends to the QueueUrl's host, come through the proxy too.
 */
import { createServer, IncomingHttpHeaders, Agent, request, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from '../local-lab/net';

export interface AwsCall {
  /** Who made the call: the SDK app id, else `function` (a Lambda-like environment), else `lab`. */
  caller: string;
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

function callerOf(headers: IncomingHttpHeaders): string {
  const agents = [headers['x-amz-user-agent'], headers['user-agent']].filter((value): value is string => typeof value === 'string').join(' ');
  const appId = /(?:^|\s)app\/(\S+)/.exec(agents)?.[1];
  if (appId) return appId;
  return /(?:^|\s)exec-env\//.test(agents) ? 'function' : 'lab';
}

/** Caller, service and action of a request from its headers and URL (the body is not needed). */
export function classifyAwsRequest(method: string, url: string, headers: IncomingHttpHeaders): AwsCall {
  const caller = callerOf(headers);
  const authorization = headers.authorization ?? '';
  const service = CREDENTIAL_SCOPE.exec(authorization)?.[1] ?? 'unsigned';
  const target = headers['x-amz-target'];
  if (typeof target === 'string' && target.includes('.')) return { caller, service, action: target.slice(target.lastIndexOf('.') + 1) };
  if (service === 's3') return { caller, service, action: s3Action(method, url) };
  return { caller, service, action: method };
}

const callKey = (call: AwsCall): string => [call.caller, call.service, call.action, call.table ?? ''].join('\u0000');

export interface AwsCallCounter {
  url: string;
  /** Calls counted since the start or the last reset, sorted by caller, service, action and table. */
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
