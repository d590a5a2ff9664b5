/**
 * The LogFileData fast path against its oracle, the AWS SDK itself: the same response bytes, served
 * by a local HTTP endpoint, read by a plain RDS client and by one with the fast path, must give the
 * same output — for generated pages mixing every way XML can carry a character, and for everything
 * the fast path leaves to the SDK. Unit cases pin when the fast path engages.
 */
import { DownloadDBLogFilePortionCommand, RDSClient } from '@aws-sdk/client-rds';
import { rdsClient } from '../../lambda/shared/clients';
import { decodeLogFileData, logFileDataBytes, logPortionFastPath, releaseLogFileData } from '../../lambda/shared/log-portion-decoder';
import { seededRandom } from '../../scripts/local-lab/seeded-random';
import { portionResponseXml, type QueryAnswer, type QueryEndpoint, startQueryEndpoint, THROTTLING_XML } from './support/query-endpoint';

/** Answers are served in order. */
let answers: QueryAnswer[] = [];
let endpoint: QueryEndpoint;

beforeAll(async () => {
  endpoint = await startQueryEndpoint(() => answers.shift() ?? { status: 500, body: 'no scripted answer' });
  plain = client(false);
  fast = client(true);
});

afterAll(async () => {
  await endpoint.close();
});

function client(fastPath: boolean): RDSClient {
  const rds = new RDSClient({
    region: 'us-east-1',
    endpoint: endpoint.url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 3,
    retryMode: 'standard',
  });
  if (fastPath) rds.middlewareStack.use(logPortionFastPath);
  return rds;
}

let plain: RDSClient;
let fast: RDSClient;

async function read(rds: RDSClient, body: Buffer): Promise<Record<string, unknown>> {
  answers.push({ status: 200, body });
  const response = await rds.send(
    new DownloadDBLogFilePortionCommand({ DBInstanceIdentifier: 'db-1', LogFileName: 'audit/audit.log', Marker: '0' }),
  );
  const { $metadata, ...output } = response;
  // The bytes the pipeline takes (hex, so a difference shows), next to the string everyone else reads.
  return { ...output, bytes: logFileDataBytes(response).toString('hex'), httpStatusCode: $metadata.httpStatusCode, requestId: $metadata.requestId };
}

/** Both clients' outputs for the same bytes. */
async function bothRead(body: Buffer): Promise<{ sdk: unknown; fastPath: unknown }> {
  return { sdk: await read(plain, body), fastPath: await read(fast, body) };
}

const ALPHABET = [
  ...'abcXYZ019 ,\'"`\\=()', '&', '<', '>', '\n', '\r', '\r\n', '\t', ']]>', ']', 'é', '日本', '😀', '\u0001', '\u001f',
  '\uFFFD', '&amp;', '&lt;',
];

/** One character of log text, written the way `style` picks (escaped, a character reference, or raw). */
function encodeChar(c: string, style: number): string {
  const code = c.codePointAt(0) ?? 0;
  const characters = [...c];
  if (characters.length > 1) return characters.map((part) => encodeChar(part, style)).join('');
  if (code > 0xffff) return c; // astral characters travel raw (a reference would leave the fast path)
  if (style === 1) return `&#${code};`;
  if (style === 2) return `&#x${code.toString(16)};`;
  switch (c) {
    case '&':
      return '&amp;';
    case '<':
      return '&lt;';
    case '>':
      return style === 3 ? '>' : '&gt;';
    case '"':
      return style === 3 ? '&quot;' : '"';
    case "'":
      return style === 3 ? '&apos;' : "'";
    default:
      return c;
  }
}

/** A LogFileData element carrying `text` as a random mix of escaped runs, CDATA sections and comments. */
function generatedElement(next: () => number): string {
  const parts: string[] = [];
  const length = Math.floor(next() * 60);
  for (let k = 0; k < length; k++) {
    const roll = next();
    const piece = ALPHABET[Math.floor(next() * ALPHABET.length)] ?? 'a';
    if (roll < 0.12 && !piece.includes(']]>')) parts.push(`<![CDATA[${piece}]]>`);
    else if (roll < 0.14) parts.push('<!-- a comment -->');
    else parts.push(encodeChar(piece, Math.floor(next() * 4)));
  }
  return `<LogFileData>${parts.join('')}</LogFileData>`;
}

