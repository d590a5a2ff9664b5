/**
 * A fast path for the one large field the pipeline reads: `LogFileData` of DownloadDBLogFilePortion.
 *
 * The AWS SDK's XML parser builds escaped element text one character at a time (`text += x[i++]`),
 * which for a 1 MB page costs ~150 ms of CPU and leaves a rope of a million string pieces for the
 * garbage collector — the downloader's memory growth and most of its CPU time. RDS sends log text
 * escaped, not in CDATA, so every page takes that path.
 *
 * The plugin decodes `LogFileData` from the response bytes in one pass and hands the SDK the same
 * document with that element emptied; the SDK still parses everything else (Marker,
 * AdditionalDataPending, metadata, every error response). The decoded bytes go on its output, where
 * `logFileDataBytes` hands them over as they are (no UTF-8 string and re-encoding of each page, the
 * rest of the garbage per page) and `LogFileData` turns them into the SDK's string when read. The
 * result is exactly what the SDK alone would return (a parity test holds it to that); anything the
 * fast path does not fully understand — attributes, child elements, unknown entities, character
 * references outside the BMP — is left to the SDK untouched.
 *
 * A page's bytes are decoded into a buffer of their own. A consumer that is done with a page can hand
 * that buffer back (`releaseLogFileData`) for the next pages: the downloader does, after spooling each
 * page, so it allocates no page-sized buffer per call. That matters more than the bytes suggest: a new
 * ~1 MB buffer per page that lives while the page is spooled is promoted to V8's old generation, and
 * freeing those took a full mark-compact every few pages (tens per 256 MB, about a third of the
 * reading's CPU time). With the downloader's small young generation (its NODE_OPTIONS) reuse removes
 * nearly all of them. A page never released is simply left to the garbage collector, so consumers that
 * keep pages need do nothing.
 */
import { isUtf8 } from 'node:buffer';
import type {
  DeserializeMiddleware,
  HandlerExecutionContext,
  HttpResponse,
  InitializeMiddleware,
  MetadataBearer,
  Pluggable,
} from '@smithy/types';

const ELEMENT = 'LogFileData';
const COMMAND_NAME = 'DownloadDBLogFilePortionCommand';

const LT = 0x3c; // <
const AMP = 0x26; // &
const CR = 0x0d;
const LF = 0x0a;

/** XML's five named references, matched byte-wise (an escaped page is full of them). */
const NAMED_REFERENCES: ReadonlyArray<readonly [string, number]> = [
  ['&amp;', 0x26],
  ['&lt;', 0x3c],
  ['&gt;', 0x3e],
  ['&quot;', 0x22],
  ['&apos;', 0x27],
];

export interface DecodedLogFileData {
  /** The element's text as the SDK would return it, UTF-8 encoded. */
  data: Buffer;
  /** The response body with the element's content removed (`<LogFileData></LogFileData>`). */
  remainder: Buffer;
}

function startsWithAt(body: Buffer, at: number, ascii: string): boolean {
  if (at + ascii.length > body.length) return false;
  for (let k = 0; k < ascii.length; k++) if (body[at + k] !== ascii.charCodeAt(k)) return false;
  return true;
}

/** Index just past `terminator` found from `from`, or -1. */
function skipPast(body: Buffer, from: number, terminator: string): number {
  const at = body.indexOf(terminator, from, 'latin1');
  return at === -1 ? -1 : at + terminator.length;
}

function isNameEnd(byte: number | undefined): boolean {
  return byte === undefined || byte === 0x20 || byte === 0x09 || byte === CR || byte === LF || byte === 0x3e || byte === 0x2f;
}

/**
 * Index just past the `>` of the first `<LogFileData>` start tag (outside comments, CDATA and
 * processing instructions), or -1 when there is none or it is one the fast path leaves to the SDK
 * (attributes, self-closing, a DOCTYPE before it).
 */
