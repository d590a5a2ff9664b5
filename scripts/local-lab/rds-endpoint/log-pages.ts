/**
 * Cuts DownloadDBLogFilePortion pages out of a log file, reading only the bytes a page needs
 * (positioned reads, never the whole file), so a 1 GiB file is served like a small one.
 *
 * A line is the bytes up to and including LF; the bytes after the last LF form a final (partial) line.
 */
import type { FileHandle } from 'node:fs/promises';
import { TRUNCATION_SUFFIX } from './types';

const LF = 0x0a;
const SCAN_CHUNK_BYTES = 64 * 1024;
const TRUNCATION_BYTES = Buffer.from(TRUNCATION_SUFFIX, 'utf8');

export interface Page {
  /** The page's LogFileData bytes (file bytes, plus TRUNCATION_SUFFIX when `truncated`). */
  data: Buffer;
  /** File offset the next page starts at. */
  nextOffset: number;
  /** A line was cut and TRUNCATION_SUFFIX appended; its remaining bytes are skipped. */
  truncated: boolean;
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}

/** Offset just after the LF ending the line that contains `from`, or `size` when there is none. */
async function lineEndFrom(file: FileHandle, from: number, size: number): Promise<number> {
  for (let position = from; position < size; position += SCAN_CHUNK_BYTES) {
    const chunk = await readAt(file, position, Math.min(SCAN_CHUNK_BYTES, size - position));
    const lf = chunk.indexOf(LF);
    if (lf !== -1) return position + lf + 1;
  }
  return size;
}

/** Offset of the first byte of the line containing the byte at `before - 1`. */
async function lineStartBefore(file: FileHandle, before: number): Promise<number> {
  // The byte at before - 1 may be the line's own LF; the previous line ends at an earlier LF.
  let end = before - 1;
  while (end > 0) {
    const start = Math.max(0, end - SCAN_CHUNK_BYTES);
    const chunk = await readAt(file, start, end - start);
    const lf = chunk.lastIndexOf(LF);
    if (lf !== -1) return start + lf + 1;
    end = start;
  }
  return 0;
}

const isContinuationByte = (byte: number): boolean => (byte & 0xc0) === 0x80;

/** Largest cut length <= `room` that does not split a UTF-8 character of `bytes` (from `start`). */
function utf8CutLength(bytes: Buffer, start: number, room: number): number {
  let cut = Math.min(room, bytes.length - start);
  while (cut > 0 && start + cut < bytes.length && isContinuationByte(bytes[start + cut])) cut--;
  return cut;
}

/** Bytes at the end of `bytes[0, end)` that begin a UTF-8 character not yet complete. */
function incompleteUtf8Tail(bytes: Buffer, end: number): number {
  for (let back = 1; back <= Math.min(4, end); back++) {
    const byte = bytes[end - back];
    if (isContinuationByte(byte)) continue;
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? back : 0;
  }
  return 0;
}

function cutPage(head: Buffer, cut: Buffer, nextOffset: number): Page {
  return { data: Buffer.concat([head, cut, TRUNCATION_BYTES]), nextOffset, truncated: true };
}

export interface ForwardPageRequest {
  /** File size at request time: bytes beyond it are not served by this page. */
  size: number;
  offset: number;
  maxLines: number;
  pageLimit: number;
  /**
   * Asked only for a page that stopped at the limit while lines were still requested: true makes the
   * page fill up to the limit, cutting the line found there (RDS's behaviour); false stops before it.
   */
  fillAndCut: () => boolean;
}

/** The page starting at `offset`: whole lines, at most `maxLines` of them and `pageLimit` bytes. */
export async function readForwardPage(file: FileHandle, request: ForwardPageRequest): Promise<Page> {
  const { size, offset, maxLines, pageLimit } = request;
  const available = size - offset;
  if (available <= 0) return { data: Buffer.alloc(0), nextOffset: offset, truncated: false };
  const window = await readAt(file, offset, Math.min(available, pageLimit));
  const windowReachesEof = offset + window.length >= size;

  let end = 0;
  let lines = 0;
  while (lines < maxLines && end < window.length) {
    const lf = window.indexOf(LF, end);
    if (lf !== -1) end = lf + 1;
    else if (windowReachesEof) end = window.length;
    else break;
    lines++;
  }

  if (lines === 0) {
    // The first line alone exceeds the limit: RDS cuts it and skips the rest of the line.
    const cut = utf8CutLength(window, 0, pageLimit - TRUNCATION_BYTES.length);
    return cutPage(window.subarray(0, 0), window.subarray(0, cut), await lineEndFrom(file, offset + pageLimit, size));
  }

  const stoppedAtLimit = lines < maxLines && !windowReachesEof;
  if (stoppedAtLimit) {
    // RDS fills the page: the data is cut at the limit (less the suffix) inside whatever line is there.
    const cutAt = utf8CutLength(window, 0, pageLimit - TRUNCATION_BYTES.length);
    const cutLineStart = cutAt > 0 ? window.lastIndexOf(LF, cutAt - 1) + 1 : 0;
    // Only where a whole line precedes the cut, so re-reading with that many lines always succeeds.
    if (cutLineStart > 0 && cutLineStart < cutAt && request.fillAndCut()) {
      const lf = window.indexOf(LF, cutAt);
      const nextOffset = lf !== -1 ? offset + lf + 1 : await lineEndFrom(file, offset + window.length, size);
      return cutPage(window.subarray(0, cutLineStart), window.subarray(cutLineStart, cutAt), nextOffset);
    }
  }

  if (end === window.length && windowReachesEof) {
    // A line still being written may end inside a multi-byte character: serve that character once whole.
    const incomplete = incompleteUtf8Tail(window, end);
    if (incomplete > 0 && incomplete < end) end -= incomplete;
  }
  return { data: window.subarray(0, end), nextOffset: offset + end, truncated: false };
}

export interface TailPageRequest {
  size: number;
  maxLines: number;
  pageLimit: number;
}

/**
 * The page RDS returns without a Marker: the most recent lines (at most `maxLines`, `pageLimit`
 * bytes), in file order, ending at the end of the file.
 */
export async function readTailPage(file: FileHandle, request: TailPageRequest): Promise<Page> {
  const { size, maxLines, pageLimit } = request;
  if (size === 0) return { data: Buffer.alloc(0), nextOffset: 0, truncated: false };
  // One byte more than a page: it tells whether the window's first line starts at the window start.
  const windowStart = Math.max(0, size - pageLimit - 1);
  const window = await readAt(file, windowStart, size - windowStart);
  const lowest = windowStart === 0 ? 0 : 1;

  let start = window.length;
  let lines = 0;
  while (lines < maxLines && start > lowest) {
    const lf = start >= 2 ? window.lastIndexOf(LF, start - 2) : -1;
    if (lf + 1 < lowest) break;
    start = lf + 1;
    lines++;
  }

  if (lines === 0) {
    const lineStart = await lineStartBefore(file, size);
    const head = await readAt(file, lineStart, pageLimit);
    const cut = utf8CutLength(head, 0, pageLimit - TRUNCATION_BYTES.length);
    return cutPage(head.subarray(0, 0), head.subarray(0, cut), size);
  }

  let end = window.length;
  const incomplete = incompleteUtf8Tail(window, end);
  if (incomplete > 0 && incomplete < end - start) end -= incomplete;
  return { data: window.subarray(start, end), nextOffset: windowStart + end, truncated: false };
}
