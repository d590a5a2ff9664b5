/**
 * Configuration, fault and statistics types of the local RDS log endpoint, and the protocol limits it
 * documents (README.md in this folder explains each behaviour in prose).
 */
import { RDS_TRUNCATION_TEXT } from '../../../lambda/shared/contract';

/** RDS answers `DownloadDBLogFilePortion` with at most 1 MB of log data; we use the decimal megabyte. */
export const DEFAULT_PAGE_LIMIT_BYTES = 1_000_000;

/**
 * Lines of a `DownloadDBLogFilePortion` call with neither `Marker` nor `NumberOfLines` (the newest
 * lines): the only line cap RDS documents. From a Marker a page runs to the end of the file or to
 * `NumberOfLines`, within the page limit; capping those at 10000 lines as well made pages of short
 * audit lines (~85 bytes) hold ~0.85 MB, and the calls per MB a property of the lab, not of RDS.
 */
export const TAIL_PAGE_LINES = 10_000;

/**
 * What a page ends with when a line is cut at the page limit: the cut bytes, then exactly these bytes
 * (one space, the RDS text, one LF). The whole page, this suffix included, stays within the limit.
 */
export const TRUNCATION_SUFFIX = ` ${RDS_TRUNCATION_TEXT}\n`;

/** Smallest page limit accepted: room for the truncation suffix plus some log bytes. */
export const MIN_PAGE_LIMIT_BYTES = 64;

/** Query API version the AWS SDK sends for RDS. */
export const RDS_API_VERSION = '2014-10-31';

export const RDS_XML_NAMESPACE = `http://rds.amazonaws.com/doc/${RDS_API_VERSION}/`;

/** The five actions the pipeline calls (anything else is answered `InvalidAction`). */
export const RDS_ACTIONS = [
  'DescribeDBInstances',
  'DescribeDBClusters',
  'DescribeDBClusterParameters',
  'DescribeDBLogFiles',
  'DownloadDBLogFilePortion',
] as const;
export type RdsAction = (typeof RDS_ACTIONS)[number];

/**
 * Where an instance's log files come from.
 *
 * - `mariadb-audit`: a MariaDB `server_audit` directory. Files named `baseName` and its rotations
 *   (`baseName.1`, `baseName.001`, ...) are served under stable Aurora-style names that follow the
 *   file (inode) across MariaDB's rename-on-rotate.
 * - `directory`: every regular file under `dir` (recursively), served under its relative path with
 *   `/` separators, e.g. `audit/audit.log.0.2026-11-25-13-05.0`. For fixtures and benchmarks.
 */
export type LogSourceConfig =
  | { kind: 'mariadb-audit'; dir: string; baseName?: string }
  | { kind: 'directory'; dir: string };

export const DEFAULT_MARIADB_AUDIT_BASENAME = 'server_audit.log';

export interface InstanceConfig {
  /** DBInstanceIdentifier. */
  id: string;
  /** IsClusterWriter; when no instance of a cluster says, the first one is the writer. */
  writer?: boolean;
  /** Default `db.t4g.medium`. */
  instanceClass?: string;
  /** Default the region followed by `a`, `b`, ... in member order. */
  availabilityZone?: string;
  /** Absent: the instance lists no log files. */
  logs?: LogSourceConfig;
  tags?: Record<string, string>;
}

export interface ClusterConfig {
  /** DBClusterIdentifier. */
  id: string;
  /** Name of a DB cluster parameter group declared in `parameterGroups`. */
  parameterGroup: string;
  /** Default `aurora-mysql`. */
  engine?: string;
  /** Default `8.0.mysql_aurora.3.08.2`. */
  engineVersion?: string;
  instances: InstanceConfig[];
  tags?: Record<string, string>;
}

export interface RdsLogEndpointOptions {
  /** Default 127.0.0.1: the lab listens on loopback only. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Used in ARNs and endpoints; default `us-east-1`. */
  region?: string;
  /** Used in ARNs; default `000000000000`. */
  accountId?: string;
  clusters: ClusterConfig[];
  /**
   * DB cluster parameter groups: name -> user-set parameter values, e.g.
   * `{ 'lab-audit': { server_audit_logging: '1', server_audit_events: 'CONNECT,QUERY' } }`.
   * Parameters not set here are listed from a small Aurora MySQL catalogue as `engine-default`.
   */
  parameterGroups: Record<string, Record<string, string>>;
  /** JSON file keeping the inode -> stable-name map across restarts (optional). */
  stateFile?: string;
  /**
   * Folder to hard-link every MariaDB audit file into as soon as it is seen (optional): a file
   * `server_audit_file_rotations` deletes keeps its bytes there, for comparing with its backup.
   */
  retainDir?: string;
  /** Page limit of DownloadDBLogFilePortion in bytes; default DEFAULT_PAGE_LIMIT_BYTES. */
  pageLimitBytes?: number;
  /**
   * Log bytes that are not valid UTF-8 cannot round-trip through the SDK (it decodes the response as
   * UTF-8). `reject` (default) answers such a page with the error `InvalidLogFileData` (HTTP 400);
   * `replace` sends it with U+FFFD replacement characters. Both count `invalidUtf8Pages`.
   */
  invalidUtf8?: 'reject' | 'replace';
  /**
   * How LogFileData travels. `escaped` (default, as RDS sends it): XML text with `&`, `<`, `>`
   * escaped. `cdata`: CDATA sections, which the AWS SDK parses about 70 times faster (its parser
   * reads escaped text one character at a time, ~150 ms per 1 MB page): identical data to the client,
   * much less client CPU. Either way the bytes round-trip exactly (README.md, "Byte exactness").
   */
  logDataEncoding?: 'escaped' | 'cdata';
  /** Faults active from the start (the rest default to off). */
  faults?: Partial<Faults>;
}