function contentStart(body: Buffer): number {
  for (let at = body.indexOf(LT); at !== -1; at = body.indexOf(LT, at)) {
    if (startsWithAt(body, at, '<![CDATA[')) at = skipPast(body, at + 9, ']]>');
    else if (startsWithAt(body, at, '<!--')) at = skipPast(body, at + 4, '-->');
    else if (startsWithAt(body, at, '<?')) at = skipPast(body, at + 2, '?>');
    else if (startsWithAt(body, at, '<!')) return -1;
    else if (startsWithAt(body, at + 1, ELEMENT) && isNameEnd(body[at + 1 + ELEMENT.length])) {
      const afterName = at + 1 + ELEMENT.length;
      return body[afterName] === 0x3e ? afterName + 1 : -1;
    } else at++;
    if (at === -1) return -1;
  }
  return -1;
}

/**
 * Where the last reference decoded by `reference` ended (the index after its `;`). A module variable
 * rather than a returned object or packed number: a page holds tens of thousands of references, and
 * either of those would be a heap allocation per reference.
 */
let referenceEnd = 0;

/**
 * The code unit of the reference starting at `at` (on the `&`), with its end in `referenceEnd` —
 * or -1 for anything the fast path leaves to the SDK (any other entity name included).
 */
function reference(body: Buffer, at: number): number {
  for (const [entity, code] of NAMED_REFERENCES) {
    if (startsWithAt(body, at, entity)) {
      referenceEnd = at + entity.length;
      return code;
    }
  }
  const semicolon = body.indexOf(0x3b, at + 1);
  // `&#x` or `&#` with at most 6 hex or 7 decimal digits, as the SDK's parser reads them.
  if (semicolon === -1 || semicolon - at > 10) return -1;
  const name = body.toString('latin1', at + 1, semicolon);
  let code: number;
  if (/^#x[0-9a-fA-F]{1,6}$/.test(name)) code = parseInt(name.slice(2), 16);
  else if (/^#[0-9]{1,7}$/.test(name)) code = parseInt(name.slice(1), 10);
  else return -1;
  // Surrogates only make a character together with a neighbour, which byte-wise decoding cannot see.
  if (code > 0xffff || (code >= 0xd800 && code <= 0xdfff)) return -1;
  referenceEnd = semicolon + 1;
  return code;
}

const ASCII_WHITESPACE: ReadonlySet<number> = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]);

/**
 * The decoded bytes adjusted as the SDK's string would be: it decodes the body as UTF-8 (invalid
 * sequences become U+FFFD) and drops element text that is only whitespace with a line break in it.
 * Both checks stop at the first byte of an ordinary page.
 */
function asSdkReturnsIt(data: Buffer): Buffer {
  const valid = isUtf8(data) ? data : Buffer.from(data.toString('utf8'), 'utf8');
  if (valid.some((byte) => byte < 0x80 && !ASCII_WHITESPACE.has(byte))) return valid;
  const text = valid.toString('utf8');
  return text.trim() === '' && text.includes('\n') ? Buffer.alloc(0) : valid;
}

/**
 * Decodes `LogFileData` from a DownloadDBLogFilePortion response body, or returns undefined when the
 * body holds no such element or one the fast path leaves to the SDK.
 */
