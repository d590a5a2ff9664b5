/**
 * The app's one typed configuration: its shape, its defaults and its validation.
 *
 * `parseConfig` is pure: bin/app.ts collects the raw values (CDK context) and hands them over, tests
 * call it directly. Values arrive either as JSON from cdk.json (numbers, booleans, arrays, objects) or
 * as strings from `-c key=value` ("true", "15", "A,B,C"); both forms are accepted. Anything invalid
 * fails with one error that names every bad key and the values it accepts.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import {
  ARCHIVE_STORAGE_CLASSES,
  type ArchiveStorageClass,
  MAX_RETENTION_DAYS,
  MIN_IMMEDIATELY_READABLE_DAYS,
  OBJECT_LOCK_MODES,
  type ObjectLockMode,
  resolveEvidenceRetention,
} from './constructs/evidence-bucket';

/** Settings of the BackupPipelineStack (the production half). */
export interface PipelineConfig {
  /** How often the scanner looks for audit-enabled instances and new log data. */
  readonly scheduleRateMinutes: number;
  /** Only these DB instance identifiers are backed up (empty: every audit-enabled instance). */
  readonly includeInstances: readonly string[];
  /** These DB instance identifiers are never backed up (wins over includeInstances). */
  readonly excludeInstances: readonly string[];
  /** Keep the backup bucket and the ledger when the stack is deleted. */
  readonly retainPipelineData: boolean;
  /**
   * Caps parallel RDS log downloads: the RDS API budget is shared account-wide. Undefined (context value
   * `none`): nothing reserved, for accounts whose Lambda concurrency quota leaves nothing to reserve
   * (new accounts often have 10); the stream's shards (one batch each) then bound the downloads.
   */
  readonly downloaderReservedConcurrency?: number;
  /** Retention of the pipeline's CloudWatch log groups. */
  readonly logRetentionDays: logs.RetentionDays;
  /** Object Lock mode of the evidence bucket; undefined: GOVERNANCE when data is retained, else OFF. */
  readonly objectLockMode?: ObjectLockMode;
  /** Days every backed-up object version is kept (and locked), then expired. */
  readonly retentionDays: number;
  /** Storage class objects move to after `archiveAfterDays` (NONE: they stay in S3 Standard). */
  readonly archiveStorageClass: ArchiveStorageClass;
  /** Days in S3 Standard before the archive transition (at least 90: PCI DSS 10.5.1). */
  readonly archiveAfterDays: number;
  /** The one IAM role allowed to manage locks (and, outside COMPLIANCE, to purge). */
  readonly retentionAdminRoleArn?: string;
  /** Email address subscribed to the alarm topic. */
  readonly alarmEmail?: string;
  /** Backup lag (age of the oldest byte not yet stored) above which the lag alarm fires. */
  readonly backupLagAlarmMinutes: number;
}

/** Lab host SSH access; absent means Session Manager only and no inbound rule at all. */
export interface SshAccess {
  readonly cidr: string;
  readonly keyPairName: string;
}

export interface AppConfig {
  /** Prefix of every stack name and of the lab's RDS identifiers. */
  readonly stackPrefix: string;
  /** Full Aurora engine version, e.g. `8.0.mysql_aurora.3.10.4`. */
  readonly auroraEngineVersion: string;
  /** RDS instance class of the writer and the reader, e.g. `db.t4g.medium`. */
  readonly dbInstanceClass: string;
  /** Value of `server_audit_events`, in the order given. */
  readonly auditEvents: readonly AuditEvent[];
  /** EC2 instance type of the lab host (arm64 only: the AMI is arm64). */
  readonly labInstanceType: string;
  readonly ssh?: SshAccess;
  /** Lab teardown removes the cluster without a final snapshot and without deletion protection. */
  readonly destroyLabDataOnTeardown: boolean;
  readonly pipeline: PipelineConfig;
}

/** Event classes Aurora MySQL advanced auditing documents for `server_audit_events`. */
export const AUDIT_EVENTS = ['CONNECT', 'QUERY', 'QUERY_DCL', 'QUERY_DDL', 'QUERY_DML', 'TABLE'] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

