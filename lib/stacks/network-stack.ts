import { Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { LabVpc } from '../constructs/lab-vpc';

export interface NetworkStackProps extends StackProps {
  readonly destroyLabDataOnTeardown: boolean;
}

/** The lab's network: VPC, subnets, flow logs, S3 gateway endpoint. */
export class NetworkStack extends Stack {
  readonly vpc: ec2.IVpc;

  constructor(scope: Construct, id: string, props: NetworkStackProps) {
    super(scope, id, props);
    this.vpc = new LabVpc(this, 'Network', { destroyLogsOnTeardown: props.destroyLabDataOnTeardown }).vpc;
  }
}
