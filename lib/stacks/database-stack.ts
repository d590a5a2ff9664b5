import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { AuditEvent } from '../config';
import { AuditAuroraCluster } from '../constructs/audit-aurora-cluster';

export interface DatabaseStackProps extends StackProps {
  readonly vpc: ec2.IVpc;
  readonly engineVersion: string;
  readonly instanceClass: string;
  readonly auditEvents: readonly AuditEvent[];
  /** Base of the RDS identifiers (`<base>-cluster`, `<base>-writer`, `<base>-reader`). */
  readonly identifierBase: string;
  readonly destroyLabDataOnTeardown: boolean;
}

/**
 * The audited Aurora MySQL cluster and the security group its clients attach. The connection outputs
 * live here, next to the resources, rather than being re-published by the stacks that consume them.
 */
export class DatabaseStack extends Stack {
  readonly cluster: rds.IDatabaseCluster;
  readonly secret: secretsmanager.ISecret;
  readonly clientSecurityGroup: ec2.ISecurityGroup;
  readonly writerInstanceIdentifier: string;
  readonly readerInstanceIdentifier: string;

  constructor(scope: Construct, id: string, props: DatabaseStackProps) {
    super(scope, id, props);
    const aurora = new AuditAuroraCluster(this, 'Aurora', {
      vpc: props.vpc,
      engineVersion: props.engineVersion,
      instanceClass: props.instanceClass,
      auditEvents: props.auditEvents,
      identifierBase: props.identifierBase,
      destroyOnTeardown: props.destroyLabDataOnTeardown,
    });
    this.cluster = aurora.cluster;
    this.secret = aurora.secret;
    this.clientSecurityGroup = aurora.clientSecurityGroup;
    this.writerInstanceIdentifier = aurora.writerInstanceIdentifier;
    this.readerInstanceIdentifier = aurora.readerInstanceIdentifier;

    new CfnOutput(this, 'WriterEndpoint', {
      description: 'Aurora writer (cluster) endpoint',
      value: this.cluster.clusterEndpoint.hostname,
    });
    new CfnOutput(this, 'ReaderEndpoint', {
      description: 'Aurora reader endpoint',
      value: this.cluster.clusterReadEndpoint.hostname,
    });
    new CfnOutput(this, 'DatabaseSecretArn', {
      description: 'Secrets Manager secret with the database username, password, host and port',
      value: this.secret.secretArn,
    });
    new CfnOutput(this, 'WriterInstanceIdentifier', {
      description: 'DB instance identifier of the writer (backed-up audit logs live under logs/<identifier>/)',
      value: this.writerInstanceIdentifier,
    });
    new CfnOutput(this, 'ReaderInstanceIdentifier', {
      description: 'DB instance identifier of the reader (backed-up audit logs live under logs/<identifier>/)',
      value: this.readerInstanceIdentifier,
    });
  }
}