const AURORA_FULL_VERSION_PREFIX = '8.0.mysql_aurora.';

/**
 * Aurora MySQL 3 minor lines that aws-cdk-lib still lists but marks "no longer supported by Amazon RDS":
 * creating a cluster on them fails at deploy time, so they are refused at synth time instead.
 */
const RETIRED_AURORA_MINOR_LINES = ['3.01', '3.02', '3.03', '3.05', '3.06', '3.07'];

/** Aurora MySQL 3 versions (`3.xx.y`) that the installed aws-cdk-lib offers and RDS still supports. */
export const SUPPORTED_AURORA_VERSIONS: readonly string[] = Object.getOwnPropertyNames(rds.AuroraMysqlEngineVersion)
  .filter((name) => name.startsWith('VER_3_'))
  .map((name) => (rds.AuroraMysqlEngineVersion as unknown as Record<string, rds.AuroraMysqlEngineVersion>)[name])
  .map((version) => version.auroraMysqlFullVersion.slice(AURORA_FULL_VERSION_PREFIX.length))
  .filter((version) => !RETIRED_AURORA_MINOR_LINES.some((line) => version.startsWith(`${line}.`)))
  .sort();

/** Instance families Aurora MySQL 3 runs on (db.t3/db.t4g only in medium and large). */
const AURORA_INSTANCE_FAMILIES = ['t3', 't4g', 'r5', 'r6g', 'r6i', 'r7g', 'r7i', 'r8g', 'x2g'];

/** Retention values CloudWatch Logs accepts, in days (never-expire excluded on purpose). */
export const LOG_RETENTION_DAYS: readonly number[] = Object.values(logs.RetentionDays)
  .filter((value): value is number => typeof value === 'number' && value !== logs.RetentionDays.INFINITE)
  .sort((a, b) => a - b);

export const DEFAULT_CONFIG: AppConfig = {
  stackPrefix: 'AuditLab',
  // 3.10 is an Aurora MySQL long-term-support line; 3.10.4 is its newest patch the CDK offers.
  auroraEngineVersion: `${AURORA_FULL_VERSION_PREFIX}3.10.4`,
  dbInstanceClass: 'db.t4g.medium',
  auditEvents: [...AUDIT_EVENTS],
  labInstanceType: 't4g.micro',
  destroyLabDataOnTeardown: true,
  pipeline: {
    scheduleRateMinutes: 15,
    includeInstances: [],
    excludeInstances: [],
    retainPipelineData: true,
    downloaderReservedConcurrency: 2,
    logRetentionDays: logs.RetentionDays.ONE_MONTH,
    retentionDays: 365,
    archiveStorageClass: 'GLACIER_IR',
    archiveAfterDays: MIN_IMMEDIATELY_READABLE_DAYS,
    backupLagAlarmMinutes: 120,
  },
};

/** Top-level context keys the app reads. */
export const CONFIG_KEYS = [
  'stackPrefix',
  'auroraEngineVersion',
  'dbInstanceClass',
  'auditEvents',
  'labInstanceType',
  'sshCidr',
  'keyPairName',
  'destroyLabDataOnTeardown',
  'pipeline',
] as const;

/** Keys of the `pipeline` section; each may also be given flat as `pipeline.<key>` (e.g. `-c pipeline.scheduleRateMinutes=5`). */
export const PIPELINE_CONFIG_KEYS = [
  'scheduleRateMinutes',
  'includeInstances',
  'excludeInstances',
  'retainPipelineData',
  'downloaderReservedConcurrency',
  'logRetentionDays',
  'objectLockMode',
  'retentionDays',
  'archiveStorageClass',
  'archiveAfterDays',
  'retentionAdminRoleArn',
  'alarmEmail',
  'backupLagAlarmMinutes',
] as const;

/** Every context key bin/app.ts should collect. */
export const CONTEXT_KEYS: readonly string[] = [...CONFIG_KEYS, ...PIPELINE_CONFIG_KEYS.map((key) => `pipeline.${key}`)];

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration (CDK context):\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Raised inside one key's parser; parseConfig collects them so every bad key is reported at once. */
class KeyProblem extends Error {}

