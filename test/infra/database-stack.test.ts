import { Template } from 'aws-cdk-lib/assertions';
import { buildTestApp, logicalIdsOfType, templateOf } from '../helpers/test-app';

const lab = buildTestApp();
const template: Template = templateOf(lab.stacks.database);
const production = templateOf(
  buildTestApp({ destroyLabDataOnTeardown: false, auditEvents: 'CONNECT,QUERY_DDL', stackPrefix: 'Prod' }).stacks.database,
);

type Resource = {
  Type: string;
  Properties: Record<string, unknown>;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
};
const only = (t: Template, type: string): [string, Resource] => {
  const found = Object.entries(t.findResources(type)) as Array<[string, Resource]>;
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0];
};
const [clusterId, cluster] = only(template, 'AWS::RDS::DBCluster');
const instances = Object.values(template.findResources('AWS::RDS::DBInstance')) as Resource[];
const securityGroupIds = logicalIdsOfType(template, 'AWS::EC2::SecurityGroup');
const [databaseSgId] = securityGroupIds.filter((id) => id.includes('DatabaseSecurityGroup'));
const [clientSgId] = securityGroupIds.filter((id) => id.includes('ClientSecurityGroup'));

describe('DatabaseStack: the Aurora cluster', () => {
  test('Aurora MySQL 3 at the configured engine version', () => {
    expect(cluster.Properties).toMatchObject({ Engine: 'aurora-mysql', EngineVersion: '8.0.mysql_aurora.3.10.4' });
  });

  test('one writer and one reader, both db.t4g.medium, private, on the configured version', () => {
    expect(instances).toHaveLength(2);
    const byTier = instances.map((instance) => instance.Properties).sort((a, b) => Number(a.PromotionTier) - Number(b.PromotionTier));
    expect(byTier).toEqual([
      expect.objectContaining({ DBInstanceIdentifier: 'auditlab-writer', PromotionTier: 0 }),
      expect.objectContaining({ DBInstanceIdentifier: 'auditlab-reader', PromotionTier: 1 }),
    ]);
    for (const properties of byTier) {
      expect(properties).toMatchObject({
        DBInstanceClass: 'db.t4g.medium',
        Engine: 'aurora-mysql',
        PubliclyAccessible: false,
        AutoMinorVersionUpgrade: false,
        DBClusterIdentifier: { Ref: clusterId },
      });
    }
  });

  test('identifiers follow the stack prefix', () => {
    expect(cluster.Properties.DBClusterIdentifier).toBe('auditlab-cluster');
    production.hasResourceProperties('AWS::RDS::DBCluster', { DBClusterIdentifier: 'prod-cluster' });
    production.hasResourceProperties('AWS::RDS::DBInstance', { DBInstanceIdentifier: 'prod-writer' });
    production.hasResourceProperties('AWS::RDS::DBInstance', { DBInstanceIdentifier: 'prod-reader' });
  });

  test('storage encrypted, IAM database authentication on, no Extended Support charges', () => {
    expect(cluster.Properties).toMatchObject({
      StorageEncrypted: true,
      EnableIAMDatabaseAuthentication: true,
      EngineLifecycleSupport: 'open-source-rds-extended-support-disabled',
      Port: 3306,
    });
  });

  test('credentials are generated into Secrets Manager and attached to the cluster', () => {
    const [secretId, secret] = only(template, 'AWS::SecretsManager::Secret');
    expect(secret.Properties.GenerateSecretString).toMatchObject({ GenerateStringKey: 'password' });
    expect(JSON.stringify(cluster.Properties.MasterUserPassword)).toContain('{{resolve:secretsmanager:');
    expect(JSON.stringify(cluster.Properties.MasterUserPassword)).toContain(secretId);
    template.hasResourceProperties('AWS::SecretsManager::SecretTargetAttachment', {
      SecretId: { Ref: secretId },
      TargetId: { Ref: clusterId },
      TargetType: 'AWS::RDS::DBCluster',
    });
  });

  test('lives in the isolated subnets of the network stack', () => {
    const [, subnetGroup] = only(template, 'AWS::RDS::DBSubnetGroup');
    const subnetIds = JSON.stringify(subnetGroup.Properties.SubnetIds);
    expect(subnetGroup.Properties.SubnetIds).toHaveLength(2);
    expect(subnetIds.match(/IsolatedSubnet[12]/g)).toEqual(['IsolatedSubnet1', 'IsolatedSubnet2']);
    expect(subnetIds).not.toContain('Public');
  });
});

