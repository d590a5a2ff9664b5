/**
 * Brings the local lab up and down: MariaDB writer and reader with server_audit, moto_server with the
 * pipeline's resources, the RDS log endpoint serving the audit folders as an Aurora cluster, and the
 * local Lambda service running the real handlers. `npm run lab` and the fault suite both start here.
 *
 * Every piece can be replaced by an endpoint of your own (an RDS-API-compatible service, an AWS
 * endpoint): the handlers only ever see standard SDK endpoint settings.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_CONFIG } from '../../lib/config';
import { UsageError } from '../cli/args';
import { AwsClients, AwsEndpoint, createClients, createPipelineResources, LocalResources, startMoto } from './aws-services';
import { AUDIT_FILE_BASENAME, AuditSettings, MariaDbInstance, MAX_AUDIT_FILE_ROTATIONS } from './mariadb';
import { preflight } from './preflight';
import { checkRdsEndpointAnswers } from './rds-api-source';
import { ProcessRegistry } from './processes';
import { startRdsLogEndpoint } from './rds-endpoint';
import type { RdsLogEndpoint, RdsLogEndpointOptions } from './rds-endpoint';
import type { InstanceConfig } from './rds-endpoint/types';
import { LAB_ACCOUNT_ID } from './runner/events';
import { downloaderBudgetProblem, LambdaServiceOptions, LocalLambdaService } from './runner/lambda-service';
import { PipelineDefinition, synthesizePipeline } from './stack-definition';
import type { SourceFile } from './verify';

/** The lab's Aurora-shaped names (instances `lab-writer`/`lab-reader` of cluster `lab-cluster`). */
export const LAB_CLUSTER_ID = 'lab-cluster';
export const LAB_PARAMETER_GROUP = 'lab-audit';
export const LAB_INSTANCE_IDS = { writer: 'lab-writer', reader: 'lab-reader' } as const;
export const LAB_DB_USER = 'lab';
export const LAB_DB_NAME = 'sbtest';

/** The audit events the DatabaseStack's cluster parameter group sets, as its comma list. */
export const LAB_AUDIT_EVENTS = DEFAULT_CONFIG.auditEvents.join(',');

export interface LabSessionOptions {
  workDir: string;
  region: string;
  /** Use this RDS API endpoint instead of starting the local one (and no local MariaDB). */
  rdsEndpointUrl?: string;
  /** Use this AWS endpoint (S3, DynamoDB + Streams, SQS) instead of starting moto_server. */
  awsEndpointUrl?: string;
  audit: Omit<AuditSettings, 'events'>;
  lambda?: Pick<LambdaServiceOptions, 'envOverrides' | 'timeoutMs' | 'sqsRetryDelaySeconds' | 'streamRetryDelayMs' | 'reconcileEveryCycles'>;
  log: (line: string) => void;
  /**
   * Serve these folders (every file under one, by its relative path) as the writer's and the reader's
   * audit logs instead of starting MariaDB: fixtures a fault scenario grows itself. `audit` is unused then.
   */
  fixtureLogDirs?: { writer: string; reader?: string };
  /** Settings of the local RDS log endpoint: faults active from the start, page limit, data encoding. */
  endpointSettings?: Pick<RdsLogEndpointOptions, 'faults' | 'pageLimitBytes' | 'logDataEncoding'>;
  /** The pipeline as already synthesized (a suite starting many sessions synthesizes once). */
  definition?: PipelineDefinition;
}

export interface LabSession {
  readonly options: LabSessionOptions;
  readonly registry: ProcessRegistry;
  readonly definition: PipelineDefinition;
  readonly aws: AwsEndpoint;
  readonly clients: AwsClients & { ledger: DynamoDBDocumentClient };
  readonly resources: LocalResources;
  readonly rdsEndpointUrl: string;
  /** The local endpoint (absent when the lab uses another one). */
  readonly endpoint?: RdsLogEndpoint;
  /** Local databases by role (absent when the lab uses another RDS endpoint). */
  readonly databases?: { writer: MariaDbInstance; reader: MariaDbInstance };
  readonly service: LocalLambdaService;
  /** Every audit file the local databases wrote, under the endpoint's stable names. */
  localSourceFiles(): Promise<Array<SourceFile & { size: number; gone: boolean }>>;
  /**
   * Stops everything the session started. Unless `keep`, removes the bulky parts of the work folder
   * (datadirs, audit files, spools) and leaves only the entries named in `preserve` (reports, logs).
   */
  stop(options?: { keep?: boolean; preserve?: readonly string[] }): Promise<void>;
}

