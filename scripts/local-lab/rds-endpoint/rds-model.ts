/**
 * The configured clusters, instances and cluster parameter groups as RDS describes them, and the
 * three Describe actions over them (filters, MaxRecords, opaque Markers).
 */
import { createHash } from 'node:crypto';
import {
  el,
  Filter,
  invalidParameter,
  list,
  notFoundInstance,
  QueryParams,
  RdsApiError,
  wrap,
  Xml,
} from './query-protocol';
import { decodeListMarker, encodeListMarker } from './tokens';
import { ClusterConfig, InstanceConfig, RdsLogEndpointOptions } from './types';

const DEFAULT_ENGINE = 'aurora-mysql';
const DEFAULT_ENGINE_VERSION = '8.0.mysql_aurora.3.08.2';
const DEFAULT_INSTANCE_CLASS = 'db.t4g.medium';
const MYSQL_PORT = 3306;

export interface ModelInstance {
  id: string;
  arn: string;
  resourceId: string;
  cluster: ModelCluster;
  writer: boolean;
  promotionTier: number;
  instanceClass: string;
  availabilityZone: string;
  tags: Record<string, string>;
}

export interface ModelCluster {
  id: string;
  arn: string;
  resourceId: string;
  parameterGroup: string;
  engine: string;
  engineVersion: string;
  members: ModelInstance[];
  tags: Record<string, string>;
}

/** Paging limits of the Describe actions (RDS documents 20..100, default 100). */
export const DESCRIBE_MAX_RECORDS = { min: 20, max: 100, default: 100 } as const;

export function readMaxRecords(
  params: QueryParams,
  limits: { min: number; max: number; default: number },
): number {
  const value = params.optionalInteger('MaxRecords') ?? limits.default;
  if (value < limits.min || value > limits.max) {
    throw invalidParameter(`MaxRecords must be between ${limits.min} and ${limits.max}; got ${value}`);
  }
  return value;
}

/** One page of `items` (sorted by `key`) after the request's Marker, and the next Marker. */
export function paginate<T>(
  items: T[],
  key: (item: T) => string,
  listing: string,
  marker: string | undefined,
  maxRecords: number,
): { page: T[]; nextMarker?: string } {
  const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const after = marker === undefined ? undefined : decodeListMarker(listing, marker);
  const start = after === undefined ? 0 : sorted.findIndex((item) => key(item) > after);
  const remaining = start === -1 ? [] : sorted.slice(start);
  const page = remaining.slice(0, maxRecords);
  const nextMarker = remaining.length > page.length ? encodeListMarker(listing, key(page[page.length - 1])) : undefined;
  return { page, nextMarker };
}

/** An RDS-style resource id (`db-` + 26 upper-case base-32 characters), stable for an identifier. */
function resourceId(prefix: string, identifier: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const digest = createHash('sha256').update(identifier).digest();
  let id = '';
  for (let i = 0; i < 26; i++) id += alphabet[digest[i] % 32];
  return `${prefix}-${id}`;
}

interface CatalogueParameter {
  name: string;
  dataType: 'string' | 'integer' | 'boolean' | 'list';
  applyType: 'dynamic' | 'static';
  description: string;
}

/**
 * A few Aurora MySQL 3 cluster parameters, listed `engine-default` unless a group sets them (then
 * `user`). Enough for the scanner's audit check and for paging tests; not the full catalogue.
 */
