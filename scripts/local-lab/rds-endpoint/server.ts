/**
 * The local RDS log endpoint: an HTTP server on loopback that answers the five RDS Query-protocol
 * actions the backup pipeline calls, serving MariaDB audit directories (or fixture directories) as
 * Aurora MySQL instances, with switchable faults and counters. README.md in this folder documents the
 * behaviour; `startRdsLogEndpoint` is the in-process API, cli.ts the command line.
 */
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { seededRandom } from '../seeded-random';
import { checkOptions, ConfigError, parseFaults } from './config';
import { LogFileCatalog } from './log-files';
import { Page, readForwardPage, readTailPage } from './log-pages';
import {
  el,
  elCdata,
  errorBody,
  invalidParameter,
  list,
  notFoundLogFile,
  QueryParams,
  RdsApiError,
  successBody,
  Xml,
} from './query-protocol';
import { paginate, RdsModel, readMaxRecords } from './rds-model';
import { decodeLogMarker, encodeLogMarker } from './tokens';
import {
  DEFAULT_PAGE_LIMIT_BYTES,
  EndpointStats,
  Faults,
  TAIL_PAGE_LINES,
  NO_FAULTS,
  perFileKey,
  RDS_ACTIONS,
  RdsAction,
  RdsLogEndpointOptions,
  ServedFileInfo,
} from './types';

export interface RdsLogEndpoint {
  /** `http://127.0.0.1:{port}`: set it as AWS_ENDPOINT_URL_RDS (or the client's `endpoint`). */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
  faults(): Faults;
  /** Changes the given fault fields (validated as the admin API does) and returns all faults. */
  setFaults(change: Partial<Faults>): Faults;
  resetFaults(): Faults;
  hideFile(instanceId: string, logFileName: string): void;
  unhideFile(instanceId: string, logFileName: string): void;
  stats(): EndpointStats;
  resetStats(): void;
  /** Every file the endpoint maps, vanished ones included, with its current path. */
  files(): Promise<ServedFileInfo[]>;
}

/** Admin routes live under this path; every other request is an RDS API call. */
export const ADMIN_PATH_PREFIX = '/__admin/';

/** DescribeDBLogFiles MaxRecords (RDS documents no bounds; 1000 is what it returns by default). */
const LOG_FILES_MAX_RECORDS = { min: 1, max: 1000, default: 1000 } as const;
const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

function emptyStats(): EndpointStats {
  return {
    calls: {},
    errors: {},
    throttled: 0,
    bytesServed: 0,
    downloadPages: 0,
    downloadServiceMs: 0,
    truncatedPages: 0,
    unrepresentablePages: 0,
    invalidUtf8Pages: 0,
    perFile: {},
  };
}

