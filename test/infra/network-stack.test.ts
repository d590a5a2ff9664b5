import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildTestApp, logicalIdsOfType, templateOf } from '../helpers/test-app';

const lab = buildTestApp();
const template: Template = templateOf(lab.stacks.network);
const retained = templateOf(buildTestApp({ destroyLabDataOnTeardown: false }).stacks.network);

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
const subnets = Object.values(template.findResources('AWS::EC2::Subnet')) as Resource[];
const subnetType = (subnet: Resource): unknown =>
  (subnet.Properties.Tags as Array<{ Key: string; Value: string }>).find((tag) => tag.Key === 'aws-cdk:subnet-type')?.Value;

describe('NetworkStack', () => {
  test('is environment-agnostic: two AZs chosen at deploy time', () => {
    expect(lab.stacks.network.environment).toBe('aws://unknown-account/unknown-region');
    const azs = subnets.map((subnet) => JSON.stringify(subnet.Properties.AvailabilityZone));
    expect(new Set(azs).size).toBe(2);
    for (const az of azs) expect(az).toContain('Fn::GetAZs');
  });

  test('one public and one isolated subnet per AZ, no private-with-egress subnets', () => {
    expect(subnets).toHaveLength(4);
    expect(subnets.map(subnetType).sort()).toEqual(['Isolated', 'Isolated', 'Public', 'Public']);
    for (const subnet of subnets) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
  });

  test('no NAT gateway and no Elastic IP: nothing billed by the hour', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::EIP', 0);
  });

  test('only the public subnets route to the internet gateway', () => {
    const [internetGateway] = logicalIdsOfType(template, 'AWS::EC2::InternetGateway');
    template.resourceCountIs('AWS::EC2::InternetGateway', 1);
    const defaultRoutes = template.findResources('AWS::EC2::Route', {
      Properties: { DestinationCidrBlock: '0.0.0.0/0' },
    });
    expect(Object.keys(defaultRoutes)).toHaveLength(2);
    for (const route of Object.values(defaultRoutes)) {
      expect((route as Resource).Properties.GatewayId).toEqual({ Ref: internetGateway });
    }
  });

  test('VPC flow logs capture all traffic into a CloudWatch log group with a retention', () => {
    template.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'VPC',
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
      LogGroupName: { Ref: Match.stringLikeRegexp('FlowLogs') },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('lab teardown deletes the flow-log group; production keeps it', () => {
    template.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Delete' });
    retained.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain' });
  });

  test('an S3 gateway endpoint serves every subnet', () => {
    const endpoints = template.findResources('AWS::EC2::VPCEndpoint');
    expect(Object.keys(endpoints)).toHaveLength(1);
    const endpoint = Object.values(endpoints)[0] as Resource;
    expect(endpoint.Properties.VpcEndpointType).toBe('Gateway');
    expect(JSON.stringify(endpoint.Properties.ServiceName)).toContain('.s3');
    expect(endpoint.Properties.RouteTableIds).toHaveLength(4);
  });

  test('the default security group is stripped of its rules', () => {
    template.resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });

  test('snapshot', () => {
    expect(template.toJSON()).toMatchSnapshot();
  });
});