function problem(key: string, detail: string, accepted: string): KeyProblem {
  return new KeyProblem(`"${key}": ${detail}. Accepted values: ${accepted}.`);
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `"${value}"` : JSON.stringify(value);
}

function parseString(key: string, value: unknown, accepted: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw problem(key, `expected a non-empty string, got ${describe(value)}`, accepted);
  }
  return value;
}

function parseBoolean(key: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw problem(key, `expected a boolean, got ${describe(value)}`, 'true, false');
}

/** A whole number given as a JSON number or as a decimal string. */
function toInteger(value: unknown): number {
  if (typeof value === 'number') return value;
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
}

/** `value` as a whole number from `min` to `max`, or a problem that lists `accepted`. */
function integerInRange(key: string, value: unknown, min: number, max: number, accepted: string): number {
  const number = toInteger(value);
  if (!Number.isInteger(number)) throw problem(key, `expected an integer, got ${describe(value)}`, accepted);
  if (number < min || number > max) throw problem(key, `${number} is out of range`, accepted);
  return number;
}

function integerFrom(min: number, max: number): (key: string, value: unknown) => number {
  return (key, value) => integerInRange(key, value, min, max, `an integer from ${min} to ${max}`);
}

/** The context value that reserves no concurrency for the downloader. */
const NO_RESERVED_CONCURRENCY = 'none';

/** Reserved concurrency: a whole number in range, or `none` (undefined: nothing reserved). */
function reservedConcurrency(min: number, max: number): (key: string, value: unknown) => number | undefined {
  return (key, value) =>
    value === NO_RESERVED_CONCURRENCY
      ? undefined
      : integerInRange(key, value, min, max, `an integer from ${min} to ${max}, or "${NO_RESERVED_CONCURRENCY}" (nothing reserved)`);
}

/** A list given as a JSON array of strings or as one comma-separated string ("" is the empty list). */
function parseList(key: string, value: unknown, accepted: string): string[] {
  let items: unknown[];
  if (Array.isArray(value)) items = value;
  else if (typeof value === 'string') items = value === '' ? [] : value.split(',');
  else throw problem(key, `expected a list, got ${describe(value)}`, accepted);
  const strings = items.map((item) => {
    if (typeof item !== 'string') throw problem(key, `list item ${describe(item)} is not a string`, accepted);
    return item;
  });
  const duplicate = strings.find((item, index) => strings.indexOf(item) !== index);
  if (duplicate !== undefined) throw problem(key, `"${duplicate}" is listed twice`, accepted);
  return strings;
}

// Stack names allow letters, digits and hyphens; the prefix also names RDS resources (lower-cased), which
// forbid a trailing hyphen and two hyphens in a row, and must leave room for "-cluster" within 63 chars.
const STACK_PREFIX = /^[A-Za-z](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,31}$/;

function parseStackPrefix(key: string, value: unknown): string {
  const accepted = '1 to 32 letters, digits or single hyphens, starting with a letter and not ending with a hyphen';
  const prefix = parseString(key, value, accepted);
  if (!STACK_PREFIX.test(prefix)) throw problem(key, `"${prefix}" is not a valid prefix`, accepted);
  return prefix;
}

function parseAuroraVersion(key: string, value: unknown): string {
  const accepted = `${SUPPORTED_AURORA_VERSIONS.join(', ')} (optionally written as ${AURORA_FULL_VERSION_PREFIX}<version>)`;
  const given = parseString(key, value, accepted);
  const short = given.startsWith(AURORA_FULL_VERSION_PREFIX) ? given.slice(AURORA_FULL_VERSION_PREFIX.length) : given;
  if (!SUPPORTED_AURORA_VERSIONS.includes(short)) {
    throw problem(key, `"${given}" is not an Aurora MySQL 3 version this app supports`, accepted);
  }
  return `${AURORA_FULL_VERSION_PREFIX}${short}`;
}

