/**
 * Typed, validated handler configuration. Each handler module calls its reader ONCE at module load
 * with `process.env`, so the environment must be complete before the handler module is imported
 * (Lambda guarantees it; the local lab and tests must set it first). The core modules receive these
 * objects as arguments and never read the environment themselves.
 */
import { tmpdir } from 'node:os';
import { ENV } from './contract';

type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`environment variable ${name} is required`);
  return value;
}

function positiveInteger(env: Env, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(`environment variable ${name} must be a positive integer, got "${raw}"`);
  }
  return value;
}

/** Comma- or whitespace-separated identifiers; empty or unset means an empty set. */
function identifierSet(env: Env, name: string): ReadonlySet<string> {
  const raw = env[name] ?? '';
  return new Set(raw.split(/[\s,]+/).filter((id) => id.length > 0));
}

const MINUTE_MS = 60_000;
const MIB = 1024 * 1024;

/** Defaults used when the optional variables are unset (the stack may override them). */
export const CONFIG_DEFAULTS = {
  /** A few times Lambda's 15-minute maximum timeout: a claim this old has no living holder. */
  staleClaimMs: 45 * MINUTE_MS,
  failedRetryBackoffMs: 5 * MINUTE_MS,
  /** Time kept in reserve to PUT the last segment and checkpoint before the function times out. */
  safetyMarginMs: 60_000,
  /** Aurora rotates audit files around 100 MB, so a file backed up in one pass is one object. */
  maxObjectBytes: 128 * MIB,
  /** The stack's reconcile schedule runs hourly. */
  reconcileRateMs: 60 * MINUTE_MS,
  /** Every stored object is verified at least once a day; what changed within the day, every run. */
  verifySweepMs: 24 * 60 * MINUTE_MS,
} as const;

export interface ScannerConfig {
  scanQueueUrl: string;
  /** Instance identifiers to back up; empty means every audit-enabled instance. */
  includeInstances: ReadonlySet<string>;
  excludeInstances: ReadonlySet<string>;
}

export interface DetectorConfig {
  ledgerTableName: string;
  staleClaimMs: number;
  failedRetryBackoffMs: number;
}

export interface DownloaderConfig {
  ledgerTableName: string;
  idempotencyTableName: string;
  bucketName: string;
  safetyMarginMs: number;
  maxObjectBytes: number;
  spoolDir: string;
}

export interface ReconcilerConfig {
  ledgerTableName: string;
  bucketName: string;
  /** Instances whose files RDS lists are compared with the ledger (the scanner's filter). */
  includeInstances: ReadonlySet<string>;
  excludeInstances: ReadonlySet<string>;
  /** PENDING, IN_PROGRESS or an open intent unchanged this long is stale (the detector's stale claim). */
  staleMs: number;
  /** FAILED items are re-driven once the detector's backoff for them has passed. */
  failedRetryBackoffMs: number;
  /** Scheduled runs verify the objects of DONE items that changed this recently, plus their sweep slice. */
  verifyWindowMs: number;
  /** Every object is verified at least once in this period, by scheduled runs in turn. */
  verifySweepMs: number;
  /** How often scheduled runs come (the schedule's rate). */
  reconcileRateMs: number;
}

export function readScannerConfig(env: Env): ScannerConfig {
  return {
    scanQueueUrl: required(env, ENV.scanQueueUrl),
    includeInstances: identifierSet(env, ENV.includeInstances),
    excludeInstances: identifierSet(env, ENV.excludeInstances),
  };
}

export function readDetectorConfig(env: Env): DetectorConfig {
  return {
    ledgerTableName: required(env, ENV.ledgerTable),
    staleClaimMs: positiveInteger(env, ENV.staleClaimMs, CONFIG_DEFAULTS.staleClaimMs),
    failedRetryBackoffMs: positiveInteger(env, ENV.failedRetryBackoffMs, CONFIG_DEFAULTS.failedRetryBackoffMs),
  };
}

export function readDownloaderConfig(env: Env): DownloaderConfig {
  return {
    ledgerTableName: required(env, ENV.ledgerTable),
    idempotencyTableName: required(env, ENV.idempotencyTable),
    bucketName: required(env, ENV.bucket),
    safetyMarginMs: positiveInteger(env, ENV.safetyMarginMs, CONFIG_DEFAULTS.safetyMarginMs),
    maxObjectBytes: positiveInteger(env, ENV.maxObjectBytes, CONFIG_DEFAULTS.maxObjectBytes),
    spoolDir: env[ENV.spoolDir]?.trim() || tmpdir(),
  };
}

export function readReconcilerConfig(env: Env): ReconcilerConfig {
  const verifySweepMs = positiveInteger(env, ENV.verifySweepMs, CONFIG_DEFAULTS.verifySweepMs);
  return {
    ledgerTableName: required(env, ENV.ledgerTable),
    bucketName: required(env, ENV.bucket),
    includeInstances: identifierSet(env, ENV.includeInstances),
    excludeInstances: identifierSet(env, ENV.excludeInstances),
    staleMs: positiveInteger(env, ENV.staleClaimMs, CONFIG_DEFAULTS.staleClaimMs),
    failedRetryBackoffMs: positiveInteger(env, ENV.failedRetryBackoffMs, CONFIG_DEFAULTS.failedRetryBackoffMs),
    verifySweepMs,
    verifyWindowMs: positiveInteger(env, ENV.verifyWindowMs, verifySweepMs),
    reconcileRateMs: positiveInteger(env, ENV.reconcileRateMs, CONFIG_DEFAULTS.reconcileRateMs),
  };
}
