/**
 * A loopback HTTP endpoint speaking just enough of the RDS Query protocol for tests that must go
 * through the real SDK stack (retries, deserialisation, middleware), which aws-sdk-client-mock
 * bypasses: each request's form parameters are recorded and answered by the test's function.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export const RDS_XMLNS = 'http://rds.amazonaws.com/doc/2014-10-31/';

export interface QueryAnswer {
  status: number;
  body: string | Buffer;
}

export interface QueryEndpoint {
  url: string;
  /** Every request's form parameters, in arrival order. */
  requests: URLSearchParams[];
  close(): Promise<void>;
}

/** An answer that never comes: the connection stays open and silent until the endpoint closes. */
export const NO_ANSWER = 'no-answer';

export async function startQueryEndpoint(answer: (params: URLSearchParams) => QueryAnswer | typeof NO_ANSWER): Promise<QueryEndpoint> {
  const requests: URLSearchParams[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const params = new URLSearchParams(Buffer.concat(chunks).toString());
      requests.push(params);
      const reply = answer(params);
      if (reply === NO_ANSWER) return;
      response.writeHead(reply.status, { 'content-type': 'text/xml' });
      response.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** An RDS error response (`Sender` faults are the caller's, `Receiver` faults the service's). */
export function rdsErrorXml(code: string, message: string, type: 'Sender' | 'Receiver' = 'Sender'): string {
  return (
    `<ErrorResponse xmlns="${RDS_XMLNS}"><Error><Type>${type}</Type><Code>${code}</Code>` +
    `<Message>${message}</Message></Error><RequestId>req-error</RequestId></ErrorResponse>`
  );
}

export const THROTTLING_XML = rdsErrorXml('Throttling', 'Rate exceeded');

/**
 * A DownloadDBLogFilePortion response around `logFileDataElement` (written as the test wants it:
 * escaped, CDATA, attributes...), with XML declaration and line breaks between elements as RDS sends.
 */
export function portionResponseXml(
  logFileDataElement: string,
  options: { marker?: string; additionalDataPending?: boolean; markerFirst?: boolean } = {},
): string {
  const rest =
    `<AdditionalDataPending>${options.additionalDataPending ?? true}</AdditionalDataPending>` +
    `<Marker>${options.marker ?? '3:1048576'}</Marker>`;
  const result = options.markerFirst ? `${rest}${logFileDataElement}` : `${logFileDataElement}${rest}`;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<DownloadDBLogFilePortionResponse xmlns="${RDS_XMLNS}">\n  ` +
    `<DownloadDBLogFilePortionResult>${result}</DownloadDBLogFilePortionResult>\n  ` +
    `<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>\n</DownloadDBLogFilePortionResponse>\n`
  );
}