const CLUSTER_PARAMETER_CATALOGUE: CatalogueParameter[] = [
  ['autocommit', 'boolean', 'dynamic', 'Commit every statement unless in an explicit transaction.'],
  ['aws_default_lambda_role', 'string', 'dynamic', 'IAM role used to invoke AWS Lambda.'],
  ['aws_default_logs_role', 'string', 'dynamic', 'IAM role used to publish to CloudWatch Logs.'],
  ['aws_default_s3_role', 'string', 'dynamic', 'IAM role used to access Amazon S3.'],
  ['binlog_checksum', 'string', 'dynamic', 'Binary log event checksum.'],
  ['binlog_format', 'string', 'static', 'Binary logging format.'],
  ['binlog_row_image', 'string', 'dynamic', 'Row image logged in row-based binary logging.'],
  ['character_set_client', 'string', 'dynamic', 'Character set of statements sent by the client.'],
  ['character_set_connection', 'string', 'dynamic', 'Character set of literals without introducer.'],
  ['character_set_database', 'string', 'dynamic', 'Character set of the default database.'],
  ['character_set_filesystem', 'string', 'dynamic', 'Character set of file names.'],
  ['character_set_results', 'string', 'dynamic', 'Character set of results sent to the client.'],
  ['character_set_server', 'string', 'dynamic', 'Default server character set.'],
  ['collation_connection', 'string', 'dynamic', 'Collation of the connection character set.'],
  ['collation_server', 'string', 'dynamic', 'Default server collation.'],
  ['completion_type', 'integer', 'dynamic', 'Transaction completion type.'],
  ['default_storage_engine', 'string', 'dynamic', 'Default storage engine.'],
  ['innodb_autoinc_lock_mode', 'integer', 'static', 'Lock mode for auto-increment values.'],
  ['innodb_file_per_table', 'boolean', 'dynamic', 'One tablespace file per table.'],
  ['innodb_strict_mode', 'boolean', 'dynamic', 'Errors instead of warnings for some conditions.'],
  ['lc_time_names', 'string', 'dynamic', 'Locale of day and month names.'],
  ['lower_case_table_names', 'integer', 'static', 'Case sensitivity of table names.'],
  ['require_secure_transport', 'boolean', 'dynamic', 'Require TLS for client connections.'],
  ['server_audit_events', 'list', 'dynamic', 'Events to record in the audit log.'],
  ['server_audit_excl_users', 'string', 'dynamic', 'Users whose activity is not audited.'],
  ['server_audit_incl_users', 'string', 'dynamic', 'Users whose activity is audited.'],
  ['server_audit_logging', 'boolean', 'dynamic', 'Turns advanced auditing on or off.'],
  ['server_audit_logs_upload', 'boolean', 'dynamic', 'Publish audit logs to CloudWatch Logs.'],
  ['time_zone', 'string', 'dynamic', 'Server time zone.'],
  ['tls_version', 'list', 'static', 'TLS protocol versions accepted.'],
].map(([name, dataType, applyType, description]) => ({
  name,
  dataType: dataType as CatalogueParameter['dataType'],
  applyType: applyType as CatalogueParameter['applyType'],
  description,
}));

function matchesIdOrArn(values: string[], id: string, arn: string): boolean {
  return values.includes(id) || values.includes(arn);
}

function tagListXml(tags: Record<string, string>): Xml {
  return list(
    'TagList',
    'Tag',
    Object.entries(tags).map(([key, value]) => el('Key', key) + el('Value', value)),
  );
}

export class RdsModel {
  readonly clusters: ModelCluster[];
  readonly instances: ModelInstance[];
  private readonly createTime = new Date().toISOString();

  constructor(private readonly options: RdsLogEndpointOptions) {
    this.clusters = options.clusters.map((cluster) => this.buildCluster(cluster));
    this.instances = this.clusters.flatMap((cluster) => cluster.members);
  }

  get region(): string {
    return this.options.region ?? 'us-east-1';
  }

  /** The instance named by a DBInstanceIdentifier (an id or an ARN), or DBInstanceNotFound. */
  instance(idOrArn: string): ModelInstance {
    const found = this.instances.find((instance) => instance.id === idOrArn || instance.arn === idOrArn);
    if (!found) throw notFoundInstance(idOrArn);
    return found;
  }

  describeDBInstances(params: QueryParams): Xml {
    const id = params.optionalString('DBInstanceIdentifier');
    const maxRecords = readMaxRecords(params, DESCRIBE_MAX_RECORDS);
    let selected = id === undefined ? this.instances : [this.instance(id)];
    for (const filter of params.filters()) selected = selected.filter((instance) => instanceMatches(instance, filter));
    const { page, nextMarker } = paginate(
      selected,
      (instance) => instance.id,
      'DescribeDBInstances',
      params.optionalString('Marker'),
      maxRecords,
    );
    return list('DBInstances', 'DBInstance', page.map((instance) => this.instanceXml(instance))) + el('Marker', nextMarker);
  }

