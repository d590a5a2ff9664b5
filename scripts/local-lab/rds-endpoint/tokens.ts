/**
 * Opaque pagination tokens. Clients must treat RDS markers as opaque; these are deliberately not
 * parseable (no visible offset) and are bound to what they page through, so a client that builds,
 * edits or mixes up markers gets `InvalidParameterValue` instead of silently wrong data.
 *
 * The key is a constant, not a per-process secret: a restarted endpoint must accept markers it issued
 * before (the downloader keeps its resume Marker in the ledger).
 */
import { createHmac } from 'node:crypto';
import { invalidParameter } from './query-protocol';

const TOKEN_KEY = 'local-lab rds-endpoint marker key v1';
const OFFSET_BYTES = 8;
const TAG_BYTES = 6;

function hmac(text: string): Buffer {
  return createHmac('sha256', TOKEN_KEY).update(text).digest();
}

function logFileScope(instanceId: string, logFileName: string): string {
  return `log\u0000${instanceId}\u0000${logFileName}`;
}

/**
 * A DownloadDBLogFilePortion Marker for `offset` in one file: 19 base64url characters (the offset,
 * masked with a per-file key stream, then a 6-byte tag over file and offset). Deterministic: the same
 * position of the same file always gives the same Marker.
 */
export function encodeLogMarker(instanceId: string, logFileName: string, offset: number): string {
  const scope = logFileScope(instanceId, logFileName);
  const mask = hmac(scope);
  const bytes = Buffer.alloc(OFFSET_BYTES + TAG_BYTES);
  bytes.writeBigUInt64BE(BigInt(offset));
  for (let i = 0; i < OFFSET_BYTES; i++) bytes[i] ^= mask[i];
  hmac(`${scope}\u0000${offset}`).copy(bytes, OFFSET_BYTES, 0, TAG_BYTES);
  return bytes.toString('base64url');
}

/** The byte offset a Marker stands for; `"0"` is the start of the file, as in RDS. */
export function decodeLogMarker(instanceId: string, logFileName: string, marker: string): number {
  if (marker === '0') return 0;
  const invalid = invalidParameter(`Marker '${marker}' is not valid for log file ${logFileName}`);
  const bytes = Buffer.from(marker, 'base64url');
  if (bytes.length !== OFFSET_BYTES + TAG_BYTES || bytes.toString('base64url') !== marker) throw invalid;
  const scope = logFileScope(instanceId, logFileName);
  const mask = hmac(scope);
  for (let i = 0; i < OFFSET_BYTES; i++) bytes[i] ^= mask[i];
  const offset = bytes.readBigUInt64BE();
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid;
  const expectedTag = hmac(`${scope}\u0000${offset}`).subarray(0, TAG_BYTES);
  if (!expectedTag.equals(bytes.subarray(OFFSET_BYTES))) throw invalid;
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