export function decodeLogFileData(
  body: Buffer,
  allocate: (bytes: number) => Buffer = Buffer.allocUnsafe,
): DecodedLogFileData | undefined {
  const start = contentStart(body);
  if (start === -1) return undefined;
  // Decoding only ever shrinks: references are longer than the bytes they stand for, CRLF becomes LF.
  const out = allocate(body.length - start);
  let written = 0;
  const copy = (from: number, to: number): void => {
    // Buffer#copy makes a view object per call: short runs (between references) go byte by byte.
    if (to - from > 64) {
      written += body.copy(out, written, from, to);
      return;
    }
    for (let k = from; k < to; k++) out[written++] = body[k] as number;
  };
  // The next CR at or after the copy position, found once and reused: searching afresh on every copy
  // would scan to the end of a page without CRs for each reference in it.
  let nextCr = -2;
  const crFrom = (from: number): number => {
    if (nextCr !== -1 && nextCr < from) nextCr = body.indexOf(CR, from);
    return nextCr;
  };
  /** Copies [from, to) turning CRLF and lone CR into LF, as XML line-end handling does. */
  const copyNormalizingLineEnds = (from: number, to: number): void => {
    let at = from;
    for (let cr = crFrom(at); cr !== -1 && cr < to; cr = crFrom(at)) {
      copy(at, cr);
      out[written++] = LF;
      at = body[cr + 1] === LF && cr + 1 < to ? cr + 2 : cr + 1;
    }
    copy(at, to);
  };
  const appendCode = (code: number): void => {
    if (code < 0x80) out[written++] = code;
    else written += out.write(String.fromCharCode(code), written, 'utf8');
  };

  let at = start;
  for (;;) {
    const lt = body.indexOf(LT, at);
    if (lt === -1) return undefined;
    // Text up to the next tag: plain runs copied, references decoded.
    for (let amp = body.indexOf(AMP, at); amp !== -1 && amp < lt; amp = body.indexOf(AMP, at)) {
      copyNormalizingLineEnds(at, amp);
      const code = reference(body, amp);
      if (code === -1 || referenceEnd > lt) return undefined;
      appendCode(code);
      at = referenceEnd;
    }
    copyNormalizingLineEnds(at, lt);
    if (startsWithAt(body, lt, '<![CDATA[')) {
      const end = body.indexOf(']]>', lt + 9, 'latin1');
      if (end === -1) return undefined;
      copyNormalizingLineEnds(lt + 9, end);
      at = end + 3;
    } else if (startsWithAt(body, lt, '<!--')) {
      at = skipPast(body, lt + 4, '-->');
      if (at === -1) return undefined;
    } else if (startsWithAt(body, lt, `</${ELEMENT}>`)) {
      const remainder = Buffer.concat([body.subarray(0, start), body.subarray(lt)]);
      return { data: asSdkReturnsIt(out.subarray(0, written)), remainder };
    } else {
      return undefined;
    }
  }
}

/**
 * Where the decoded bytes wait between the two middlewares: the SDK's execution context, one per call
 * and shared by its attempts (each attempt sets or clears them, so the last attempt's count).
 */
const DECODED = 'auditLogBackupDecodedLogFileData';
type Scratch = HandlerExecutionContext & { [DECODED]?: DecodedPage };

/** A decoded page and, when its bytes lie in a pool buffer, that buffer's loan. */
interface DecodedPage {
  data: Buffer;
  loan?: PageBufferLoan;
}

/** A pool buffer lent to one page until its consumer releases the page. */
interface PageBufferLoan {
  buffer: Buffer;
  released: boolean;
}

/**
 * Buffers of released pages, kept for the next pages. Only a buffer whose page was released (its
 * consumer said it is done with the bytes) is ever handed out again, so concurrent calls never share
 * one. Sizes are rounded up to a power of two so that one buffer fits the pages of varying length that
 * follow it.
 */
class PageBufferPool {
  /** A reader needs one buffer per page in flight; more kept would only be memory nobody uses. */
  private static readonly MAX_KEPT = 2;
  private static readonly MIN_BYTES = 64 * 1024;
  private readonly kept: Buffer[] = [];

  take(bytes: number): Buffer {
    const fitting = this.kept.findIndex((buffer) => buffer.length >= bytes);
    if (fitting !== -1) return this.kept.splice(fitting, 1)[0] as Buffer;
    let size = PageBufferPool.MIN_BYTES;
    while (size < bytes) size *= 2;
    return Buffer.allocUnsafe(size);
  }

  give(buffer: Buffer): void {
    if (this.kept.length < PageBufferPool.MAX_KEPT) this.kept.push(buffer);
  }
}

const pagePool = new PageBufferPool();

/** Where the bytes travel on the output, out of sight of code that only knows the SDK's shape. */
const BYTES = Symbol('logFileDataBytes');
const LOAN = Symbol('logFileDataLoan');
type PortionOutput = { LogFileData?: string; [BYTES]?: Buffer; [LOAN]?: PageBufferLoan };

function useAfterRelease(): Error {
  return new Error('LogFileData was read after releaseLogFileData handed its page buffer back for reuse');
}

/**
 * The page's LogFileData as UTF-8 bytes: those the fast path decoded, or the SDK's string encoded
 * (when the fast path left the response to the SDK, or the client does not have it). Valid until the
 * page is released.
 */
