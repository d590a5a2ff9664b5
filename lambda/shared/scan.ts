/**
 * Scanner core: find every Aurora MySQL instance (writers and readers) whose cluster has advanced
 * auditing on and queue one ScanMessage per instance for the detector.
 */
import {
  type DBInstance,
  type RDSClient,
  paginateDescribeDBClusterParameters,
  paginateDescribeDBClusters,
  paginateDescribeDBInstances,
} from '@aws-sdk/client-rds';
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { ScannerConfig } from './config';
import type { ScanMessage } from './contract';

export const AURORA_MYSQL_ENGINE = 'aurora-mysql';
const AUDIT_PARAMETER = 'server_audit_logging';
const AUDIT_ON_VALUES: ReadonlySet<string> = new Set(['1', 'ON']);
/** SQS SendMessageBatch takes at most ten entries. */
const SQS_BATCH_SIZE = 10;
const SEND_ATTEMPTS = 4;
const SEND_BACKOFF_MS = 200;

export interface ScanDependencies {
  rds: RDSClient;
  sqs: SQSClient;
  config: ScannerConfig;
  logger: Logger;
  now: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface ScanSummary {
  auroraMySqlInstances: number;
  skippedByConfig: string[];
  auditDisabled: string[];
  withoutCluster: string[];
  queued: string[];
}

export class QueueSendError extends Error {
  constructor(failed: readonly string[]) {
    super(`could not queue scan messages for ${failed.length} instance(s) after retries: ${failed.join(', ')}`);
    this.name = 'QueueSendError';
  }
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isAuditOn(value: string | undefined): boolean {
  return value !== undefined && AUDIT_ON_VALUES.has(value.trim().toUpperCase());
}

/** Which instances to consider (the scanner's and the reconciler's INCLUDE/EXCLUDE_INSTANCES). */
export type InstanceFilter = Pick<ScannerConfig, 'includeInstances' | 'excludeInstances'>;

export interface AuditLogSource {
  DBInstanceIdentifier: string;
  DBClusterIdentifier: string;
}

export interface Discovery {
  summary: Omit<ScanSummary, 'queued'>;
  /** Audit-enabled Aurora MySQL instances the filter admits, writers and readers alike. */
  sources: AuditLogSource[];
}

/**
 * Every Aurora MySQL instance whose cluster parameter group has advanced auditing on and that the
 * filter admits. The scanner queues them; the verifier lists their files.
 */
export async function discoverAuditEnabledInstances(
  rds: RDSClient,
  filter: InstanceFilter,
  logger: Pick<Logger, 'warn'>,
): Promise<Discovery> {
  const summary: Discovery['summary'] = {
    auroraMySqlInstances: 0,
    skippedByConfig: [],
    auditDisabled: [],
    withoutCluster: [],
  };
  const sources: AuditLogSource[] = [];

  const candidates: DBInstance[] = [];
  for await (const page of paginateDescribeDBInstances({ client: rds }, {})) {
    for (const instance of page.DBInstances ?? []) {
      const id = instance.DBInstanceIdentifier;
      if (!id || instance.Engine !== AURORA_MYSQL_ENGINE) continue;
      summary.auroraMySqlInstances++;
      const included = filter.includeInstances.size === 0 || filter.includeInstances.has(id);
      if (!included || filter.excludeInstances.has(id)) summary.skippedByConfig.push(id);
      else candidates.push(instance);
    }
  }
  if (candidates.length === 0) return { summary, sources };

  const parameterGroupOfCluster = new Map<string, string>();
  for await (const page of paginateDescribeDBClusters({ client: rds }, {})) {
    for (const cluster of page.DBClusters ?? []) {
      if (cluster.DBClusterIdentifier && cluster.DBClusterParameterGroup) {
        parameterGroupOfCluster.set(cluster.DBClusterIdentifier, cluster.DBClusterParameterGroup);
      }
    }
  }

  // Clusters usually share a few parameter groups: look each up once per invocation.
  const auditOfGroup = new Map<string, Promise<boolean>>();
  const auditEnabled = (group: string): Promise<boolean> => {
    let known = auditOfGroup.get(group);
    if (!known) {
      known = parameterGroupHasAuditOn(rds, group);
      auditOfGroup.set(group, known);
    }
    return known;
  };

  for (const instance of candidates) {
    const id = instance.DBInstanceIdentifier as string;
    const clusterId = instance.DBClusterIdentifier;
    const group = clusterId ? parameterGroupOfCluster.get(clusterId) : undefined;
    if (!clusterId || !group) {
      summary.withoutCluster.push(id);
      logger.warn('aurora-mysql instance without a described cluster parameter group; skipped', {
        instance: id,
        cluster: clusterId,
      });
      continue;
    }
    if (!(await auditEnabled(group))) {
      summary.auditDisabled.push(id);
      continue;
    }
    sources.push({ DBInstanceIdentifier: id, DBClusterIdentifier: clusterId });
  }
  return { summary, sources };
}

export async function scanAuditEnabledInstances(deps: ScanDependencies): Promise<ScanSummary> {
  const { rds, config, logger } = deps;
  const discovery = await discoverAuditEnabledInstances(rds, config, logger);
  const summary: ScanSummary = { ...discovery.summary, queued: [] };
  if (discovery.sources.length === 0) {
    logger.info('no audit log sources to queue', { summary });
    return summary;
  }
  const scannedAt = deps.now();
  const messages: ScanMessage[] = discovery.sources.map((source) => ({ ...source, ScannedAt: scannedAt }));
  for (let i = 0; i < messages.length; i += SQS_BATCH_SIZE) {
    await sendBatch(deps, messages.slice(i, i + SQS_BATCH_SIZE));
  }
  summary.queued = messages.map((message) => message.DBInstanceIdentifier);
  logger.info('queued audit log sources', { summary });
  return summary;
}

async function parameterGroupHasAuditOn(rds: RDSClient, group: string): Promise<boolean> {
  const pages = paginateDescribeDBClusterParameters({ client: rds }, { DBClusterParameterGroupName: group });
  for await (const page of pages) {
    for (const parameter of page.Parameters ?? []) {
      if (parameter.ParameterName === AUDIT_PARAMETER) return isAuditOn(parameter.ParameterValue);
    }
  }
  return false;
}

/** Sends one batch, re-sending only the entries SQS reports as failed; throws if any remain. */
async function sendBatch(deps: ScanDependencies, batch: readonly ScanMessage[]): Promise<void> {
  const sleep = deps.sleep ?? defaultSleep;
  let entries: SendMessageBatchRequestEntry[] = batch.map((message, index) => ({
    Id: `m${index}`,
    MessageBody: JSON.stringify(message),
  }));
  for (let attempt = 1; ; attempt++) {
    const result = await deps.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: deps.config.scanQueueUrl, Entries: entries }),
    );
    const failedIds = new Set((result.Failed ?? []).map((failure) => failure.Id));
    if (failedIds.size === 0) return;
    deps.logger.warn('SQS rejected scan messages', { attempt, failed: result.Failed });
    entries = entries.filter((entry) => failedIds.has(entry.Id));
    if (attempt >= SEND_ATTEMPTS) {
      throw new QueueSendError(entries.map((entry) => batch[Number(entry.Id?.slice(1))].DBInstanceIdentifier));
    }
    await sleep(SEND_BACKOFF_MS * 2 ** (attempt - 1));
  }
}