const isRdsAction = (action: string): action is RdsAction => (RDS_ACTIONS as readonly string[]).includes(action);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    request.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > MAX_REQUEST_BODY_BYTES) {
        reject(new RdsApiError(413, 'RequestEntityTooLarge', 'Request body too large'));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function send(response: ServerResponse, status: number, contentType: string, body: string, requestId?: string): void {
  const headers: Record<string, string | number> = {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
  };
  if (requestId) headers['x-amzn-requestid'] = requestId;
  response.writeHead(status, headers);
  response.end(body);
}


export async function startRdsLogEndpoint(options: RdsLogEndpointOptions): Promise<RdsLogEndpoint> {
  checkOptions(options);
  const model = new RdsModel(options);
  const catalog = await LogFileCatalog.create(
    new Map(options.clusters.flatMap((cluster) => cluster.instances).map((instance) => [instance.id, instance.logs])),
    { stateFile: options.stateFile, retainDir: options.retainDir },
  );

  let faults: Faults = structuredClone(NO_FAULTS);
  let throttleRandom = seededRandom(0);
  let truncateRandom = seededRandom(0);
  const reseed = (): void => {
    // Two streams: how often pages are truncated does not shift which calls are throttled.
    throttleRandom = seededRandom(faults.seed);
    truncateRandom = seededRandom(faults.seed ^ 0x9e3779b9);
  };
  reseed();
  let stats = emptyStats();

  function setFaults(change: Partial<Faults>): Faults {
    const checked = parseFaults(change);
    faults = { ...faults, ...checked };
    if (checked.seed !== undefined) reseed();
    return structuredClone(faults);
  }
  if (options.faults) setFaults(options.faults);

  const isHidden = (instanceId: string, logFileName: string): boolean =>
    faults.hiddenFiles.some((file) => file.DBInstanceIdentifier === instanceId && file.LogFileName === logFileName);

  const countError = (code: string): void => {
    stats.errors[code] = (stats.errors[code] ?? 0) + 1;
  };

  async function describeDBLogFiles(params: QueryParams): Promise<Xml> {
    const instance = model.instance(params.requiredString('DBInstanceIdentifier'));
    const contains = params.optionalString('FilenameContains');
    const writtenSince = params.optionalInteger('FileLastWritten');
    const largerThan = params.optionalInteger('FileSize');
    const maxRecords = readMaxRecords(params, LOG_FILES_MAX_RECORDS);
    const files = (await catalog.list(instance.id)).filter(
      (file) =>
        !isHidden(instance.id, file.name) &&
        (contains === undefined || file.name.includes(contains)) &&
        (writtenSince === undefined || file.lastWritten >= writtenSince) &&
        (largerThan === undefined || file.size > largerThan),
    );
    const { page, nextMarker } = paginate(
      files,
      (file) => file.name,
      `DescribeDBLogFiles\u0000${instance.id}`,
      params.optionalString('Marker'),
      maxRecords,
    );
    const details = page.map(
      (file) => el('LogFileName', file.name) + el('LastWritten', file.lastWritten) + el('Size', file.size),
    );
    return list('DescribeDBLogFiles', 'DescribeDBLogFilesDetails', details) + el('Marker', nextMarker);
  }

  async function downloadDBLogFilePortion(params: QueryParams): Promise<Xml> {
    const instance = model.instance(params.requiredString('DBInstanceIdentifier'));
    const name = params.requiredString('LogFileName');
    const marker = params.optionalString('Marker');
    const numberOfLines = params.optionalInteger('NumberOfLines');
    if (numberOfLines !== undefined && numberOfLines < 1) {
      throw invalidParameter(`NumberOfLines must be at least 1; got ${numberOfLines}`);
    }
    const maxLines = numberOfLines ?? (marker === undefined ? TAIL_PAGE_LINES : Number.POSITIVE_INFINITY);
    if (isHidden(instance.id, name)) throw notFoundLogFile(name);

    const { handle, size } = await catalog.open(instance.id, name);
    let page: Page;
    try {
      const pageLimit = faults.pageLimitBytes ?? options.pageLimitBytes ?? DEFAULT_PAGE_LIMIT_BYTES;
      if (marker === undefined) {
        page = await readTailPage(handle, { size, maxLines, pageLimit });
      } else {
        const offset = decodeLogMarker(instance.id, name, marker);
        if (offset > size) throw invalidParameter(`Marker '${marker}' is beyond the end of ${name}`);
        page = await readForwardPage(handle, {
          size,
          offset,
          maxLines,
          pageLimit,
          fillAndCut: () => faults.truncatePagesFraction > 0 && truncateRandom() < faults.truncatePagesFraction,
        });
      }
    } finally {
      await handle.close();
    }

    let text: string;
    if (isUtf8(page.data)) {
      text = page.data.toString('utf8');
    } else {
      stats.invalidUtf8Pages++;
      if (options.invalidUtf8 !== 'replace') {
        throw new RdsApiError(
          400,
          'InvalidLogFileData',
          `${name}: the page ending at byte ${page.nextOffset} holds bytes that are not valid UTF-8 and cannot be carried in an XML answer`,
        );
      }
      text = page.data.toString('utf8');
    }
    if (text.length > 0 && text.includes('\n') && text.trim() === '') stats.unrepresentablePages++;

    const pending = page.nextOffset < size;
    const nextMarker =
      pending || faults.nonEmptyFinalMarker ? encodeLogMarker(instance.id, name, page.nextOffset) : undefined;

    const bytes = Buffer.byteLength(text, 'utf8');
    stats.bytesServed += bytes;
    stats.downloadPages++;
    if (page.truncated) stats.truncatedPages++;
    const perFile = (stats.perFile[perFileKey(instance.id, name)] ??= { calls: 0, bytesServed: 0 });
    perFile.calls++;
    perFile.bytesServed += bytes;

    const logFileData = options.logDataEncoding === 'cdata' ? elCdata('LogFileData', text) : el('LogFileData', text);
    return logFileData + el('AdditionalDataPending', pending) + el('Marker', nextMarker);
  }

  async function dispatch(action: RdsAction, params: QueryParams): Promise<Xml> {
    switch (action) {
      case 'DescribeDBInstances':
        return model.describeDBInstances(params);
      case 'DescribeDBClusters':
        return model.describeDBClusters(params);
      case 'DescribeDBClusterParameters':
        return model.describeDBClusterParameters(params);
      case 'DescribeDBLogFiles':
        return describeDBLogFiles(params);
      case 'DownloadDBLogFilePortion':
        return downloadDBLogFilePortion(params);
    }
  }

  async function handleRdsCall(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const arrived = performance.now();
    const requestId = randomUUID();
    try {
      const form = request.method === 'POST' ? new URLSearchParams(await readBody(request)) : url.searchParams;
      const params = new QueryParams(form);
      const action = params.action;
      if (!action) throw new RdsApiError(400, 'MissingAction', 'The request must contain the parameter Action');
      stats.calls[action] = (stats.calls[action] ?? 0) + 1;
      if (faults.latencyMs > 0) await sleep(faults.latencyMs);
      if (!isRdsAction(action)) {
        throw new RdsApiError(400, 'InvalidAction', `The action ${action} is not valid for this web service.`);
      }
      const throttles = faults.throttleActions.length === 0 || faults.throttleActions.includes(action);
      if (faults.throttleFraction > 0 && throttles && throttleRandom() < faults.throttleFraction) {
        stats.throttled++;
        throw new RdsApiError(400, 'Throttling', 'Rate exceeded');
      }
      const result = await dispatch(action, params);
      send(response, 200, 'text/xml', successBody(action, result, requestId), requestId);
      if (action === 'DownloadDBLogFilePortion') stats.downloadServiceMs += performance.now() - arrived;
    } catch (error) {
      if (error instanceof RdsApiError) {
        countError(error.code);
        send(response, error.httpStatus, 'text/xml', errorBody(error, requestId), requestId);
        return;
      }
      // Not the client's fault: answer 500 (the SDK surfaces it) and say so where the lab logs go.
      countError('InternalFailure');
      console.error(`rds-endpoint: request ${requestId} failed:`, error);
      const failure = new RdsApiError(500, 'InternalFailure', String(error), 'Receiver');
      send(response, 500, 'text/xml', errorBody(failure, requestId), requestId);
    }
  }

  async function handleAdmin(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const route = `${request.method} ${url.pathname.slice(ADMIN_PATH_PREFIX.length)}`;
    const json = (status: number, value: unknown) => send(response, status, 'application/json', JSON.stringify(value));
    try {
      switch (route) {
        case 'GET stats':
          return json(200, endpoint.stats());
        case 'POST stats/reset':
          endpoint.resetStats();
          return json(200, endpoint.stats());
        case 'GET faults':
          return json(200, endpoint.faults());
        case 'POST faults': {
          const body = await readBody(request);
          return json(200, setFaults(JSON.parse(body) as Partial<Faults>));
        }
        case 'POST faults/reset':
          return json(200, endpoint.resetFaults());
        case 'GET files':
          return json(200, await endpoint.files());
        default:
          return json(404, { error: `no admin route ${route}` });
      }
    } catch (error) {
      const clientError = error instanceof ConfigError || error instanceof SyntaxError;
      if (!clientError) console.error(`rds-endpoint: admin ${route} failed:`, error);
      return json(clientError ? 400 : 500, { error: String(error) });
    }
  }

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const handler = url.pathname.startsWith(ADMIN_PATH_PREFIX) ? handleAdmin : handleRdsCall;
    void handler(request, response, url);
  });
  // Longer than any client's idle keep-alive reuse, so a pooled socket is never closed under a request.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const endpoint: RdsLogEndpoint = {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        catalog.close();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
    faults: () => structuredClone(faults),
    setFaults,
    resetFaults: () => {
      faults = structuredClone(NO_FAULTS);
      reseed();
      return structuredClone(faults);
    },
    hideFile: (instanceId, logFileName) => {
      if (!isHidden(instanceId, logFileName)) {
        setFaults({ hiddenFiles: [...faults.hiddenFiles, { DBInstanceIdentifier: instanceId, LogFileName: logFileName }] });
      }
    },
    unhideFile: (instanceId, logFileName) => {
      setFaults({
        hiddenFiles: faults.hiddenFiles.filter(
          (file) => file.DBInstanceIdentifier !== instanceId || file.LogFileName !== logFileName,
        ),
      });
    },
    stats: () => structuredClone(stats),
    resetStats: () => {
      stats = emptyStats();
    },
    files: () => catalog.describeAll(isHidden),
  };
  return endpoint;
}
