/**
 * Validation of endpoint options (in-process callers and the CLI's JSON config) and of fault changes
 * (in-process and the admin API): a mistake fails loudly at start or at the call, with the field named.
 */
import { isAbsolute, resolve } from 'node:path';
import {
  ClusterConfig,
  Faults,
  HiddenFile,
  InstanceConfig,
  LogSourceConfig,
  MIN_PAGE_LIMIT_BYTES,
  RDS_ACTIONS,
  RdsAction,
  RdsLogEndpointOptions,
} from './types';

export class ConfigError extends Error {}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function expectObject(value: unknown, where: string): Json {
  if (!isObject(value)) throw new ConfigError(`${where} must be an object`);
  return value;
}

function expectString(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(`${where} must be a non-empty string`);
  return value;
}

function optionalString(value: unknown, where: string): string | undefined {
  return value === undefined ? undefined : expectString(value, where);
}

function expectNumber(value: unknown, where: string, { min, max }: { min: number; max?: number }): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (max !== undefined && value > max)) {
    throw new ConfigError(`${where} must be a number >= ${min}${max === undefined ? '' : ` and <= ${max}`}`);
  }
  return value;
}

function expectStringMap(value: unknown, where: string): Record<string, string> {
  const object = expectObject(value, where);
  for (const [key, entry] of Object.entries(object)) expectString(entry, `${where}.${key}`);
  return object as Record<string, string>;
}

function expectPageLimit(value: unknown, where: string): number {
  const limit = expectNumber(value, where, { min: MIN_PAGE_LIMIT_BYTES });
  if (!Number.isInteger(limit)) throw new ConfigError(`${where} must be an integer`);
  return limit;
}

function parseLogSource(value: unknown, where: string, baseDir: string): LogSourceConfig {
  const object = expectObject(value, where);
  const dir = resolve(baseDir, expectString(object.dir, `${where}.dir`));
  switch (object.kind) {
    case 'mariadb-audit':
      return { kind: 'mariadb-audit', dir, baseName: optionalString(object.baseName, `${where}.baseName`) };
    case 'directory':
      return { kind: 'directory', dir };
    default:
      throw new ConfigError(`${where}.kind must be 'mariadb-audit' or 'directory'`);
  }
}

function parseInstance(value: unknown, where: string, baseDir: string): InstanceConfig {
  const object = expectObject(value, where);
  if (object.writer !== undefined && typeof object.writer !== 'boolean') {
    throw new ConfigError(`${where}.writer must be a boolean`);
  }
  return {
    id: expectString(object.id, `${where}.id`),
    writer: object.writer as boolean | undefined,
    instanceClass: optionalString(object.instanceClass, `${where}.instanceClass`),
    availabilityZone: optionalString(object.availabilityZone, `${where}.availabilityZone`),
    logs: object.logs === undefined ? undefined : parseLogSource(object.logs, `${where}.logs`, baseDir),
    tags: object.tags === undefined ? undefined : expectStringMap(object.tags, `${where}.tags`),
  };
}

function parseCluster(value: unknown, where: string, baseDir: string): ClusterConfig {
  const object = expectObject(value, where);
  if (!Array.isArray(object.instances)) throw new ConfigError(`${where}.instances must be an array`);
  return {
    id: expectString(object.id, `${where}.id`),
    parameterGroup: expectString(object.parameterGroup, `${where}.parameterGroup`),
    engine: optionalString(object.engine, `${where}.engine`),
    engineVersion: optionalString(object.engineVersion, `${where}.engineVersion`),
    instances: object.instances.map((instance, index) => parseInstance(instance, `${where}.instances[${index}]`, baseDir)),
    tags: object.tags === undefined ? undefined : expectStringMap(object.tags, `${where}.tags`),
  };
}

/**
 * Options from JSON (the CLI's config file). Relative paths (log dirs, state file, retain folder) are resolved
 * against `baseDir`, the config file's folder.
 */
