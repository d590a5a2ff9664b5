/**
 * The contract shared by the infrastructure (lib/), the handlers (lambda/) and the local lab (scripts/):
 * ledger key and attribute names, status values, the downloader's stream filter, the S3 object-key
 * format and environment variable names. Defined once here; everything else imports it.
 *
 * This module must stay free of AWS SDK, CDK and Lambda imports so that every side can use it.
 */

/** DynamoDB ledger: one item per (instance, audit log file). */
export const LEDGER_KEY = {
  partitionKey: 'DBInstanceIdentifier',
  sortKey: 'LogFileName',
} as const;

/** Attribute names of a ledger item (the two key names included). */
export const LEDGER_ATTR = {
  instance: LEDGER_KEY.partitionKey,
  file: LEDGER_KEY.sortKey,
  /** Bytes RDS last listed for the file (N). */
  size: 'Size',
  /** Epoch ms RDS last listed as the file's last write (N). */
  lastWritten: 'LastWritten',
  /** Epoch ms of the last stored object (N), absent until the first backup. */
  lastBackup: 'LastBackup',
  /** Bytes stored contiguously from offset 0 (N). */
  backedUpBytes: 'BackedUpBytes',
  /** Opaque RDS marker to resume DownloadDBLogFilePortion from (S), absent before the first object. */
  marker: 'Marker',
  /**
   * Bytes to drop from the data read at Marker before appending (N, absent = 0). Set when RDS returned a
   * last page with data but no Marker: the checkpoint keeps the Marker from before that page, and the
   * next pass re-reads the page and drops the bytes already stored.
   */
  markerSkipBytes: 'MarkerSkipBytes',
  /** One of LedgerStatus (S). */
  status: 'Status',
  /** Epoch ms of the last status change (N): lets the detector find stale claims. */
  statusChangedAt: 'StatusChangedAt',
  /** Downloader attempts since the last success (N). */
  attempts: 'Attempts',
  /** Last error text (S), for FAILED and LOST items. */
  lastError: 'LastError',
  /** Stored objects in offset order (L of M {Start, End, Sha256}). */
  segments: 'Segments',
  /** Token of the invocation holding an IN_PROGRESS claim (S). */
  claimToken: 'ClaimToken',
  /**
   * The object the claim holder is about to PUT (M {Start, End, Sha256, Marker}): recorded before the
   * PUT, removed by the checkpoint that records it. Present on a claim means a holder died between
   * the two; the next holder resolves it (adopt the object, or drop the intent) before reading RDS.
   */
  pendingSegment: 'PendingSegment',
  /**
   * What RDS listed each time the detector saw the file grow past the stored bytes (L of M
   * {Size, LastWritten}, ascending). The first entry with Size > BackedUpBytes dates the oldest byte not
   * yet stored: it was written after the detector's previous look and at or before that entry's
   * LastWritten. Backup lag is computed from it.
   */
  sizeHistory: 'SizeHistory',
} as const;

export const LedgerStatus = {
  PENDING: 'PENDING',
  IN_PROGRESS: 'IN_PROGRESS',
  DONE: 'DONE',
  FAILED: 'FAILED',
  LOST: 'LOST',
} as const;
export type LedgerStatus = (typeof LedgerStatus)[keyof typeof LedgerStatus];

/** One stored S3 object of a log file: bytes [start, end) of the source file. */
export interface Segment {
  Start: number;
  End: number;
  /** Base64 SHA-256 of the object's bytes, as S3's x-amz-checksum-sha256 reports it. */
  Sha256: string;
}

/** One SizeHistory entry: the file had Size bytes when RDS last wrote it at LastWritten (epoch ms). */
export interface SizeObservation {
  Size: number;
  LastWritten: number;
}

/**
 * A segment recorded before its PUT (two-phase commit): the checkpoint it leaves is Marker (the RDS
 * marker after its last page) plus MarkerSkipBytes (absent = 0; see LEDGER_ATTR.markerSkipBytes).
 */
export interface PendingSegment extends Segment {
  Marker: string;
  MarkerSkipBytes?: number;
}

