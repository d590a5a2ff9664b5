/**
 * Ledger access: one item per (instance, audit log file). Every write is conditional on the state the
 * writer based its decision on, so the detector, the downloader and the reconciler can race without
 * losing an update: a failed condition means "someone else changed the item", and the caller re-reads.
 *
 * Re-driving (the reconciler's `redrive`): the downloader's stream filter (DOWNLOADER_STREAM_FILTERS)
 * admits only transitions INTO PENDING from another status, so writing PENDING over PENDING never
 * triggers it. FAILED -> PENDING and a stale IN_PROGRESS -> PENDING (claim dropped) are single
 * conditional writes. A stale PENDING item (its stream record never led to a claim: dropped after the
 * event source's retries or its maximum record age) is parked and handed back in two conditional
 * writes, PENDING -> FAILED -> PENDING, the second conditioned on the status and time the first wrote:
 * the second write is an admitted transition into PENDING, and any writer in between wins. A re-driver
 * dying between the two leaves a FAILED item, which the detector and the next reconciler run re-drive.
 */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
  paginateQuery,
  paginateScan,
} from '@aws-sdk/lib-dynamodb';
import {
  LEDGER_ATTR,
  LedgerStatus,
  type LedgerItem,
  type PendingSegment,
  type Segment,
  type SizeObservation,
} from './contract';

export interface LedgerKey {
  instance: string;
  file: string;
}

/** What RDS lists for one log file. */
export interface LogFileListing {
  LogFileName: string;
  Size: number;
  LastWritten: number;
}

/** A change the detector decided on; unset fields are left as they are. */
export interface ItemChange {
  Size?: number;
  LastWritten?: number;
  Status?: LedgerStatus;
  LastError?: string;
  /** Set when leaving IN_PROGRESS: the claim no longer belongs to anybody. */
  dropClaim?: boolean;
  /** Replaces the item's SizeHistory (the detector prunes and extends it when the file grows). */
  SizeHistory?: SizeObservation[];
}

/** One item of a full read: validated, or the raw attributes with the reason they are not valid. */
export type ScannedItem =
  | { item: LedgerItem; malformed?: undefined }
  | { item?: undefined; malformed: { raw: Record<string, unknown>; error: LedgerFormatError } };

export class LedgerFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerFormatError';
  }
}

export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

export function ledgerKeyOf(item: Pick<LedgerItem, 'DBInstanceIdentifier' | 'LogFileName'>): LedgerKey {
  return { instance: item.DBInstanceIdentifier, file: item.LogFileName };
}

const STATUSES: ReadonlySet<string> = new Set(Object.values(LedgerStatus));

function expectString(raw: Record<string, unknown>, attr: string): string {
  const value = raw[attr];
  if (typeof value !== 'string') throw new LedgerFormatError(`ledger attribute ${attr} is not a string`);
  return value;
}

function expectNumber(raw: Record<string, unknown>, attr: string): number {
  const value = raw[attr];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new LedgerFormatError(`ledger attribute ${attr} is not a number`);
  }
  return value;
}

function expectByteCount(raw: Record<string, unknown>, attr: string): number {
  const value = expectNumber(raw, attr);
  if (!Number.isSafeInteger(value) || value < 0) throw new LedgerFormatError(`ledger attribute ${attr} is not a byte count`);
  return value;
}