export function logFileDataBytes(output: { LogFileData?: string }): Buffer {
  const portion = output as PortionOutput;
  if (portion[LOAN]?.released) throw useAfterRelease();
  return portion[BYTES] ?? Buffer.from(output.LogFileData ?? '', 'utf8');
}

/**
 * Says the consumer is done with the page's bytes: their buffer may hold a later page from now on, so
 * neither `logFileDataBytes` nor a `LogFileData` not read before may be used on this output again
 * (both throw). Repeatable; a no-op for outputs the fast path did not decode.
 */
export function releaseLogFileData(output: { LogFileData?: string }): void {
  const loan = (output as PortionOutput)[LOAN];
  if (!loan || loan.released) return;
  loan.released = true;
  pagePool.give(loan.buffer);
}

async function bodyChunks(body: unknown): Promise<Buffer[] | undefined> {
  if (body instanceof Uint8Array) return [Buffer.from(body.buffer, body.byteOffset, body.byteLength)];
  if (typeof (body as AsyncIterable<Uint8Array> | undefined)?.[Symbol.asyncIterator] !== 'function') return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return chunks;
}

/**
 * One body buffer reused by every response: a page's bytes are copied in, decoded and let go in one
 * synchronous step, so concurrent calls cannot share it mid-use; only the decoded page is new.
 */
let scratch = Buffer.alloc(0);

function joined(chunks: Buffer[]): Buffer {
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  if (scratch.length < length) scratch = Buffer.allocUnsafe(Math.max(length, 2 * scratch.length));
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(scratch, at);
  return scratch.subarray(0, length);
}

/**
 * Innermost, next to the HTTP handler: decodes a successful response's `LogFileData` before the SDK's
 * deserializer sees the body, and hands the deserializer the body without it.
 */
const decodeBeforeDeserializer: DeserializeMiddleware<object, MetadataBearer> = (next, context) => async (args) => {
  const result = await next(args);
  const scratchSpace = context as Scratch;
  delete scratchSpace[DECODED];
  if (context.commandName !== COMMAND_NAME) return result;
  const response = result.response as HttpResponse;
  if (response.statusCode >= 300) return result;
  const chunks = await bodyChunks(response.body);
  if (chunks === undefined) return result;
  const body = joined(chunks);
  let taken: Buffer | undefined;
  const decoded = decodeLogFileData(body, (bytes) => (taken = pagePool.take(bytes)));
  // The page keeps its pool buffer only if its bytes lie in it (a fallback or an adjusted page does not).
  const lent = decoded && taken && decoded.data.buffer === taken.buffer ? taken : undefined;
  if (taken && !lent) pagePool.give(taken);
  // The SDK reads the body after this returns: never hand it the shared buffer.
  response.body = decoded ? decoded.remainder : Buffer.from(body);
  if (decoded) scratchSpace[DECODED] = { data: decoded.data, ...(lent ? { loan: { buffer: lent, released: false } } : {}) };
  return result;
};

/** Outermost: puts the decoded bytes on the SDK's output, with the string made from them on demand. */
const restoreOnOutput: InitializeMiddleware<object, MetadataBearer> = (next, context) => async (args) => {
  const result = await next(args);
  const decoded = (context as Scratch)[DECODED];
  if (decoded === undefined) return result;
  const { data, loan } = decoded;
  let text: string | undefined;
  Object.defineProperty(result.output, BYTES, { value: data, enumerable: false });
  if (loan) Object.defineProperty(result.output, LOAN, { value: loan, enumerable: false });
  Object.defineProperty(result.output, 'LogFileData', {
    get: () => {
      if (text === undefined && loan?.released) throw useAfterRelease();
      return (text ??= data.toString('utf8'));
    },
    enumerable: true,
    configurable: true,
  });
  return result;
};

/** Apply to an RDS client: `client.middlewareStack.use(logPortionFastPath)`. */
export const logPortionFastPath: Pluggable<object, MetadataBearer> = {
  applyToStack(stack) {
    stack.add(decodeBeforeDeserializer, { step: 'deserialize', priority: 'low', name: 'logPortionDecodeMiddleware' });
    stack.add(restoreOnOutput, { step: 'initialize', priority: 'high', name: 'logPortionRestoreMiddleware' });
  },
};