/** A ledger item as the handlers and the local lab read it. */
export interface LedgerItem {
  DBInstanceIdentifier: string;
  LogFileName: string;
  Size: number;
  LastWritten: number;
  Status: LedgerStatus;
  StatusChangedAt: number;
  BackedUpBytes: number;
  LastBackup?: number;
  Marker?: string;
  MarkerSkipBytes?: number;
  Attempts?: number;
  LastError?: string;
  Segments?: Segment[];
  ClaimToken?: string;
  PendingSegment?: PendingSegment;
  SizeHistory?: SizeObservation[];
}

/** Powertools idempotency persistence table (the library's defaults). */
export const IDEMPOTENCY_KEY = {
  partitionKey: 'id',
  ttlAttribute: 'expiration',
} as const;

/** The ledger stream must carry both images: the filter compares the old and new status. */
export const LEDGER_STREAM_VIEW_TYPE = 'NEW_AND_OLD_IMAGES' as const;

/**
 * Lambda event-source filter patterns for the ledger stream (OR-ed by Lambda): admit only
 * transitions *into* PENDING, so the downloader's own writes never re-trigger it.
 */
export const DOWNLOADER_STREAM_FILTERS: ReadonlyArray<Record<string, unknown>> = [
  // An existing item moved into PENDING from any other status.
  {
    eventName: ['MODIFY'],
    dynamodb: {
      NewImage: { [LEDGER_ATTR.status]: { S: [LedgerStatus.PENDING] } },
      OldImage: { [LEDGER_ATTR.status]: { S: [{ 'anything-but': [LedgerStatus.PENDING] }] } },
    },
  },
  // A new item created as PENDING.
  {
    eventName: ['INSERT'],
    dynamodb: {
      NewImage: { [LEDGER_ATTR.status]: { S: [LedgerStatus.PENDING] } },
    },
  },
];

/** RDS lists audit log files under this name fragment (`audit/audit.log.N.YYYY-MM-DD-HH-MM.N`). */
export const AUDIT_LOG_FILENAME_FRAGMENT = 'audit';

/** Every backed-up object lives under this prefix; the lab host role may read it. */
export const LOG_OBJECT_PREFIX = 'logs/';

const OFFSET_DIGITS = 12;

function padOffset(offset: number): string {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= 10 ** OFFSET_DIGITS) {
    throw new RangeError(`byte offset out of range: ${offset}`);
  }
  return String(offset).padStart(OFFSET_DIGITS, '0');
}

/** `logs/{instance}/{file}/` — listing it in key order yields a file's objects in offset order. */
export function logFilePrefix(instance: string, logFileName: string): string {
  return `${LOG_OBJECT_PREFIX}${instance}/${logFileName}/`;
}

/** `logs/{instance}/{file}/{start}-{end}`, offsets zero-padded to 12 digits, end exclusive. */
export function segmentObjectKey(instance: string, logFileName: string, start: number, end: number): string {
  if (end <= start) throw new RangeError(`empty or inverted segment ${start}-${end}`);
  return `${logFilePrefix(instance, logFileName)}${padOffset(start)}-${padOffset(end)}`;
}

const SEGMENT_SUFFIX = new RegExp(`/(\\d{${OFFSET_DIGITS}})-(\\d{${OFFSET_DIGITS}})$`);

/** Inverse of segmentObjectKey; undefined for keys that are not segment objects. */
export function parseSegmentObjectKey(
  key: string,
): { instance: string; logFileName: string; start: number; end: number } | undefined {
  if (!key.startsWith(LOG_OBJECT_PREFIX)) return undefined;
  const match = SEGMENT_SUFFIX.exec(key);
  if (!match) return undefined;
  const rest = key.slice(LOG_OBJECT_PREFIX.length, match.index);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return undefined;
  return {
    instance: rest.slice(0, slash),
    logFileName: rest.slice(slash + 1),
    start: Number(match[1]),
    end: Number(match[2]),
  };
}