export async function startLabSession(options: LabSessionOptions, registry: ProcessRegistry): Promise<LabSession> {
  const { workDir, region, log } = options;
  const logDir = join(workDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const localRds = options.rdsEndpointUrl === undefined;
  const fixtures = localRds ? options.fixtureLogDirs : undefined;
  const tools = preflight({ database: localRds && !fixtures, moto: options.awsEndpointUrl === undefined }, log);

  const started: Array<{ stop: () => Promise<void> }> = [];
  try {
    let definition = options.definition;
    if (!definition) {
      log('[lab] synthesizing BackupPipelineStack (definitions come from its template)');
      definition = synthesizePipeline(region, LAB_ACCOUNT_ID);
    }
    // Before anything starts: these settings would leave the pipeline spinning, not failing.
    const budgetProblem = downloaderBudgetProblem(definition, options.lambda ?? {});
    if (budgetProblem) throw new UsageError(budgetProblem);
    if (options.rdsEndpointUrl !== undefined) await checkRdsEndpointAnswers(options.rdsEndpointUrl, region);

    let databases: LabSession['databases'];
    if (localRds && !fixtures && tools.database) {
      const audit: AuditSettings = { ...options.audit, events: LAB_AUDIT_EVENTS };
      const make = (role: 'writer' | 'reader'): MariaDbInstance =>
        new MariaDbInstance({ role, workDir, tools: tools.database!, registry, audit, user: LAB_DB_USER, database: LAB_DB_NAME });
      databases = { writer: make('writer'), reader: make('reader') };
      log(`[lab] starting MariaDB writer and reader (server_audit events ${audit.events}, rotate at ${audit.rotateSizeBytes} bytes)`);
      // Both starts settle before anything is judged: a failing one must not leave the other starting
      // (and its server running) after the cleanup below. stop() is a no-op for a server never spawned.
      const starts = await Promise.allSettled([databases.writer.start(), databases.reader.start()]);
      started.push(databases.writer, databases.reader);
      const failed = starts.find((start): start is PromiseRejectedResult => start.status === 'rejected');
      if (failed) throw failed.reason;
    }

    let awsUrl = options.awsEndpointUrl;
    if (awsUrl === undefined) {
      const moto = await startMoto(registry, tools.motoServer ?? 'moto_server', logDir);
      awsUrl = moto.url;
      started.push({ stop: () => registry.stop(moto.process) });
      log(`[lab] moto_server at ${awsUrl}`);
    }
    const aws: AwsEndpoint = { url: awsUrl, region, accountId: LAB_ACCOUNT_ID };
    const baseClients = createClients(aws);
    const clients = {
      ...baseClients,
      ledger: DynamoDBDocumentClient.from(baseClients.dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
    };
    const namePrefix = `lab-${Date.now().toString(36)}`;
    const resources = await createPipelineResources(clients, definition, aws, namePrefix);
    log(`[lab] created bucket ${resources.bucket}, ledger ${resources.ledgerTable} (stream), idempotency table, queues`);

    let endpoint: RdsLogEndpoint | undefined;
    let rdsEndpointUrl = options.rdsEndpointUrl;
    let instances: InstanceConfig[] | undefined;
    if (databases) {
      instances = [
        { id: LAB_INSTANCE_IDS.writer, writer: true, logs: { kind: 'mariadb-audit', dir: databases.writer.auditDir, baseName: AUDIT_FILE_BASENAME } },
        { id: LAB_INSTANCE_IDS.reader, writer: false, logs: { kind: 'mariadb-audit', dir: databases.reader.auditDir, baseName: AUDIT_FILE_BASENAME } },
      ];
    } else if (fixtures) {
      instances = [
        { id: LAB_INSTANCE_IDS.writer, writer: true, logs: { kind: 'directory', dir: fixtures.writer } },
        ...(fixtures.reader ? [{ id: LAB_INSTANCE_IDS.reader, writer: false, logs: { kind: 'directory', dir: fixtures.reader } } as const] : []),
      ];
    }
    if (instances) {
      endpoint = await startRdsLogEndpoint({
        region,
        accountId: LAB_ACCOUNT_ID,
        stateFile: join(workDir, 'rds-endpoint-state.json'),
        clusters: [{ id: LAB_CLUSTER_ID, parameterGroup: LAB_PARAMETER_GROUP, instances }],
        parameterGroups: { [LAB_PARAMETER_GROUP]: { server_audit_logging: '1', server_audit_events: LAB_AUDIT_EVENTS } },
        // Only when MariaDB may delete files: retaining them costs a scan per rotation.
        ...(databases && options.audit.rotations < MAX_AUDIT_FILE_ROTATIONS ? { retainDir: join(workDir, 'retained') } : {}),
        ...options.endpointSettings,
      });
      const local = endpoint;
      started.push({ stop: () => local.close() });
      rdsEndpointUrl = endpoint.url;
      log(`[lab] RDS log endpoint at ${rdsEndpointUrl}: ${LAB_CLUSTER_ID} = ${instances.map((instance) => instance.id).join(' + ')}`);
    }
    if (rdsEndpointUrl === undefined) throw new Error('no RDS endpoint: neither a local one nor --rds-endpoint');

    const service = new LocalLambdaService({
      definition,
      resources,
      clients,
      registry,
      region,
      awsEndpointUrl: awsUrl,
      rdsEndpointUrl,
      workDir,
      ...options.lambda,
    });
    started.push({ stop: () => service.close() });

    const session: LabSession = {
      options,
      registry,
      definition,
      aws,
      clients,
      resources,
      rdsEndpointUrl,
      ...(endpoint ? { endpoint } : {}),
      ...(databases ? { databases } : {}),
      service,
      async localSourceFiles() {
        if (!endpoint) return [];
        return (await endpoint.files()).map((file) => {
          // A file MariaDB deleted is still compared through its retained link, when there is one.
          const path = file.gone ? file.retainedPath : file.path;
          return {
            instance: file.DBInstanceIdentifier,
            logFileName: file.LogFileName,
            ...(path !== undefined ? { path } : {}),
            size: file.size,
            gone: file.gone,
          };
        });
      },
      async stop({ keep = false, preserve = [] } = {}) {
        // Last started first: functions before the endpoint, the endpoint before the databases.
        for (const part of started.reverse()) await part.stop();
        started.length = 0;
        await registry.stopAll();
        if (!keep) {
          for (const entry of readdirSync(workDir)) {
            if (!preserve.includes(entry)) rmSync(join(workDir, entry), { recursive: true, force: true });
          }
        }
      },
    };
    return session;
  } catch (error) {
    for (const part of started.reverse()) await part.stop().catch(() => undefined);
    throw error;
  }
}

/** Where the pipeline's given-up work lands, by role (absent when the template has no such queue). */
export interface DeadLetterQueueUrls {
  /** Scan messages the detector failed maxReceiveCount times (the scan queue's redrive target). */
  scan?: string;
  /** Metadata of ledger-stream batches the downloader's mapping gave up on. */
  downloaderOnFailure?: string;
  /**
   * Scheduled runs that failed: the schedules' dead-letter queues (undeliverable invocations) and the
   * scheduled functions' on-failure destinations (invocations that failed after Lambda's retries); each once.
   */
  scheduled: string[];
}

export function deadLetterQueueUrls(definition: PipelineDefinition, resources: LocalResources): DeadLetterQueueUrls {
  const redrive = definition.resources[definition.detectorSource.queueLogicalId]?.Properties?.RedrivePolicy as
    | { deadLetterTargetArn?: { 'Fn::GetAtt'?: unknown[] } }
    | undefined;
  const scanDlq = redrive?.deadLetterTargetArn?.['Fn::GetAtt']?.[0];
  const url = (logicalId: unknown): string | undefined => (typeof logicalId === 'string' ? resources.queueUrls[logicalId] : undefined);
  const scheduled = [
    definition.schedule.deadLetterQueueLogicalId,
    definition.reconcileSchedule.deadLetterQueueLogicalId,
    definition.functions.scanner.asyncInvoke.onFailureQueueLogicalId,
    definition.functions.reconciler.asyncInvoke.onFailureQueueLogicalId,
  ].map(url);
  const urls: DeadLetterQueueUrls = { scheduled: [...new Set(scheduled.filter((queue): queue is string => queue !== undefined))] };
  const scan = url(scanDlq);
  const downloaderOnFailure = url(definition.downloaderSource.onFailureQueueLogicalId);
  if (scan) urls.scan = scan;
  if (downloaderOnFailure) urls.downloaderOnFailure = downloaderOnFailure;
  return urls;
}
