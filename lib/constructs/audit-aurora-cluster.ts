import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { AuditEvent } from '../config';

export interface AuditAuroraClusterProps {
  readonly vpc: ec2.IVpc;
  /** Full engine version, e.g. `8.0.mysql_aurora.3.10.4`. */
  readonly engineVersion: string;
  /** e.g. `db.t4g.medium`, used for the writer and the reader. */
  readonly instanceClass: string;
  readonly auditEvents: readonly AuditEvent[];
  /**
   * Base of the cluster and instance identifiers (`<base>-cluster`, `<base>-writer`, `<base>-reader`):
   * fixed names let the backup pipeline's include/exclude lists and the lab scripts refer to them.
   */
  readonly identifierBase: string;
  /** true: no deletion protection and no final snapshot, so `cdk destroy` leaves nothing behind. */
  readonly destroyOnTeardown: boolean;
}

const MYSQL_PORT = 3306;
const ADMIN_USER = 'labadmin';

/**
 * Aurora MySQL 3 cluster (one writer, one reader) with advanced auditing switched on through a cluster
 * parameter group, reachable on 3306 only from the client security group it exports.
 */
export class AuditAuroraCluster extends Construct {
  readonly cluster: rds.DatabaseCluster;
  readonly secret: secretsmanager.ISecret;
  /** Attach this to any client (the lab host) that should reach the database. */
  readonly clientSecurityGroup: ec2.SecurityGroup;
  readonly writerInstanceIdentifier: string;
  readonly readerInstanceIdentifier: string;

  constructor(scope: Construct, id: string, props: AuditAuroraClusterProps) {
    super(scope, id);

    const engine = rds.DatabaseClusterEngine.auroraMysql({
      version: rds.AuroraMysqlEngineVersion.of(props.engineVersion, '8.0'),
    });

    const auditParameters = new rds.ParameterGroup(this, 'AuditParameters', {
      engine,
      description: 'Aurora MySQL advanced auditing for the audit-log backup lab',
      parameters: {
        server_audit_logging: '1',
        server_audit_events: props.auditEvents.join(','),
      },
    });

    const databaseSecurityGroup = new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', {
      vpc: props.vpc,
      description: 'Aurora MySQL: MySQL port from the database client security group only',
      allowAllOutbound: false,
    });
    this.clientSecurityGroup = new ec2.SecurityGroup(this, 'ClientSecurityGroup', {
      vpc: props.vpc,
      description: 'Database clients: attach to reach the Aurora cluster on the MySQL port',
      allowAllOutbound: false,
    });

    const base = props.identifierBase.toLowerCase();
    this.writerInstanceIdentifier = `${base}-writer`;
    this.readerInstanceIdentifier = `${base}-reader`;
    const instanceType = new ec2.InstanceType(props.instanceClass.replace(/^db\./, ''));
    const instanceDefaults = {
      instanceType,
      publiclyAccessible: false,
      // Stay on the configured version (the default is a long-term-support line) until upgraded on purpose.
      autoMinorVersionUpgrade: false,
    };

    // Owned here (not generated inside the cluster) so that its findings can be acknowledged on it.
    const adminSecret = new rds.DatabaseSecret(this, 'AdminSecret', { username: ADMIN_USER });
    // A retained snapshot is useless without its credentials, so the secret follows the cluster's fate.
    adminSecret.applyRemovalPolicy(props.destroyOnTeardown ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN);

    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine,
      clusterIdentifier: `${base}-cluster`,
      writer: rds.ClusterInstance.provisioned('Writer', {
        ...instanceDefaults,
        instanceIdentifier: this.writerInstanceIdentifier,
      }),
      readers: [
        rds.ClusterInstance.provisioned('Reader', {
          ...instanceDefaults,
          instanceIdentifier: this.readerInstanceIdentifier,
          promotionTier: 1,
        }),
      ],
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [databaseSecurityGroup],
      port: MYSQL_PORT,
      parameterGroup: auditParameters,
      credentials: rds.Credentials.fromSecret(adminSecret),
      storageEncrypted: true,
      iamAuthentication: true,
      deletionProtection: !props.destroyOnTeardown,
      removalPolicy: props.destroyOnTeardown ? RemovalPolicy.DESTROY : RemovalPolicy.SNAPSHOT,
      backup: { retention: Duration.days(props.destroyOnTeardown ? 1 : 7) },
      copyTagsToSnapshot: true,
      // No RDS Extended Support charges: the cluster stays on a supported standard-support version.
      engineLifecycleSupport: rds.EngineLifecycleSupport.OPEN_SOURCE_RDS_EXTENDED_SUPPORT_DISABLED,
    });
    this.cluster.connections.allowFrom(this.clientSecurityGroup, ec2.Port.tcp(MYSQL_PORT), 'MySQL from database clients');
    // The cluster attaches the secret (adding host, port and engine to it); clients use the attachment.
    if (!this.cluster.secret) throw new Error('the Aurora cluster did not attach its admin secret');
    this.secret = this.cluster.secret;

    this.acknowledgeFindings(props.destroyOnTeardown, adminSecret);
  }

  private acknowledgeFindings(destroyOnTeardown: boolean, adminSecret: rds.DatabaseSecret): void {
    const cluster = this.cluster.node.defaultChild as rds.CfnDBCluster;
    const acknowledgements = [
      {
        id: 'AwsSolutions-RDS11',
        reason:
          'The MySQL default port is kept so that stock MySQL clients and sysbench work unchanged; the port is ' +
          'reachable only from the client security group, which is the actual control.',
      },
      {
        id: 'AwsSolutions-RDS14',
        reason:
          'Backtrack is billed per change record and this lab cluster holds only generated sysbench data; ' +
          'automated backups with point-in-time restore cover recovery.',
      },
    ];
    if (destroyOnTeardown) {
      acknowledgements.push({
        id: 'AwsSolutions-RDS10',
        reason:
          'Lab default (destroyLabDataOnTeardown=true): cdk destroy must remove the cluster. Setting ' +
          'destroyLabDataOnTeardown=false turns deletion protection on.',
      });
    }
    Validations.of(cluster).acknowledge(...acknowledgements);
    Validations.of(adminSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotation needs a rotation Lambda that reaches both the isolated database subnets and the Secrets ' +
        'Manager API (a NAT gateway or interface endpoint, billed hourly); the lab secret lives only as long ' +
        'as the lab and is readable only by the lab host role.',
    });
  }
}