/** Message the scanner sends and the detector consumes: one per audit-enabled instance. */
export interface ScanMessage {
  DBInstanceIdentifier: string;
  DBClusterIdentifier?: string;
  /** Epoch ms the scanner ran, for lag figures. */
  ScannedAt: number;
}

/** Environment variables the stack sets and the handlers read (once, at module load). */
export const ENV = {
  ledgerTable: 'LEDGER_TABLE_NAME',
  idempotencyTable: 'IDEMPOTENCY_TABLE_NAME',
  bucket: 'BACKUP_BUCKET_NAME',
  scanQueueUrl: 'SCAN_QUEUE_URL',
  includeInstances: 'INCLUDE_INSTANCES',
  excludeInstances: 'EXCLUDE_INSTANCES',
  staleClaimMs: 'STALE_CLAIM_MS',
  /** Stop downloading when this many ms of the invocation remain, to store and checkpoint cleanly. */
  safetyMarginMs: 'DOWNLOAD_SAFETY_MARGIN_MS',
  /** Largest object one pass writes before it checkpoints and starts the next (bytes). */
  maxObjectBytes: 'MAX_OBJECT_BYTES',
  /** Folder the downloader spools a segment to before its single checksummed PUT. */
  spoolDir: 'SPOOL_DIR',
  /** Base delay before the detector re-drives a FAILED item to PENDING (ms; doubles per attempt). */
  failedRetryBackoffMs: 'FAILED_RETRY_BACKOFF_MS',
  /**
   * Reconciler, scheduled runs: every run verifies the S3 objects of the items that changed within
   * this many ms (default: VERIFY_SWEEP_MS) and of every item not DONE; the older DONE items are
   * spread over the runs of one sweep (VERIFY_SWEEP_MS). A run not started by the schedule, and the
   * CLI unless told otherwise, verify every item.
   */
  verifyWindowMs: 'VERIFY_WINDOW_MS',
  /** Reconciler: every stored object is verified at least once in this many ms (a rolling sweep). */
  verifySweepMs: 'VERIFY_SWEEP_MS',
  /** Reconciler: the schedule's rate (ms), which tells a run which part of the sweep is its own. */
  reconcileRateMs: 'RECONCILE_RATE_MS',
} as const;

/**
 * The reconcile schedule's input: the time the run was scheduled for (EventBridge Scheduler's
 * `<aws.scheduler.scheduled-time>`, ISO 8601). A retried run keeps its scheduled time, so it verifies
 * the same part of the sweep.
 */
export const RECONCILE_EVENT_FIELDS = { scheduledTime: 'scheduledTime' } as const;

/**
 * Text RDS puts at the end of a line it cut at the 1 MB page limit (preceded by a space). A page
 * ending with it must be re-read with fewer lines; the local RDS endpoint emits the same text.
 */
export const RDS_TRUNCATION_TEXT = '[Your log message was truncated]';

/** CloudWatch (EMF) namespace and metric names the handlers publish and alarms watch. */
export const METRICS = {
  namespace: 'AuroraAuditLogBackup',
  /** Files that became LOST (RDS no longer has bytes that were never stored). Alarm on > 0. */
  lostLogFiles: 'LostLogFiles',
  /** Files that became FAILED. */
  failedLogFiles: 'FailedLogFiles',
  /** Bytes stored in S3. */
  bytesBackedUp: 'BytesBackedUp',
  /** Files that reached DONE. */
  filesBackedUp: 'FilesBackedUp',
  /** DownloadDBLogFilePortion calls made. */
  portionCalls: 'PortionCalls',
  /** Audit-enabled instances the scanner queued. */
  instancesScanned: 'InstancesScanned',
  /**
   * Seconds since RDS wrote the oldest byte not yet stored in S3 (0 when everything listed is stored),
   * unit Seconds. The alarm watches its Maximum.
   */
  backupLagSeconds: 'BackupLagSeconds',
  /** RDS API calls retried after throttling (`Throttling: Rate exceeded`), unit Count. */
  throttleRetries: 'ThrottleRetries',
  /** Findings of one completeness-verifier run (0 for a clean run), unit Count. Alarm on > 0. */
  verifierFindings: 'VerifierFindings',
} as const;