  describeDBClusters(params: QueryParams): Xml {
    const id = params.optionalString('DBClusterIdentifier');
    const maxRecords = readMaxRecords(params, DESCRIBE_MAX_RECORDS);
    let selected = this.clusters;
    if (id !== undefined) {
      selected = selected.filter((cluster) => cluster.id === id || cluster.arn === id);
      if (selected.length === 0) {
        throw new RdsApiError(404, 'DBClusterNotFoundFault', `DBCluster ${id} not found.`);
      }
    }
    for (const filter of params.filters()) selected = selected.filter((cluster) => clusterMatches(cluster, filter));
    const { page, nextMarker } = paginate(
      selected,
      (cluster) => cluster.id,
      'DescribeDBClusters',
      params.optionalString('Marker'),
      maxRecords,
    );
    return list('DBClusters', 'DBCluster', page.map((cluster) => this.clusterXml(cluster))) + el('Marker', nextMarker);
  }

  describeDBClusterParameters(params: QueryParams): Xml {
    const groupName = params.requiredString('DBClusterParameterGroupName');
    const source = params.optionalString('Source');
    const maxRecords = readMaxRecords(params, DESCRIBE_MAX_RECORDS);
    const userValues = this.options.parameterGroups[groupName];
    if (!userValues) {
      throw new RdsApiError(404, 'DBParameterGroupNotFound', `DBClusterParameterGroup not found: ${groupName}`);
    }
    const catalogued = new Map(CLUSTER_PARAMETER_CATALOGUE.map((parameter) => [parameter.name, parameter]));
    const names = new Set([...catalogued.keys(), ...Object.keys(userValues)]);
    const parameters = [...names].map((name) => {
      const known = catalogued.get(name);
      const value = userValues[name];
      return {
        name,
        value,
        source: value === undefined ? 'engine-default' : 'user',
        dataType: known?.dataType ?? 'string',
        applyType: known?.applyType ?? 'dynamic',
        description: known?.description ?? name,
      };
    });
    const wanted = source === undefined ? parameters : parameters.filter((parameter) => parameter.source === source);
    const { page, nextMarker } = paginate(
      wanted,
      (parameter) => parameter.name,
      `DescribeDBClusterParameters\u0000${groupName}\u0000${source ?? ''}`,
      params.optionalString('Marker'),
      maxRecords,
    );
    const members = page.map(
      (parameter) =>
        el('ParameterName', parameter.name) +
        el('ParameterValue', parameter.value) +
        el('Description', parameter.description) +
        el('Source', parameter.source) +
        el('ApplyType', parameter.applyType) +
        el('DataType', parameter.dataType) +
        el('IsModifiable', true) +
        el('ApplyMethod', parameter.applyType === 'static' ? 'pending-reboot' : 'immediate'),
    );
    return list('Parameters', 'Parameter', members) + el('Marker', nextMarker);
  }

  private buildCluster(config: ClusterConfig): ModelCluster {
    const { region } = this;
    const account = this.options.accountId ?? '000000000000';
    const cluster: ModelCluster = {
      id: config.id,
      arn: `arn:aws:rds:${region}:${account}:cluster:${config.id}`,
      resourceId: resourceId('cluster', config.id),
      parameterGroup: config.parameterGroup,
      engine: config.engine ?? DEFAULT_ENGINE,
      engineVersion: config.engineVersion ?? DEFAULT_ENGINE_VERSION,
      members: [],
      tags: config.tags ?? {},
    };
    const explicitWriter = config.instances.some((instance) => instance.writer !== undefined);
    cluster.members = config.instances.map((instance: InstanceConfig, index) => {
      const writer = explicitWriter ? instance.writer === true : index === 0;
      return {
        id: instance.id,
        arn: `arn:aws:rds:${region}:${account}:db:${instance.id}`,
        resourceId: resourceId('db', instance.id),
        cluster,
        writer,
        promotionTier: 1,
        instanceClass: instance.instanceClass ?? DEFAULT_INSTANCE_CLASS,
        availabilityZone: instance.availabilityZone ?? `${region}${'abcdef'[index % 6]}`,
        tags: instance.tags ?? {},
      };
    });
    return cluster;
  }