function optional<T>(raw: Record<string, unknown>, attr: string, read: (r: Record<string, unknown>, a: string) => T) {
  return raw[attr] === undefined ? undefined : read(raw, attr);
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseSegment(value: unknown, attr: string): Segment {
  if (!isMap(value)) throw new LedgerFormatError(`ledger attribute ${attr} holds a segment that is not a map`);
  const segment = { Start: expectNumber(value, 'Start'), End: expectNumber(value, 'End'), Sha256: expectString(value, 'Sha256') };
  if (segment.End <= segment.Start) {
    throw new LedgerFormatError(`ledger attribute ${attr} holds an empty or inverted segment ${segment.Start}-${segment.End}`);
  }
  return segment;
}

function parseSegments(value: unknown): Segment[] {
  if (!Array.isArray(value)) throw new LedgerFormatError(`ledger attribute ${LEDGER_ATTR.segments} is not a list`);
  return value.map((entry: unknown) => parseSegment(entry, LEDGER_ATTR.segments));
}

function parsePendingSegment(value: unknown): PendingSegment {
  const segment = parseSegment(value, LEDGER_ATTR.pendingSegment);
  const raw = value as Record<string, unknown>;
  const skip = optional(raw, LEDGER_ATTR.markerSkipBytes, expectByteCount);
  return { ...segment, Marker: expectString(raw, 'Marker'), ...(skip === undefined ? {} : { MarkerSkipBytes: skip }) };
}

function parseSizeHistory(value: unknown): SizeObservation[] {
  if (!Array.isArray(value)) throw new LedgerFormatError(`ledger attribute ${LEDGER_ATTR.sizeHistory} is not a list`);
  return value.map((entry: unknown) => {
    if (!isMap(entry)) throw new LedgerFormatError(`ledger attribute ${LEDGER_ATTR.sizeHistory} holds an entry that is not a map`);
    return { Size: expectNumber(entry, 'Size'), LastWritten: expectNumber(entry, 'LastWritten') };
  });
}

/** Validates an item read from the table; a malformed item is an error, never guessed at. */
export function toLedgerItem(raw: Record<string, unknown>): LedgerItem {
  const status = expectString(raw, LEDGER_ATTR.status);
  if (!STATUSES.has(status)) throw new LedgerFormatError(`unknown ledger status ${status}`);
  return {
    DBInstanceIdentifier: expectString(raw, LEDGER_ATTR.instance),
    LogFileName: expectString(raw, LEDGER_ATTR.file),
    Size: expectNumber(raw, LEDGER_ATTR.size),
    LastWritten: expectNumber(raw, LEDGER_ATTR.lastWritten),
    Status: status as LedgerStatus,
    StatusChangedAt: expectNumber(raw, LEDGER_ATTR.statusChangedAt),
    BackedUpBytes: expectNumber(raw, LEDGER_ATTR.backedUpBytes),
    LastBackup: optional(raw, LEDGER_ATTR.lastBackup, expectNumber),
    Marker: optional(raw, LEDGER_ATTR.marker, expectString),
    MarkerSkipBytes: optional(raw, LEDGER_ATTR.markerSkipBytes, expectByteCount),
    Attempts: optional(raw, LEDGER_ATTR.attempts, expectNumber),
    LastError: optional(raw, LEDGER_ATTR.lastError, expectString),
    Segments: raw[LEDGER_ATTR.segments] === undefined ? undefined : parseSegments(raw[LEDGER_ATTR.segments]),
    ClaimToken: optional(raw, LEDGER_ATTR.claimToken, expectString),
    PendingSegment:
      raw[LEDGER_ATTR.pendingSegment] === undefined ? undefined : parsePendingSegment(raw[LEDGER_ATTR.pendingSegment]),
    SizeHistory:
      raw[LEDGER_ATTR.sizeHistory] === undefined ? undefined : parseSizeHistory(raw[LEDGER_ATTR.sizeHistory]),
  };
}

function scanned(raw: Record<string, unknown>): ScannedItem {
  try {
    return { item: toLedgerItem(raw) };
  } catch (error) {
    if (error instanceof LedgerFormatError) return { malformed: { raw, error } };
    throw error;
  }
}

/** Collects expression placeholders; attribute names are plain identifiers, so `#Name` is unique. */
class Expression {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private valueCount = 0;

  name(attr: string): string {
    const placeholder = `#${attr}`;
    this.names[placeholder] = attr;
    return placeholder;
  }

  value(value: unknown): string {
    const placeholder = `:v${this.valueCount++}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  equals(attr: string, value: unknown): string {
    return value === undefined
      ? `attribute_not_exists(${this.name(attr)})`
      : `${this.name(attr)} = ${this.value(value)}`;
  }

  assign(attr: string, value: unknown): string {
    return `${this.name(attr)} = ${this.value(value)}`;
  }
}

/** The conditions that the caller still holds the IN_PROGRESS claim under `token`. */
function claimHeld(e: Expression, token: string): string[] {
  return [e.equals(LEDGER_ATTR.claimToken, token), e.equals(LEDGER_ATTR.status, LedgerStatus.IN_PROGRESS)];
}

/** Only the contract's fields: nothing else the caller's object carries ends up in the item. */
function pendingSegmentValue(segment: PendingSegment): PendingSegment {
  const value: PendingSegment = { Start: segment.Start, End: segment.End, Sha256: segment.Sha256, Marker: segment.Marker };
  if (segment.MarkerSkipBytes) value.MarkerSkipBytes = segment.MarkerSkipBytes;
  return value;
}

/** Last error texts are for humans; keep items far below DynamoDB's 400 KB limit. */
const MAX_ERROR_TEXT = 1000;

function errorText(text: string): string {
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}…` : text;
}

/** The assignments of a status change: the status, when it changed, and why (when there is a reason). */
function statusChange(e: Expression, status: LedgerStatus, now: number, reason: string | undefined): string[] {
  const set = [e.assign(LEDGER_ATTR.status, status), e.assign(LEDGER_ATTR.statusChangedAt, now)];
  if (reason !== undefined) set.push(e.assign(LEDGER_ATTR.lastError, errorText(reason)));
  return set;
}

export class Ledger {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private keyOf(key: LedgerKey): Record<string, string> {
    return { [LEDGER_ATTR.instance]: key.instance, [LEDGER_ATTR.file]: key.file };
  }

  /** Every item of one instance (strongly consistent, all pages). */
  async itemsOfInstance(instance: string): Promise<LedgerItem[]> {
    const expression = new Expression();
    const keyCondition = expression.equals(LEDGER_ATTR.instance, instance);
    const items: LedgerItem[] = [];
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: keyCondition,
        ExpressionAttributeNames: expression.names,
        ExpressionAttributeValues: expression.values,
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const raw of page.Items ?? []) items.push(toLedgerItem(raw));
    }
    return items;
  }

  /**
   * Every item (all Scan pages), or every item of one instance (all Query pages), strongly
   * consistent. A malformed item is yielded as such rather than ending the read: a verifier reports it.
   */
  async *allItems(instance?: string): AsyncGenerator<ScannedItem> {
    const consistent = { TableName: this.tableName, ConsistentRead: true };
    if (instance === undefined) {
      for await (const page of paginateScan({ client: this.client }, consistent)) {
        for (const raw of page.Items ?? []) yield scanned(raw);
      }
      return;
    }
    const expression = new Expression();
    const keyCondition = expression.equals(LEDGER_ATTR.instance, instance);
    const pages = paginateQuery(
      { client: this.client },
      {
        ...consistent,
        KeyConditionExpression: keyCondition,
        ExpressionAttributeNames: expression.names,
        ExpressionAttributeValues: expression.values,
      },
    );
    for await (const page of pages) {
      for (const raw of page.Items ?? []) yield scanned(raw);
    }
  }

  async get(key: LedgerKey): Promise<LedgerItem | undefined> {
    const result = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: this.keyOf(key), ConsistentRead: true }),
    );
    return result.Item ? toLedgerItem(result.Item) : undefined;
  }

  /**
   * A file seen for the first time: the item as written, or undefined when it already exists (a
   * concurrent detector).
   */
  async createPending(instance: string, listing: LogFileListing, now: number): Promise<LedgerItem | undefined> {
    const expression = new Expression();
    const item: LedgerItem = {
      DBInstanceIdentifier: instance,
      LogFileName: listing.LogFileName,
      Size: listing.Size,
      LastWritten: listing.LastWritten,
      Status: LedgerStatus.PENDING,
      StatusChangedAt: now,
      BackedUpBytes: 0,
      Attempts: 0,
      ...(listing.Size > 0 ? { SizeHistory: [{ Size: listing.Size, LastWritten: listing.LastWritten }] } : {}),
    };
    const put = new PutCommand({
      TableName: this.tableName,
      Item: item,
      ConditionExpression: `attribute_not_exists(${expression.name(LEDGER_ATTR.instance)})`,
      ExpressionAttributeNames: expression.names,
    });
    return (await this.conditionally(() => this.client.send(put))) ? item : undefined;
  }

  /**
   * Applies a detector decision only if the item is still exactly as observed (status, the time of
   * its last status change, size, last-written and claim), so a concurrent downloader write makes
   * it fail and the detector re-evaluates instead of overwriting.
   */
  async applyChange(observed: LedgerItem, change: ItemChange, now: number): Promise<boolean> {
    const e = new Expression();
    const set: string[] = [];
    const remove: string[] = [];
    if (change.Size !== undefined) set.push(e.assign(LEDGER_ATTR.size, change.Size));
    if (change.LastWritten !== undefined) set.push(e.assign(LEDGER_ATTR.lastWritten, change.LastWritten));
    if (change.Status !== undefined && change.Status !== observed.Status) {
      set.push(e.assign(LEDGER_ATTR.status, change.Status), e.assign(LEDGER_ATTR.statusChangedAt, now));
    }
    if (change.LastError !== undefined) set.push(e.assign(LEDGER_ATTR.lastError, errorText(change.LastError)));
    if (change.SizeHistory !== undefined) set.push(e.assign(LEDGER_ATTR.sizeHistory, change.SizeHistory));
    if (change.dropClaim) remove.push(e.name(LEDGER_ATTR.claimToken));
    if (set.length === 0 && remove.length === 0) return true;
    const condition = [
      e.equals(LEDGER_ATTR.status, observed.Status),
      e.equals(LEDGER_ATTR.statusChangedAt, observed.StatusChangedAt),
      e.equals(LEDGER_ATTR.size, observed.Size),
      e.equals(LEDGER_ATTR.lastWritten, observed.LastWritten),
      e.equals(LEDGER_ATTR.claimToken, observed.ClaimToken),
    ].join(' AND ');
    return this.update(ledgerKeyOf(observed), e, set, remove, condition);
  }

  /**
   * PENDING -> IN_PROGRESS under a fresh token. Returns the claimed item as stored (the checkpoint to
   * resume from), or undefined when the item is not PENDING any more (someone else has the work).
   */
  async claim(work: LedgerKey, token: string, now: number): Promise<LedgerItem | undefined> {
    const e = new Expression();
    const attempts = e.name(LEDGER_ATTR.attempts);
    const set = [
      e.assign(LEDGER_ATTR.status, LedgerStatus.IN_PROGRESS),
      e.assign(LEDGER_ATTR.claimToken, token),
      e.assign(LEDGER_ATTR.statusChangedAt, now),
      `${attempts} = if_not_exists(${attempts}, ${e.value(0)}) + ${e.value(1)}`,
    ];
    const condition = e.equals(LEDGER_ATTR.status, LedgerStatus.PENDING);
    try {
      const result = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.keyOf(work),
          UpdateExpression: `SET ${set.join(', ')}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: e.names,
          ExpressionAttributeValues: e.values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return result.Attributes ? toLedgerItem(result.Attributes) : undefined;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }

  /**
   * Phase one of storing an object (two-phase commit): records the object about to be PUT, only while
   * the claim holds, only for the bytes right after the last checkpoint (BackedUpBytes = Start) and
   * only when no other intent is open. A holder that dies after this leaves the intent for the next
   * holder to resolve, so an object is never stored without the ledger knowing its key.
   */
  async recordIntent(work: LedgerKey, token: string, segment: PendingSegment): Promise<boolean> {
    const e = new Expression();
    const set = [e.assign(LEDGER_ATTR.pendingSegment, pendingSegmentValue(segment))];
    const condition = [
      ...claimHeld(e, token),
      e.equals(LEDGER_ATTR.backedUpBytes, segment.Start),
      `attribute_not_exists(${e.name(LEDGER_ATTR.pendingSegment)})`,
    ].join(' AND ');
    return this.update(work, e, set, [], condition);
  }

  /**
   * Phase two: the intended object is stored. Records it as the next segment and closes the intent in
   * one write, only while the claim holds and only if it extends exactly the bytes already recorded
   * (BackedUpBytes = Start), so segments stay contiguous and are recorded once. The resume point
   * becomes the segment's Marker plus its MarkerSkipBytes (removed when there is none).
   */
  async checkpoint(work: LedgerKey, token: string, stored: PendingSegment, now: number): Promise<boolean> {
    const e = new Expression();
    const segments = e.name(LEDGER_ATTR.segments);
    const segment: Segment = { Start: stored.Start, End: stored.End, Sha256: stored.Sha256 };
    const pending = e.name(LEDGER_ATTR.pendingSegment);
    const set = [
      e.assign(LEDGER_ATTR.backedUpBytes, stored.End),
      e.assign(LEDGER_ATTR.marker, stored.Marker),
      e.assign(LEDGER_ATTR.lastBackup, now),
      e.assign(LEDGER_ATTR.attempts, 0),
      `${segments} = list_append(if_not_exists(${segments}, ${e.value([])}), ${e.value([segment])})`,
    ];
    const remove = [pending];
    if (stored.MarkerSkipBytes) set.push(e.assign(LEDGER_ATTR.markerSkipBytes, stored.MarkerSkipBytes));
    else remove.push(e.name(LEDGER_ATTR.markerSkipBytes));
    const condition = [
      ...claimHeld(e, token),
      e.equals(LEDGER_ATTR.backedUpBytes, stored.Start),
      `attribute_exists(${pending})`,
    ].join(' AND ');
    return this.update(work, e, set, remove, condition);
  }

  /** The intended object was never stored: close the intent so its bytes are read again. */
  async dropIntent(work: LedgerKey, token: string, intent: PendingSegment): Promise<boolean> {
    const e = new Expression();
    const pending = e.name(LEDGER_ATTR.pendingSegment);
    const condition = [
      ...claimHeld(e, token),
      e.equals(LEDGER_ATTR.backedUpBytes, intent.Start),
      `attribute_exists(${pending})`,
    ].join(' AND ');
    return this.update(work, e, [], [pending], condition);
  }

  /** IN_PROGRESS -> DONE, only if RDS has not listed more bytes than are stored meanwhile. */
  async markDone(work: LedgerKey, token: string, backedUpBytes: number, now: number): Promise<boolean> {
    const e = new Expression();
    const set = [
      e.assign(LEDGER_ATTR.status, LedgerStatus.DONE),
      e.assign(LEDGER_ATTR.statusChangedAt, now),
      e.assign(LEDGER_ATTR.attempts, 0),
    ];
    const remove = [e.name(LEDGER_ATTR.claimToken), e.name(LEDGER_ATTR.lastError)];
    const condition = [
      ...claimHeld(e, token),
      e.equals(LEDGER_ATTR.backedUpBytes, backedUpBytes),
      `${e.name(LEDGER_ATTR.size)} <= ${e.value(backedUpBytes)}`,
      // An open intent may name an object in S3 that no segment records yet: never DONE with one.
      `attribute_not_exists(${e.name(LEDGER_ATTR.pendingSegment)})`,
    ].join(' AND ');
    return this.update(work, e, set, remove, condition);
  }

  /**
   * IN_PROGRESS -> PENDING with the checkpoint kept: the transition re-triggers the downloader. A pass
   * that stored nothing (its time was gone before it could read) takes back the attempt its claim
   * counted: a clean hand-off is no failure, and the FAILED backoff grows with Attempts. A pass that
   * stored something had Attempts reset by its checkpoint.
   */
  async release(work: LedgerKey, token: string, now: number, progress: 'stored' | 'nothing-stored'): Promise<boolean> {
    return this.leaveClaim(work, token, LedgerStatus.PENDING, now, undefined, progress === 'nothing-stored');
  }

  /** IN_PROGRESS -> FAILED or LOST with the reason. */
  async abandon(
    work: LedgerKey,
    token: string,
    status: typeof LedgerStatus.FAILED | typeof LedgerStatus.LOST,
    reason: string,
    now: number,
  ): Promise<boolean> {
    return this.leaveClaim(work, token, status, now, reason);
  }

  /**
   * Hands an item nobody is working on back to the downloader with a transition its stream filter
   * admits (see the module comment): FAILED -> PENDING, stale IN_PROGRESS -> PENDING (claim dropped),
   * stale PENDING -> FAILED -> PENDING. Every write is conditional on the item being exactly as
   * observed (status, time of its last status change, claim); false when another writer came first.
   * `now` is read per write, so the item's StatusChangedAt increases with each transition.
   */
  async redrive(observed: LedgerItem, reason: string, now: () => number): Promise<boolean> {
    switch (observed.Status) {
      case LedgerStatus.FAILED:
      case LedgerStatus.IN_PROGRESS:
        return this.redriveTransition(observed, LedgerStatus.PENDING, now(), undefined);
      case LedgerStatus.PENDING: {
        const parkedAt = now();
        if (!(await this.redriveTransition(observed, LedgerStatus.FAILED, parkedAt, reason))) return false;
        const parked: LedgerItem = { ...observed, Status: LedgerStatus.FAILED, StatusChangedAt: parkedAt, ClaimToken: undefined };
        return this.redriveTransition(parked, LedgerStatus.PENDING, Math.max(now(), parkedAt + 1), undefined);
      }
      default:
        throw new Error(`a ${observed.Status} item is not re-driven (${observed.DBInstanceIdentifier} ${observed.LogFileName})`);
    }
  }

  private async redriveTransition(
    observed: LedgerItem,
    status: LedgerStatus,
    now: number,
    reason: string | undefined,
  ): Promise<boolean> {
    const e = new Expression();
    const set = statusChange(e, status, now, reason);
    const remove = observed.ClaimToken === undefined ? [] : [e.name(LEDGER_ATTR.claimToken)];
    const condition = [
      e.equals(LEDGER_ATTR.status, observed.Status),
      e.equals(LEDGER_ATTR.statusChangedAt, observed.StatusChangedAt),
      e.equals(LEDGER_ATTR.claimToken, observed.ClaimToken),
    ].join(' AND ');
    return this.update(ledgerKeyOf(observed), e, set, remove, condition);
  }

  private async leaveClaim(
    work: LedgerKey,
    token: string,
    status: LedgerStatus,
    now: number,
    reason: string | undefined,
    takeBackClaimAttempt = false,
  ): Promise<boolean> {
    const e = new Expression();
    const set = statusChange(e, status, now, reason);
    if (takeBackClaimAttempt) set.push(`${e.name(LEDGER_ATTR.attempts)} = ${e.name(LEDGER_ATTR.attempts)} - ${e.value(1)}`);
    // An open intent stays on the item (FAILED after a PUT error): the next holder resolves it.
    const remove = [e.name(LEDGER_ATTR.claimToken)];
    return this.update(work, e, set, remove, claimHeld(e, token).join(' AND '));
  }

  private async update(
    work: LedgerKey,
    e: Expression,
    set: string[],
    remove: string[],
    condition: string,
  ): Promise<boolean> {
    const clauses = [set.length ? `SET ${set.join(', ')}` : '', remove.length ? `REMOVE ${remove.join(', ')}` : ''];
    const hasValues = Object.keys(e.values).length > 0;
    const update = new UpdateCommand({
      TableName: this.tableName,
      Key: this.keyOf(work),
      UpdateExpression: clauses.filter(Boolean).join(' '),
      ConditionExpression: condition,
      ExpressionAttributeNames: e.names,
      ExpressionAttributeValues: hasValues ? e.values : undefined,
    });
    return this.conditionally(() => this.client.send(update));
  }

  /** True when written, false when the condition failed; any other error propagates. */
  private async conditionally(write: () => Promise<unknown>): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }
}