export interface HiddenFile {
  DBInstanceIdentifier: string;
  LogFileName: string;
}

/** Switchable misbehaviour; every field can be changed at run time. */
export interface Faults {
  /** Fraction [0, 1] of RDS API calls answered `Throttling: Rate exceeded` (HTTP 400). */
  throttleFraction: number;
  /** Actions throttling applies to; empty means all five. */
  throttleActions: RdsAction[];
  /** Seeds the generators deciding which calls are throttled and which pages truncated. */
  seed: number;
  /** Added before every RDS API answer. */
  latencyMs: number;
  /**
   * true (default, what RDS does): the last page of a download carries a Marker (pointing at the end
   * of the data) with `AdditionalDataPending` false. false: the last page carries no Marker.
   */
  nonEmptyFinalMarker: boolean;
  /**
   * Fraction [0, 1] of eligible pages that behave like RDS does when the requested lines exceed the
   * page limit: instead of stopping before the line that does not fit, the page is cut at the limit
   * (less the suffix) inside the line found there, TRUNCATION_SUFFIX is appended, and the Marker
   * points after that line. Eligible: the page stopped at the limit with lines still requested, and at
   * least one whole line precedes the cut line, so re-reading from the same Marker with NumberOfLines =
   * the whole lines received always gives whole lines.
   */
  truncatePagesFraction: number;
  /** Files treated as vanished: omitted from listings, downloads answer DBLogFileNotFoundFault. */
  hiddenFiles: HiddenFile[];
  /** Overrides the page limit while set. */
  pageLimitBytes: number | null;
}

export const NO_FAULTS: Readonly<Faults> = Object.freeze({
  throttleFraction: 0,
  throttleActions: [],
  seed: 1,
  latencyMs: 0,
  nonEmptyFinalMarker: true,
  truncatePagesFraction: 0,
  hiddenFiles: [],
  pageLimitBytes: null,
});

export interface FileStats {
  calls: number;
  /** UTF-8 bytes of LogFileData sent for this file (truncation text included). */
  bytesServed: number;
}

export interface EndpointStats {
  /** RDS API calls per action (throttled and failed calls included). */
  calls: Record<string, number>;
  /** Error answers per error code (Throttling included). */
  errors: Record<string, number>;
  throttled: number;
  /** UTF-8 bytes of LogFileData sent, over all files. */
  bytesServed: number;
  /** Successful DownloadDBLogFilePortion answers. */
  downloadPages: number;
  /**
   * Milliseconds from each successful DownloadDBLogFilePortion request reaching the endpoint to its
   * answer being handed to the socket, summed: divided by the pages and compared with a client's time
   * per page, it tells the endpoint's share of that time from the client's.
   */
  downloadServiceMs: number;
  /** Pages that ended with the truncation text (over-long line or the truncate fault). */
  truncatedPages: number;
  /**
   * Pages whose data is only whitespace with a line feed: the SDK's XML parser turns such text into ""
   * (audit logs have no blank lines, so this should stay 0).
   */
  unrepresentablePages: number;
  invalidUtf8Pages: number;
  /** Keyed by {@link perFileKey}. */
  perFile: Record<string, FileStats>;
}

/** The key of a file's counters in {@link EndpointStats.perFile}. */
export const perFileKey = (instanceId: string, logFileName: string): string => `${instanceId}/${logFileName}`;

/** A log file as the endpoint maps it (the admin API's `files` answer). */
export interface ServedFileInfo {
  DBInstanceIdentifier: string;
  LogFileName: string;
  /** Current path on disk; for a vanished file, where it was last seen. */
  path: string;
  /** Its hard link in the retain folder (RdsLogEndpointOptions.retainDir), which outlives a deletion. */
  retainedPath?: string;
  /** Bytes at the last scan. */
  size: number;
  /** Epoch ms of the last modification at the last scan. */
  lastWritten: number;
  /** The file no longer exists on disk (MariaDB deleted the rotation, or a fixture was removed). */
  gone: boolean;
  /** Hidden by the `hiddenFiles` fault. */
  hidden: boolean;
}