function parseDbInstanceClass(key: string, value: unknown): string {
  const accepted =
    `db.<family>.<size> with family one of ${AURORA_INSTANCE_FAMILIES.join(', ')} ` +
    '(db.t3/db.t4g: medium or large only), e.g. db.t4g.medium, db.r7g.large';
  const given = parseString(key, value, accepted);
  const match = /^db\.([a-z0-9]+)\.(medium|large|\d*xlarge)$/.exec(given);
  const family = match?.[1];
  const size = match?.[2];
  const burstable = family === 't3' || family === 't4g';
  if (!family || !AURORA_INSTANCE_FAMILIES.includes(family) || (burstable && size !== 'medium' && size !== 'large')) {
    throw problem(key, `"${given}" is not an Aurora MySQL 3 instance class`, accepted);
  }
  return given;
}

function parseAuditEvents(key: string, value: unknown): AuditEvent[] {
  const accepted = `a non-empty comma-separated list (no spaces, upper case, no duplicates) of ${AUDIT_EVENTS.join(', ')}`;
  const events = parseList(key, value, accepted);
  if (events.length === 0) throw problem(key, 'the list is empty', accepted);
  const documented = AUDIT_EVENTS as readonly string[];
  for (const event of events) {
    if (documented.includes(event)) continue;
    const hint = /\s/.test(event)
      ? ' (remove the spaces)'
      : documented.includes(event.toUpperCase())
        ? ` (write it in upper case: ${event.toUpperCase()})`
        : '';
    throw problem(key, `"${event}" is not a documented audit event${hint}`, accepted);
  }
  return events as AuditEvent[];
}

function parseLabInstanceType(key: string, value: unknown): string {
  const accepted = 'an arm64 (Graviton) EC2 instance type, e.g. t4g.micro, t4g.small, m7g.medium';
  const given = parseString(key, value, accepted);
  let architecture: ec2.InstanceArchitecture;
  try {
    architecture = new ec2.InstanceType(given).architecture;
  } catch {
    throw problem(key, `"${given}" is not an EC2 instance type`, accepted);
  }
  if (architecture !== ec2.InstanceArchitecture.ARM_64) {
    throw problem(key, `"${given}" is not arm64 (the lab host AMI is Amazon Linux 2023 arm64)`, accepted);
  }
  return given;
}

function parseCidr(key: string, value: unknown): string {
  const accepted = 'an IPv4 network in CIDR notation with a prefix length of 1 to 32, e.g. 203.0.113.7/32';
  const given = parseString(key, value, accepted);
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(given);
  if (!match) throw problem(key, `"${given}" is not IPv4 CIDR notation`, accepted);
  const octets = match.slice(1, 5).map(Number);
  const length = Number(match[5]);
  if (octets.some((octet) => octet > 255) || length > 32) {
    throw problem(key, `"${given}" is not IPv4 CIDR notation`, accepted);
  }
  if (length === 0) throw problem(key, `"${given}" would open SSH to the whole internet`, accepted);
  const address = octets.reduce((sum, octet) => sum * 256 + octet, 0);
  const hostBits = 2 ** (32 - length);
  if (address % hostBits !== 0) {
    const network = address - (address % hostBits);
    const dotted = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join('.');
    throw problem(key, `"${given}" has host bits set (did you mean ${dotted}/${length}?)`, accepted);
  }
  return given;
}

function parseKeyPairName(key: string, value: unknown): string {
  const accepted = 'the name of an existing EC2 key pair (1 to 255 printable ASCII characters)';
  const given = parseString(key, value, accepted);
  if (!/^[\x20-\x7e]{1,255}$/.test(given)) throw problem(key, `"${given}" is not a key pair name`, accepted);
  return given;
}

// RDS DB instance identifiers: 1-63 letters, digits or hyphens, first a letter, no trailing or double
// hyphen. RDS stores and reports them in lower case, so an upper-case filter would never match.
const DB_INSTANCE_IDENTIFIER = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,62}$/;

function parseInstanceIdentifiers(key: string, value: unknown): string[] {
  const accepted =
    'a comma-separated list of RDS DB instance identifiers (lower-case letters, digits and single hyphens, ' +
    'starting with a letter, at most 63 characters)';
  const ids = parseList(key, value, accepted);
  for (const id of ids) {
    if (!DB_INSTANCE_IDENTIFIER.test(id)) throw problem(key, `"${id}" is not a DB instance identifier`, accepted);
  }
  return ids;
}