describe('DatabaseStack: advanced auditing', () => {
  const [parameterGroupId, parameterGroup] = only(template, 'AWS::RDS::DBClusterParameterGroup');

  test('a cluster parameter group turns auditing on with the configured events, and is attached', () => {
    expect(parameterGroup.Properties.Family).toBe('aurora-mysql8.0');
    expect(parameterGroup.Properties.Parameters).toEqual({
      server_audit_logging: '1',
      server_audit_events: 'CONNECT,QUERY,QUERY_DCL,QUERY_DDL,QUERY_DML,TABLE',
    });
    expect(cluster.Properties.DBClusterParameterGroupName).toEqual({ Ref: parameterGroupId });
  });

  test('configured events are written as given', () => {
    production.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', {
      Parameters: { server_audit_logging: '1', server_audit_events: 'CONNECT,QUERY_DDL' },
    });
  });

  test('no invented parameters: Aurora cannot write audit logs to S3 by itself', () => {
    const all = JSON.stringify(template.toJSON());
    expect(all).not.toMatch(/server_audit_s3/);
    expect(Object.keys(parameterGroup.Properties.Parameters as object).every((name) => name.startsWith('server_audit_'))).toBe(true);
  });
});

describe('DatabaseStack: network access', () => {
  test('the database security group admits MySQL from the client security group only', () => {
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')) as Resource[];
    expect(ingress).toHaveLength(1);
    expect(ingress[0].Properties).toEqual({
      Description: 'MySQL from database clients',
      GroupId: { 'Fn::GetAtt': [databaseSgId, 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [clientSgId, 'GroupId'] },
      IpProtocol: 'tcp',
      FromPort: 3306,
      ToPort: 3306,
    });
    expect(cluster.Properties.VpcSecurityGroupIds).toEqual([{ 'Fn::GetAtt': [databaseSgId, 'GroupId'] }]);
  });

  test('no inline ingress and no CIDR-wide rule anywhere; the database sends nothing', () => {
    const resources = template.toJSON().Resources as Record<string, Resource>;
    for (const id of [databaseSgId, clientSgId]) expect(resources[id].Properties.SecurityGroupIngress).toBeUndefined();
    // CDK's "disallow all" placeholder rule: without any egress rule a security group allows all outbound.
    expect(resources[databaseSgId].Properties.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '255.255.255.255/32', Description: 'Disallow all traffic' }),
    ]);
    expect(JSON.stringify(template.toJSON())).not.toContain('0.0.0.0/0');
  });

  test('the client security group may reach the database on MySQL and nothing else', () => {
    // Its only egress rule is a separate resource (it names another group), which replaces the default
    // allow-all rule when CloudFormation creates it; so no inline egress may remain.
    const resources = template.toJSON().Resources as Record<string, Resource>;
    expect(resources[clientSgId].Properties.SecurityGroupEgress).toBeUndefined();
    const egress = Object.values(template.findResources('AWS::EC2::SecurityGroupEgress')) as Resource[];
    expect(egress.map((rule) => rule.Properties)).toEqual([
      {
        Description: 'MySQL from database clients',
        GroupId: { 'Fn::GetAtt': [clientSgId, 'GroupId'] },
        DestinationSecurityGroupId: { 'Fn::GetAtt': [databaseSgId, 'GroupId'] },
        IpProtocol: 'tcp',
        FromPort: 3306,
        ToPort: 3306,
      },
    ]);
  });

  test('the client security group is exported for the lab host (and any other client)', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const published = Object.values(outputs).map((output) => JSON.stringify(output.Value));
    expect(published).toContain(JSON.stringify({ 'Fn::GetAtt': [clientSgId, 'GroupId'] }));
  });
});

describe('DatabaseStack: teardown', () => {
  test('lab default: no deletion protection, cluster and secret deleted without a snapshot', () => {
    expect(cluster.Properties.DeletionProtection).toBe(false);
    expect(cluster.DeletionPolicy).toBe('Delete');
    expect(cluster.Properties.BackupRetentionPeriod).toBe(1);
    template.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Delete' });
    for (const instance of instances) expect(instance.DeletionPolicy).toBe('Delete');
  });

  test('destroyLabDataOnTeardown=false: deletion protection, final snapshot, secret kept, 7 days of backups', () => {
    production.hasResource('AWS::RDS::DBCluster', {
      DeletionPolicy: 'Snapshot',
      UpdateReplacePolicy: 'Snapshot',
      Properties: { DeletionProtection: true, BackupRetentionPeriod: 7 },
    });
    production.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain' });
  });
});

describe('DatabaseStack: outputs', () => {
  test('writer and reader endpoints, secret ARN and instance identifiers', () => {
    const [attachmentId] = logicalIdsOfType(template, 'AWS::SecretsManager::SecretTargetAttachment');
    template.hasOutput('WriterEndpoint', { Value: { 'Fn::GetAtt': [clusterId, 'Endpoint.Address'] } });
    template.hasOutput('ReaderEndpoint', { Value: { 'Fn::GetAtt': [clusterId, 'ReadEndpoint.Address'] } });
    template.hasOutput('DatabaseSecretArn', { Value: { Ref: attachmentId } });
    template.hasOutput('WriterInstanceIdentifier', { Value: 'auditlab-writer' });
    template.hasOutput('ReaderInstanceIdentifier', { Value: 'auditlab-reader' });
  });

  test('snapshot', () => {
    expect(template.toJSON()).toMatchSnapshot();
  });
});
