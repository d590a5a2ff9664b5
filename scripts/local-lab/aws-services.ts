/**
 * The AWS side of the lab: moto_server on loopback, and the pipeline's bucket, tables and queues
 * created in it (or in any other endpoint the lab is pointed at) from the synthesized template.
 */
import { join } from 'node:path';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, UpdateTimeToLiveCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { AttributeDefinition, KeySchemaElement, StreamViewType } from '@aws-sdk/client-dynamodb';
import { freePort, LOOPBACK, tcpAccepts, waitUntil } from './net';
import type { ProcessRegistry, TrackedProcess } from './processes';
import type { CfnResource, CfnValue, PipelineDefinition } from './stack-definition';

/** Dummy credentials: moto accepts anything, the SDK only needs something to sign with. */
export const LAB_CREDENTIALS = { accessKeyId: 'lablocal', secretAccessKey: 'lablocal' } as const;

export interface AwsEndpoint {
  url: string;
  region: string;
  accountId: string;
}

/**
 * moto keeps an object in memory only up to ~5 MiB and copies anything larger into a temporary file:
 * for a 128 MiB object that is about a quarter of moto's CPU per PUT, on the same two cores as the
 * pipeline it is standing in for S3 for. Objects up to this size stay in memory instead: the lab's
 * bucket holds ~150 MB, and the bench's three backups of a 1 GiB file bring moto to ~4 GB (deleting
 * objects does not give their memory back promptly, so the bench does not try).
 */
export const MOTO_IN_MEMORY_OBJECT_BYTES = 1024 * 1024 * 1024;

export async function startMoto(registry: ProcessRegistry, motoServer: string, logDir: string): Promise<{ url: string; process: TrackedProcess }> {
  const port = await freePort();
  const tracked = registry.start('moto_server', motoServer, ['-H', LOOPBACK, '-p', String(port)], {
    logFile: join(logDir, 'moto_server.log'),
    env: { ...process.env, MOTO_S3_DEFAULT_KEY_BUFFER_SIZE: String(MOTO_IN_MEMORY_OBJECT_BYTES) },
  });
  await waitUntil(`moto_server on port ${port}`, () => tcpAccepts(port), {
    timeoutMs: 30_000,
    abortIf: () => (tracked.child.exitCode !== null ? `moto_server exited (code ${tracked.child.exitCode}); see ${logDir}/moto_server.log` : undefined),
  });
  return { url: `http://${LOOPBACK}:${port}`, process: tracked };
}

/** SDK clients for the lab's own calls (resource creation, polling, verification). */
export interface AwsClients {
  s3: S3Client;
  dynamodb: DynamoDBClient;
  streams: DynamoDBStreamsClient;
  sqs: SQSClient;
}

export function createClients(endpoint: AwsEndpoint): AwsClients {
  const common = { region: endpoint.region, credentials: LAB_CREDENTIALS };
  // Per-service AWS_ENDPOINT_URL_<SERVICE> settings win, as they do for the handlers.
  const endpointFor = (service: string): string => process.env[`AWS_ENDPOINT_URL_${service}`] ?? endpoint.url;
  return {
    s3: new S3Client({
      ...common,
      endpoint: endpointFor('S3'),
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
    dynamodb: new DynamoDBClient({ ...common, endpoint: endpointFor('DYNAMODB') }),
    streams: new DynamoDBStreamsClient({ ...common, endpoint: endpointFor('DYNAMODB_STREAMS') }),
    sqs: new SQSClient({ ...common, endpoint: endpointFor('SQS') }),
  };
}

/** What `Ref` and `Fn::GetAtt` of a created resource resolve to. */
interface Resolved {
  ref: string;
  attributes: Record<string, string>;
}

export interface LocalResources {
  bucket: string;
  ledgerTable: string;
  ledgerStreamArn: string;
  idempotencyTable: string;
  queueUrls: Record<string, string>;
  queueArns: Record<string, string>;
  /** Resolves a template value (literal, Ref, Fn::GetAtt, Fn::Join, pseudo parameters) to a string. */
  resolve(value: CfnValue): string;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

function makeResolver(resolved: Map<string, Resolved>, endpoint: AwsEndpoint): (value: CfnValue) => string {
  const pseudo: Record<string, string> = {
    'AWS::Region': endpoint.region,
    'AWS::AccountId': endpoint.accountId,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const resolve = (value: CfnValue): string => {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    if (isRecord(value)) {
      if (typeof value.Ref === 'string') {
        const target = pseudo[value.Ref] ?? resolved.get(value.Ref)?.ref;
        if (target === undefined) throw new Error(`the lab does not create ${value.Ref} (referenced by the template)`);
        return target;
      }
      const getAtt = value['Fn::GetAtt'];
      if (Array.isArray(getAtt) && typeof getAtt[0] === 'string' && typeof getAtt[1] === 'string') {
        const attribute = resolved.get(getAtt[0])?.attributes[getAtt[1]];
        if (attribute === undefined) throw new Error(`the lab cannot resolve ${getAtt[0]}.${getAtt[1]}`);
        return attribute;
      }
      const join = value['Fn::Join'];
      if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
        return (join[1] as CfnValue[]).map(resolve).join(join[0]);
      }
    }
    throw new Error(`unsupported template value ${JSON.stringify(value)}`);
  };
  return resolve;
}

async function createTable(dynamodb: DynamoDBClient, name: string, template: CfnResource): Promise<Resolved> {
  const props = template.Properties ?? {};
  const stream = props.StreamSpecification as { StreamViewType?: StreamViewType } | undefined;
  await dynamodb.send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: props.KeySchema as KeySchemaElement[],
      AttributeDefinitions: props.AttributeDefinitions as AttributeDefinition[],
      BillingMode: 'PAY_PER_REQUEST',
      ...(stream?.StreamViewType
        ? { StreamSpecification: { StreamEnabled: true, StreamViewType: stream.StreamViewType } }
        : {}),
    }),
  );
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 30 }, { TableName: name });
  const ttl = props.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
  if (ttl?.AttributeName && ttl.Enabled !== false) {
    await dynamodb.send(
      new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true } }),
    );
  }
  const description = (await dynamodb.send(new DescribeTableCommand({ TableName: name }))).Table;
  const attributes: Record<string, string> = { Arn: description?.TableArn ?? '' };
  if (description?.LatestStreamArn) attributes.StreamArn = description.LatestStreamArn;
  return { ref: name, attributes };
}