describe('decodeLogFileData', () => {
  it('decodes escaped text, references, CDATA and line ends, and empties the element in the remainder', () => {
    const body = Buffer.from(portionResponseXml("<LogFileData>a &amp; b &lt;c&gt; &#39;d&#x27;\r\ne\r<![CDATA[<x>\r\n]]>é</LogFileData>"));
    const decoded = decodeLogFileData(body);
    expect(decoded?.data.toString()).toBe("a & b <c> 'd'\ne\n<x>\né");
    expect(decoded?.remainder.toString()).toBe(portionResponseXml('<LogFileData></LogFileData>'));
  });

  it('finds the element after other fields and ignores a look-alike inside CDATA before it', () => {
    const body = Buffer.from(
      portionResponseXml('<LogFileData>x</LogFileData>', { markerFirst: true }).replace(
        '<AdditionalDataPending>',
        '<Note><![CDATA[<LogFileData>decoy</LogFileData>]]></Note><AdditionalDataPending>',
      ),
    );
    expect(decodeLogFileData(body)?.data.toString()).toBe('x');
  });

  it.each([
    ['attributes on the element', '<LogFileData lang="en">x</LogFileData>'],
    ['a self-closing element', '<LogFileData/>'],
    ['an unknown entity', '<LogFileData>a &nbsp; b</LogFileData>'],
    ['an entity named like an Object property', '<LogFileData>a &constructor; b</LogFileData>'],
    ['a bare ampersand', '<LogFileData>a & b</LogFileData>'],
    ['a reference outside the BMP', '<LogFileData>&#x1F600;</LogFileData>'],
    ['a surrogate pair as two references', '<LogFileData>&#55357;&#56832;</LogFileData>'],
    ['a child element', '<LogFileData>a<b>c</b></LogFileData>'],
    ['a closing tag with spaces', '<LogFileData>x</LogFileData >'],
    ['no LogFileData at all', ''],
  ])('leaves %s to the SDK', (_case, element) => {
    expect(decodeLogFileData(Buffer.from(portionResponseXml(element)))).toBeUndefined();
  });

  it('leaves a truncated document to the SDK', () => {
    expect(decodeLogFileData(Buffer.from('<DownloadDBLogFilePortionResult><LogFileData>abc'))).toBeUndefined();
  });
});

describe('the fast path returns what the SDK returns', () => {
  it.each(Array.from({ length: 150 }, (_, seed) => seed))('generated page, seed %i', async (seed) => {
    const next = seededRandom(seed);
    const body = Buffer.from(portionResponseXml(generatedElement(next), { markerFirst: next() < 0.3 }));
    expect(decodeLogFileData(body)).toBeDefined(); // parity of the fast path itself, not of its fallback
    const { sdk, fastPath } = await bothRead(body);
    expect(fastPath).toEqual(sdk);
  });

  it.each([
    ['whitespace with a line break (the SDK drops it)', '<LogFileData> \n\t</LogFileData>'],
    ['whitespace without a line break', '<LogFileData>  </LogFileData>'],
    ['an empty element', '<LogFileData></LogFileData>'],
    ['attributes', '<LogFileData lang="en">x &amp; y</LogFileData>'],
    ['an unknown entity', '<LogFileData>a &nbsp; b</LogFileData>'],
    ['a surrogate pair as two references', '<LogFileData>&#55357;&#56832;</LogFileData>'],
    ['a lone surrogate reference', '<LogFileData>a&#xD800;b</LogFileData>'],
    ['no LogFileData', ''],
  ])('%s', async (_case, element) => {
    const { sdk, fastPath } = await bothRead(Buffer.from(portionResponseXml(element)));
    expect(fastPath).toEqual(sdk);
  });

  it('bytes that are not UTF-8 come out as the same replacement characters', async () => {
    const body = Buffer.concat([
      Buffer.from(portionResponseXml('<LogFileData>@</LogFileData>').split('@')[0] ?? ''),
      Buffer.from([0x61, 0xe2, 0x82, 0x26, 0x61, 0x6d, 0x70, 0x3b, 0xc3, 0x0d, 0x0a, 0xff, 0x62]),
      Buffer.from(portionResponseXml('<LogFileData>@</LogFileData>').split('@')[1] ?? ''),
    ]);
    expect(decodeLogFileData(body)).toBeDefined();
    const { sdk, fastPath } = await bothRead(body);
    expect(fastPath).toEqual(sdk);
  });

  it('a 1 MB page of escaped audit lines', async () => {
    const line = "20261125 13:05:07,lab,sbtest,localhost,7,42,QUERY,sbtest,'SELECT c FROM t WHERE id<5 AND k>2 && x=\\'a\\'',0\n";
    const text = line.repeat(Math.floor(1_000_000 / line.length));
    const escaped = text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const body = Buffer.from(portionResponseXml(`<LogFileData>${escaped}</LogFileData>`));
    expect(decodeLogFileData(body)?.data.toString()).toBe(text);
    const { sdk, fastPath } = await bothRead(body);
    expect(fastPath).toEqual(sdk);
  });

  it('a throttled attempt then a good one: the error is the SDK\'s and the retry carries the data', async () => {
    answers.push({ status: 400, body: THROTTLING_XML });
    const output = (await read(fast, Buffer.from(portionResponseXml('<LogFileData>after &amp; retry</LogFileData>')))) as {
      LogFileData?: string;
    };
    expect(output.LogFileData).toBe('after & retry');
    expect(answers).toHaveLength(0);
  });

  it('error responses surface as the SDK\'s errors', async () => {
    answers.push(...Array.from({ length: 3 }, () => ({ status: 400, body: THROTTLING_XML })));
    await expect(
      fast.send(new DownloadDBLogFilePortionCommand({ DBInstanceIdentifier: 'db-1', LogFileName: 'f', Marker: '0' })),
    ).rejects.toMatchObject({ name: 'Throttling', message: 'Rate exceeded' });
    answers = [];
  });

  it('the pipeline\'s RDS client has the fast path', () => {
    expect(rdsClient().middlewareStack.identify().some((entry) => entry.startsWith('logPortionDecodeMiddleware'))).toBe(true);
  });
});