  private endpointHost(name: string): string {
    return `${name}.c0lab0endpoint.${this.region}.rds.amazonaws.com`;
  }

  private instanceXml(instance: ModelInstance): Xml {
    const { cluster } = instance;
    return (
      el('DBInstanceIdentifier', instance.id) +
      el('DBInstanceClass', instance.instanceClass) +
      el('Engine', cluster.engine) +
      el('DBInstanceStatus', 'available') +
      wrap('Endpoint', el('Address', this.endpointHost(instance.id)) + el('Port', MYSQL_PORT)) +
      el('AllocatedStorage', 1) +
      el('InstanceCreateTime', this.createTime) +
      el('BackupRetentionPeriod', 1) +
      list('DBParameterGroups', 'DBParameterGroup', [
        el('DBParameterGroupName', `default.${cluster.engine}8.0`) + el('ParameterApplyStatus', 'in-sync'),
      ]) +
      el('AvailabilityZone', instance.availabilityZone) +
      el('EngineVersion', cluster.engineVersion) +
      el('AutoMinorVersionUpgrade', true) +
      el('PubliclyAccessible', false) +
      el('StorageType', 'aurora') +
      el('DBClusterIdentifier', cluster.id) +
      el('StorageEncrypted', true) +
      el('DbiResourceId', instance.resourceId) +
      el('PromotionTier', instance.promotionTier) +
      el('DBInstanceArn', instance.arn) +
      el('IAMDatabaseAuthenticationEnabled', false) +
      el('DeletionProtection', false) +
      tagListXml(instance.tags)
    );
  }

  private clusterXml(cluster: ModelCluster): Xml {
    const members = cluster.members.map(
      (member) =>
        el('DBInstanceIdentifier', member.id) +
        el('IsClusterWriter', member.writer) +
        el('DBClusterParameterGroupStatus', 'in-sync') +
        el('PromotionTier', member.promotionTier),
    );
    return (
      el('AllocatedStorage', 1) +
      el('BackupRetentionPeriod', 1) +
      el('DBClusterIdentifier', cluster.id) +
      el('DBClusterParameterGroup', cluster.parameterGroup) +
      el('Status', 'available') +
      el('Endpoint', this.endpointHost(`${cluster.id}.cluster`)) +
      el('ReaderEndpoint', this.endpointHost(`${cluster.id}.cluster-ro`)) +
      el('MultiAZ', cluster.members.length > 1) +
      el('Engine', cluster.engine) +
      el('EngineVersion', cluster.engineVersion) +
      el('Port', MYSQL_PORT) +
      list('DBClusterMembers', 'DBClusterMember', members) +
      el('StorageEncrypted', true) +
      el('DbClusterResourceId', cluster.resourceId) +
      el('DBClusterArn', cluster.arn) +
      el('IAMDatabaseAuthenticationEnabled', false) +
      el('ClusterCreateTime', this.createTime) +
      el('EngineMode', 'provisioned') +
      el('DeletionProtection', false) +
      tagListXml(cluster.tags)
    );
  }
}

function instanceMatches(instance: ModelInstance, filter: Filter): boolean {
  switch (filter.name) {
    case 'db-instance-id':
      return matchesIdOrArn(filter.values, instance.id, instance.arn);
    case 'db-cluster-id':
      return matchesIdOrArn(filter.values, instance.cluster.id, instance.cluster.arn);
    case 'dbi-resource-id':
      return filter.values.includes(instance.resourceId);
    case 'engine':
      return filter.values.includes(instance.cluster.engine);
    default:
      throw invalidParameter(`Unrecognized filter name: ${filter.name}`);
  }
}

function clusterMatches(cluster: ModelCluster, filter: Filter): boolean {
  switch (filter.name) {
    case 'db-cluster-id':
      return matchesIdOrArn(filter.values, cluster.id, cluster.arn);
    case 'db-cluster-resource-id':
      return filter.values.includes(cluster.resourceId);
    case 'engine':
      return filter.values.includes(cluster.engine);
    default:
      throw invalidParameter(`Unrecognized filter name: ${filter.name}`);
  }
}