/**
 * Creates every bucket, table and queue of the template the handlers and the lab use. Names carry a
 * per-run prefix so several runs can share one endpoint.
 */
export async function createPipelineResources(
  clients: AwsClients,
  definition: PipelineDefinition,
  endpoint: AwsEndpoint,
  namePrefix: string,
): Promise<LocalResources> {
  const resolved = new Map<string, Resolved>();
  const resolve = makeResolver(resolved, endpoint);
  const { resources } = definition;

  // The bucket: S3 names are lower case.
  const bucket = `${namePrefix}-audit-backup`.toLowerCase();
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const versioning = (resources[definition.bucketLogicalId]?.Properties?.VersioningConfiguration as { Status?: string } | undefined)?.Status;
  if (versioning === 'Enabled') {
    await clients.s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  }
  resolved.set(definition.bucketLogicalId, { ref: bucket, attributes: { Arn: `arn:aws:s3:::${bucket}` } });

  const tableName = (logicalId: string): string => `${namePrefix}-${logicalId}`;
  for (const logicalId of [definition.ledgerTableLogicalId, definition.idempotencyTableLogicalId]) {
    const template = resources[logicalId];
    if (!template) throw new Error(`template has no table ${logicalId}`);
    resolved.set(logicalId, await createTable(clients.dynamodb, tableName(logicalId), template));
  }

  // Queues without a redrive policy first: they are the dead-letter targets of the others.
  const queues = Object.entries(resources).filter(([, candidate]) => candidate.Type === 'AWS::SQS::Queue');
  queues.sort(([, a], [, b]) => Number(Boolean(a.Properties?.RedrivePolicy)) - Number(Boolean(b.Properties?.RedrivePolicy)));
  const queueUrls: Record<string, string> = {};
  const queueArns: Record<string, string> = {};
  for (const [logicalId, queue] of queues) {
    const props = queue.Properties ?? {};
    const attributes: Record<string, string> = {};
    if (props.VisibilityTimeout !== undefined) attributes.VisibilityTimeout = resolve(props.VisibilityTimeout);
    if (props.MessageRetentionPeriod !== undefined) attributes.MessageRetentionPeriod = resolve(props.MessageRetentionPeriod);
    if (isRecord(props.RedrivePolicy)) {
      attributes.RedrivePolicy = JSON.stringify({
        deadLetterTargetArn: resolve(props.RedrivePolicy.deadLetterTargetArn),
        maxReceiveCount: props.RedrivePolicy.maxReceiveCount,
      });
    }
    const name = `${namePrefix}-${logicalId}`.slice(0, 80);
    const { QueueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!QueueUrl) throw new Error(`no URL for queue ${name}`);
    const { Attributes } = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    const arn = Attributes?.QueueArn;
    if (!arn) throw new Error(`no ARN for queue ${name}`);
    resolved.set(logicalId, { ref: QueueUrl, attributes: { Arn: arn, QueueName: name, QueueUrl } });
    queueUrls[logicalId] = QueueUrl;
    queueArns[logicalId] = arn;
  }

  const ledgerStreamArn = resolved.get(definition.ledgerTableLogicalId)?.attributes.StreamArn;
  if (!ledgerStreamArn) throw new Error('the ledger table has no stream');
  return {
    bucket,
    ledgerTable: tableName(definition.ledgerTableLogicalId),
    ledgerStreamArn,
    idempotencyTable: tableName(definition.idempotencyTableLogicalId),
    queueUrls,
    queueArns,
    resolve,
  };
}