describe('page buffers handed back with releaseLogFileData', () => {
  async function page(text: string): Promise<{ LogFileData?: string }> {
    answers.push({ status: 200, body: Buffer.from(portionResponseXml(`<LogFileData>${text}</LogFileData>`)) });
    return fast.send(new DownloadDBLogFilePortionCommand({ DBInstanceIdentifier: 'db-1', LogFileName: 'f', Marker: '0' }));
  }

  it('pages that are not released never share memory: each keeps its bytes', async () => {
    const first = await page('first &amp; page');
    const second = await page('second &lt; page');
    expect(logFileDataBytes(first).buffer).not.toBe(logFileDataBytes(second).buffer);
    expect(logFileDataBytes(first).toString()).toBe('first & page');
    expect(first.LogFileData).toBe('first & page');
    expect(logFileDataBytes(second).toString()).toBe('second < page');
  });

  it('a released page\'s buffer takes a later page, which decodes correctly into it', async () => {
    const first = await page('one &amp; one');
    const firstBuffer = logFileDataBytes(first).buffer;
    releaseLogFileData(first);
    const second = await page('two &gt; two, a little longer');
    expect(logFileDataBytes(second).buffer).toBe(firstBuffer);
    expect(logFileDataBytes(second).toString()).toBe('two > two, a little longer');
    expect(second.LogFileData).toBe('two > two, a little longer');
    releaseLogFileData(second);
  });

  it('after release the bytes and an unread LogFileData throw instead of showing a later page', async () => {
    const readBefore = await page('kept &amp; text');
    expect(readBefore.LogFileData).toBe('kept & text');
    const unread = await page('never read');
    releaseLogFileData(readBefore);
    releaseLogFileData(unread);
    releaseLogFileData(unread); // repeatable
    expect(() => logFileDataBytes(unread)).toThrow(/after releaseLogFileData/);
    expect(() => unread.LogFileData).toThrow(/after releaseLogFileData/);
    expect(() => logFileDataBytes(readBefore)).toThrow(/after releaseLogFileData/);
    // The string made before the release is the SDK's ordinary string: it stays.
    expect(readBefore.LogFileData).toBe('kept & text');
  });

  it('a page too large for a kept buffer gets a new one, and the result is the same as the SDK\'s', async () => {
    const small = await page('small');
    releaseLogFileData(small);
    const text = 'x &lt; y\n'.repeat(20_000);
    const { sdk, fastPath } = await bothRead(Buffer.from(portionResponseXml(`<LogFileData>${text}</LogFileData>`)));
    expect(fastPath).toEqual(sdk);
  });

  it('outputs the fast path did not decode are unaffected by release', async () => {
    const output = { LogFileData: 'from a mocked client' };
    releaseLogFileData(output);
    expect(logFileDataBytes(output).toString()).toBe('from a mocked client');
  });
});
