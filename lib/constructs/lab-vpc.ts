import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface LabVpcProps {
  /** Delete the flow-log group with the stack instead of leaving it behind. */
  readonly destroyLogsOnTeardown: boolean;
  /** @default one month */
  readonly flowLogRetention?: logs.RetentionDays;
}

/**
 * Two-AZ VPC: a public subnet per AZ for the lab host and an isolated subnet per AZ for Aurora.
 * No NAT gateway: Aurora needs no internet, and the lab host sits in a public subnet (it needs outbound
 * access for Session Manager and packages), so a NAT would only add an hourly charge.
 */
export class LabVpc extends Construct {
  static readonly PUBLIC_SUBNET_GROUP = 'Public';
  static readonly ISOLATED_SUBNET_GROUP = 'Isolated';

  readonly vpc: ec2.Vpc;
  readonly flowLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: LabVpcProps) {
    super(scope, id);

    this.flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.destroyLogsOnTeardown ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.40.0.0/16'),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [
        { name: LabVpc.PUBLIC_SUBNET_GROUP, subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: LabVpc.ISOLATED_SUBNET_GROUP, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: {
        all: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
      // S3 traffic (lab script download, audit-log reads) stays on the AWS network and costs nothing.
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      },
    });
  }
}