export function parseOptions(raw: unknown, baseDir: string): RdsLogEndpointOptions {
  const object = expectObject(raw, 'config');
  if (!Array.isArray(object.clusters)) throw new ConfigError('config.clusters must be an array');
  const groups = expectObject(object.parameterGroups, 'config.parameterGroups');
  const options: RdsLogEndpointOptions = {
    host: optionalString(object.host, 'config.host'),
    port: object.port === undefined ? undefined : expectNumber(object.port, 'config.port', { min: 0, max: 65535 }),
    region: optionalString(object.region, 'config.region'),
    accountId: optionalString(object.accountId, 'config.accountId'),
    clusters: object.clusters.map((cluster, index) => parseCluster(cluster, `config.clusters[${index}]`, baseDir)),
    parameterGroups: Object.fromEntries(
      Object.entries(groups).map(([name, values]) => [name, expectStringMap(values, `config.parameterGroups.${name}`)]),
    ),
    stateFile:
      object.stateFile === undefined ? undefined : resolve(baseDir, expectString(object.stateFile, 'config.stateFile')),
    retainDir:
      object.retainDir === undefined ? undefined : resolve(baseDir, expectString(object.retainDir, 'config.retainDir')),
    pageLimitBytes:
      object.pageLimitBytes === undefined ? undefined : expectPageLimit(object.pageLimitBytes, 'config.pageLimitBytes'),
    invalidUtf8: undefined,
    logDataEncoding: undefined,
    faults: object.faults === undefined ? undefined : parseFaults(object.faults),
  };
  if (object.invalidUtf8 !== undefined) {
    if (object.invalidUtf8 !== 'reject' && object.invalidUtf8 !== 'replace') {
      throw new ConfigError("config.invalidUtf8 must be 'reject' or 'replace'");
    }
    options.invalidUtf8 = object.invalidUtf8;
  }
  if (object.logDataEncoding !== undefined) {
    if (object.logDataEncoding !== 'escaped' && object.logDataEncoding !== 'cdata') {
      throw new ConfigError("config.logDataEncoding must be 'escaped' or 'cdata'");
    }
    options.logDataEncoding = object.logDataEncoding;
  }
  checkOptions(options);
  return options;
}

/** Cross-field checks, for options however they were built. */
export function checkOptions(options: RdsLogEndpointOptions): void {
  const instanceIds = new Set<string>();
  const clusterIds = new Set<string>();
  if (options.pageLimitBytes !== undefined) expectPageLimit(options.pageLimitBytes, 'pageLimitBytes');
  for (const cluster of options.clusters) {
    if (clusterIds.has(cluster.id)) throw new ConfigError(`duplicate cluster id ${cluster.id}`);
    clusterIds.add(cluster.id);
    if (!options.parameterGroups[cluster.parameterGroup]) {
      throw new ConfigError(`cluster ${cluster.id}: parameter group ${cluster.parameterGroup} is not in parameterGroups`);
    }
    if (cluster.instances.filter((instance) => instance.writer === true).length > 1) {
      throw new ConfigError(`cluster ${cluster.id} has more than one writer`);
    }
    for (const instance of cluster.instances) {
      if (instanceIds.has(instance.id)) throw new ConfigError(`duplicate instance id ${instance.id}`);
      instanceIds.add(instance.id);
      if (instance.logs && !isAbsolute(instance.logs.dir)) {
        throw new ConfigError(`instance ${instance.id}: logs.dir must be absolute (got ${instance.logs.dir})`);
      }
    }
  }
}

function parseHiddenFiles(value: unknown): HiddenFile[] {
  if (!Array.isArray(value)) throw new ConfigError('faults.hiddenFiles must be an array');
  return value.map((entry, index) => {
    const object = expectObject(entry, `faults.hiddenFiles[${index}]`);
    return {
      DBInstanceIdentifier: expectString(object.DBInstanceIdentifier, `faults.hiddenFiles[${index}].DBInstanceIdentifier`),
      LogFileName: expectString(object.LogFileName, `faults.hiddenFiles[${index}].LogFileName`),
    };
  });
}

/** A fault change (only the fields given); unknown fields are refused so a typo cannot pass silently. */
export function parseFaults(raw: unknown): Partial<Faults> {
  const object = expectObject(raw, 'faults');
  const faults: Partial<Faults> = {};
  for (const [key, value] of Object.entries(object)) {
    switch (key) {
      case 'throttleFraction':
        faults.throttleFraction = expectNumber(value, 'faults.throttleFraction', { min: 0, max: 1 });
        break;
      case 'truncatePagesFraction':
        faults.truncatePagesFraction = expectNumber(value, 'faults.truncatePagesFraction', { min: 0, max: 1 });
        break;
      case 'throttleActions':
        if (!Array.isArray(value) || !value.every((action) => RDS_ACTIONS.includes(action as RdsAction))) {
          throw new ConfigError(`faults.throttleActions must list actions among ${RDS_ACTIONS.join(', ')}`);
        }
        faults.throttleActions = value as RdsAction[];
        break;
      case 'seed':
        faults.seed = expectNumber(value, 'faults.seed', { min: 0 });
        break;
      case 'latencyMs':
        faults.latencyMs = expectNumber(value, 'faults.latencyMs', { min: 0 });
        break;
      case 'nonEmptyFinalMarker':
        if (typeof value !== 'boolean') throw new ConfigError('faults.nonEmptyFinalMarker must be a boolean');
        faults.nonEmptyFinalMarker = value;
        break;
      case 'hiddenFiles':
        faults.hiddenFiles = parseHiddenFiles(value);
        break;
      case 'pageLimitBytes':
        faults.pageLimitBytes = value === null ? null : expectPageLimit(value, 'faults.pageLimitBytes');
        break;
      default:
        throw new ConfigError(`unknown fault ${key}`);
    }
  }
  return faults;
}