function parseLogRetention(key: string, value: unknown): logs.RetentionDays {
  const accepted = LOG_RETENTION_DAYS.join(', ');
  const days = toInteger(value);
  if (!LOG_RETENTION_DAYS.includes(days)) {
    throw problem(key, `${describe(value)} is not a CloudWatch Logs retention period`, accepted);
  }
  return days as logs.RetentionDays;
}

function oneOf<T extends string>(choices: readonly T[]): (key: string, value: unknown) => T {
  return (key, value) => {
    const accepted = choices.join(', ');
    const given = parseString(key, value, accepted);
    if (!(choices as readonly string[]).includes(given)) throw problem(key, `"${given}" is not one of them`, accepted);
    return given as T;
  };
}

function parseRoleArn(key: string, value: unknown): string {
  const accepted = 'an IAM role ARN, arn:aws:iam::<12-digit account>:role/<name>';
  const given = parseString(key, value, accepted);
  if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@\/-]{1,512}$/.test(given)) {
    throw problem(key, `"${given}" is not an IAM role ARN`, accepted);
  }
  return given;
}

/** An email address, or "" for none (so `-c pipeline.alarmEmail=` can clear a cdk.json value). */
function parseOptionalEmail(key: string, value: unknown): string | undefined {
  if (value === '') return undefined;
  const accepted = 'an email address (name@example.com), or empty for no subscription';
  const given = parseString(key, value, accepted);
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(given)) throw problem(key, `"${given}" is not an email address`, accepted);
  return given;
}

/** The `pipeline` section as a JSON object (cdk.json) or a JSON string (`-c 'pipeline={...}'`). */
function parsePipelineSection(key: string, value: unknown): Record<string, unknown> {
  const accepted = `an object with keys ${PIPELINE_CONFIG_KEYS.join(', ')}`;
  let section: unknown = value;
  if (typeof value === 'string') {
    try {
      section = JSON.parse(value);
    } catch {
      throw problem(key, 'is not valid JSON', accepted);
    }
  }
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    throw problem(key, `expected an object, got ${describe(value)}`, accepted);
  }
  const unknown = Object.keys(section).filter((key) => !(PIPELINE_CONFIG_KEYS as readonly string[]).includes(key));
  if (unknown.length > 0) throw problem(key, `unknown key(s) ${unknown.join(', ')}`, accepted);
  return section as Record<string, unknown>;
}

/**
 * Validates raw context values (absent or undefined keys take their defaults) into an AppConfig.
 * Throws ConfigError naming every invalid key and its accepted values.
 */
