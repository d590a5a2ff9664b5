import { CfnOutput, Fn, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { SshAccess } from '../config';
import { LabHost } from '../constructs/lab-host';

export interface LabHostStackProps extends StackProps {
  readonly vpc: ec2.IVpc;
  readonly cluster: rds.IDatabaseCluster;
  readonly secret: secretsmanager.ISecret;
  readonly databaseClientSecurityGroup: ec2.ISecurityGroup;
  readonly instanceType: string;
  readonly ssh?: SshAccess;
  /** The audit-log backup bucket, once the pipeline exists. */
  readonly auditLogBucket?: s3.IBucket;
}

/**
 * The lab host that drives the workload, with the outputs needed to reach it. (The database outputs are
 * in the DatabaseStack: an output that only re-published another stack's value would be a cross-stack
 * read in the Outputs section, which cfn-lint 1.51 does not accept yet.)
 */
export class LabHostStack extends Stack {
  readonly host: LabHost;

  constructor(scope: Construct, id: string, props: LabHostStackProps) {
    super(scope, id, props);
    this.host = new LabHost(this, 'LabHost', {
      vpc: props.vpc,
      instanceType: props.instanceType,
      cluster: props.cluster,
      secret: props.secret,
      databaseClientSecurityGroup: props.databaseClientSecurityGroup,
      ssh: props.ssh,
      auditLogBucket: props.auditLogBucket,
    });

    const instanceId = this.host.instance.instanceId;
    new CfnOutput(this, 'LabInstanceId', { description: 'EC2 instance id of the lab host', value: instanceId });
    new CfnOutput(this, 'SessionCommand', {
      description: 'Opens a shell on the lab host through Session Manager',
      value: Fn.join('', ['aws ssm start-session --target ', instanceId, ' --region ', this.region]),
    });
  }
}
