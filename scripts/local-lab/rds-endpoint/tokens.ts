/**
 * Opaque pagination tokens. Clients must treat RDS markers as opaque; these are deliberately not
 * parseable (no visible offset) and are bound to what they page through, so a client that builds,
 * edits or mixes up markers gets `InvalidParameterValue` instead of silently wrong data.
 *
 * The key is a constant, not a per-process secret: a restarted endpoint must accept markers it issued
 * before (the downloader keeps its resume Marker in the ledger).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import { invalidParameter } from './query-protocol';

const TOKEN_KEY = 'local-lab rds-endpoint marker key v1';
const BLOCK_KEY = createHash('sha256').update(TOKEN_KEY).digest().subarray(0, 16);
const BLOCK_BYTES = 16;
const OFFSET_BYTES = 8;
const TAG_BYTES = 6;

function hmac(text: string): Buffer {
  return createHmac('sha256', TOKEN_KEY).update(text).digest();
}

function logFileScope(instanceId: string, logFileName: string): string {
  return `log\u0000${instanceId}\u0000${logFileName}`;
}

/** One AES block: the offset, then a tag binding it to the file. */
function markerBlock(scope: string, offset: bigint): Buffer {
  const block = Buffer.alloc(BLOCK_BYTES);
  block.writeBigUInt64BE(offset);
  hmac(`${scope}\u0000${offset}`).copy(block, OFFSET_BYTES, 0, BLOCK_BYTES - OFFSET_BYTES);
  return block;
}

/**
 * A DownloadDBLogFilePortion Marker for `offset` in one file: 22 base64url characters, one AES block
 * holding the offset and a tag over file and offset, so no part of it reads as a position.
 * Deterministic: the same position of the same file always gives the same Marker.
 */
export function encodeLogMarker(instanceId: string, logFileName: string, offset: number): string {
  const cipher = createCipheriv('aes-128-ecb', BLOCK_KEY, null).setAutoPadding(false);
  const block = markerBlock(logFileScope(instanceId, logFileName), BigInt(offset));
  return Buffer.concat([cipher.update(block), cipher.final()]).toString('base64url');
}

/** The byte offset a Marker stands for; `"0"` is the start of the file, as in RDS. */
export function decodeLogMarker(instanceId: string, logFileName: string, marker: string): number {
  if (marker === '0') return 0;
  const invalid = invalidParameter(`Marker '${marker}' is not valid for log file ${logFileName}`);
  const sealed = Buffer.from(marker, 'base64url');
  if (sealed.length !== BLOCK_BYTES || sealed.toString('base64url') !== marker) throw invalid;
  const decipher = createDecipheriv('aes-128-ecb', BLOCK_KEY, null).setAutoPadding(false);
  const block = Buffer.concat([decipher.update(sealed), decipher.final()]);
  const offset = block.readBigUInt64BE();
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid;
  if (!markerBlock(logFileScope(instanceId, logFileName), offset).equals(block)) throw invalid;
  return Number(offset);
}

/**
 * A Describe* Marker: resume after the item with key `afterKey` of listing `listing` (an action name
 * plus whatever scopes it, e.g. the instance). Keyed by the last item rather than by an index, so a
 * file appearing or vanishing between two pages neither repeats nor skips the others.
 */
export function encodeListMarker(listing: string, afterKey: string): string {
  const payload = Buffer.from(JSON.stringify([listing, afterKey]), 'utf8');
  const tag = hmac(`list\u0000${payload.toString('base64url')}`).subarray(0, TAG_BYTES);
  return `${payload.toString('base64url')}.${tag.toString('base64url')}`;
}

export function decodeListMarker(listing: string, marker: string): string {
  const invalid = invalidParameter(`Marker '${marker}' is not valid for this request`);
  const [payload, tag, ...rest] = marker.split('.');
  if (payload === undefined || tag === undefined || rest.length > 0) throw invalid;
  const expectedTag = hmac(`list\u0000${payload}`).subarray(0, TAG_BYTES).toString('base64url');
  if (tag !== expectedTag) throw invalid;
  const decoded: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  if (!Array.isArray(decoded) || decoded[0] !== listing || typeof decoded[1] !== 'string') throw invalid;
  return decoded[1];
}