export function parseConfig(raw: Record<string, unknown>): AppConfig {
  const problems: string[] = [];
  /** Parses one value (undefined keeps the default), collecting its problem instead of stopping. */
  function attempt<T>(key: string, value: unknown, parse: (key: string, value: unknown) => T, fallback: T): T {
    if (value === undefined) return fallback;
    try {
      return parse(key, value);
    } catch (error) {
      if (!(error instanceof KeyProblem)) throw error;
      problems.push(error.message);
      return fallback;
    }
  }
  const read = <T>(key: string, parse: (key: string, value: unknown) => T, fallback: T): T =>
    attempt(key, raw[key], parse, fallback);

  const stackPrefix = read('stackPrefix', parseStackPrefix, DEFAULT_CONFIG.stackPrefix);
  const auroraEngineVersion = read('auroraEngineVersion', parseAuroraVersion, DEFAULT_CONFIG.auroraEngineVersion);
  const dbInstanceClass = read('dbInstanceClass', parseDbInstanceClass, DEFAULT_CONFIG.dbInstanceClass);
  const auditEvents = read('auditEvents', parseAuditEvents, [...DEFAULT_CONFIG.auditEvents]);
  const labInstanceType = read('labInstanceType', parseLabInstanceType, DEFAULT_CONFIG.labInstanceType);
  const sshCidr = read<string | undefined>('sshCidr', parseCidr, undefined);
  const keyPairName = read<string | undefined>('keyPairName', parseKeyPairName, undefined);
  if ((raw.sshCidr === undefined) !== (raw.keyPairName === undefined)) {
    problems.push(
      '"sshCidr"/"keyPairName": SSH access needs both or neither. Accepted values: both set (an IPv4 CIDR and an ' +
        'existing key pair name) or both unset (Session Manager only, no inbound rule).',
    );
  }
  const destroyLabDataOnTeardown = read('destroyLabDataOnTeardown', parseBoolean, DEFAULT_CONFIG.destroyLabDataOnTeardown);

  const section = read('pipeline', parsePipelineSection, {});
  // A flat `pipeline.<key>` (from -c) wins over the same key inside the section (from cdk.json).
  const readPipeline = <T>(name: string, parse: (key: string, value: unknown) => T, fallback: T): T =>
    attempt(`pipeline.${name}`, raw[`pipeline.${name}`] ?? section[name], parse, fallback);
  const defaults = DEFAULT_CONFIG.pipeline;
  const pipeline: PipelineConfig = {
    scheduleRateMinutes: readPipeline('scheduleRateMinutes', integerFrom(1, 1440), defaults.scheduleRateMinutes),
    includeInstances: readPipeline('includeInstances', parseInstanceIdentifiers, [...defaults.includeInstances]),
    excludeInstances: readPipeline('excludeInstances', parseInstanceIdentifiers, [...defaults.excludeInstances]),
    retainPipelineData: readPipeline('retainPipelineData', parseBoolean, defaults.retainPipelineData),
    downloaderReservedConcurrency: readPipeline('downloaderReservedConcurrency', reservedConcurrency(1, 100), defaults.downloaderReservedConcurrency),
    logRetentionDays: readPipeline('logRetentionDays', parseLogRetention, defaults.logRetentionDays),
    objectLockMode: readPipeline<ObjectLockMode | undefined>('objectLockMode', oneOf(OBJECT_LOCK_MODES), undefined),
    retentionDays: readPipeline('retentionDays', integerFrom(1, MAX_RETENTION_DAYS), defaults.retentionDays),
    archiveStorageClass: readPipeline('archiveStorageClass', oneOf(ARCHIVE_STORAGE_CLASSES), defaults.archiveStorageClass),
    archiveAfterDays: readPipeline(
      'archiveAfterDays',
      integerFrom(MIN_IMMEDIATELY_READABLE_DAYS, MAX_RETENTION_DAYS),
      defaults.archiveAfterDays,
    ),
    retentionAdminRoleArn: readPipeline<string | undefined>('retentionAdminRoleArn', parseRoleArn, undefined),
    alarmEmail: readPipeline('alarmEmail', parseOptionalEmail, undefined),
    // Under 24 h: RDS rotates audit files away after about a day, so a later alarm comes too late.
    backupLagAlarmMinutes: readPipeline('backupLagAlarmMinutes', integerFrom(1, 1439), defaults.backupLagAlarmMinutes),
  };
  // Combinations (lock vs. teardown, archive vs. expiry) are judged by the construct's own rules.
  try {
    resolveEvidenceRetention(pipeline, pipeline.retainPipelineData);
  } catch (error) {
    problems.push(
      `"pipeline.objectLockMode"/"pipeline.retentionDays"/"pipeline.archiveAfterDays"/"pipeline.retainPipelineData": ` +
        `${(error as Error).message}. Accepted values: objectLockMode OFF when retainPipelineData is false; ` +
        'archiveAfterDays below retentionDays unless archiveStorageClass is NONE.',
    );
  }
  const both = pipeline.includeInstances.filter((id) => pipeline.excludeInstances.includes(id));
  if (both.length > 0) {
    problems.push(
      `"pipeline.includeInstances"/"pipeline.excludeInstances": ${both.join(', ')} listed in both. ` +
        'Accepted values: disjoint lists.',
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    stackPrefix,
    auroraEngineVersion,
    dbInstanceClass,
    auditEvents,
    labInstanceType,
    ...(sshCidr !== undefined && keyPairName !== undefined ? { ssh: { cidr: sshCidr, keyPairName } } : {}),
    destroyLabDataOnTeardown,
    pipeline,
  };
}
