import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { AUDIT_ANALYSER_BUNDLE, LAB_SHELL_SCRIPTS } from '../../lib/constructs/lab-scripts-asset';
import { LOG_OBJECT_PREFIX } from '../../lambda/shared/contract';
import { formatNagFindings, unacknowledgedNagFindings } from '../helpers/cdk-nag';
import { PROJECT_ROOT, buildLabHostWithBucket, buildTestApp, logicalIdsOfType, snapshotJson, templateOf } from '../helpers/test-app';

// The default app, with the lab scripts really bundled (the other stack tests skip bundling).
const lab = buildTestApp({}, { bundle: true });
const template: Template = templateOf(lab.stacks.labHost);
const withSsh = templateOf(buildTestApp({ sshCidr: '203.0.113.7/32', keyPairName: 'lab-key' }).stacks.labHost);

type Resource = { Type: string; Properties: Record<string, unknown>; CreationPolicy?: unknown; DependsOn?: unknown };
const resources = template.toJSON().Resources as Record<string, Resource>;
const [instanceId] = logicalIdsOfType(template, 'AWS::EC2::Instance');
const instance = resources[instanceId];
const [hostSgId] = logicalIdsOfType(template, 'AWS::EC2::SecurityGroup');

/** User data with CloudFormation values written as `<...>` placeholders, to read it as the script it is. */
function userDataScript(t: Template): string {
  const [id] = logicalIdsOfType(t, 'AWS::EC2::Instance');
  const userData = ((t.toJSON().Resources as Record<string, Resource>)[id].Properties.UserData as Record<string, unknown>)['Fn::Base64'];
  const [, parts] = (userData as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  return parts.map((part) => (typeof part === 'string' ? part : `<${JSON.stringify(part)}>`)).join('');
}
const script = userDataScript(template);
const lines = script.split('\n');
const lineIndex = (pattern: RegExp): number => {
  const index = lines.findIndex((line) => pattern.test(line));
  if (index < 0) throw new Error(`no user data line matches ${pattern}`);
  return index;
};

describe('LabHostStack: the instance', () => {
  test('Amazon Linux 2023 arm64 from the public SSM parameter (no context lookup)', () => {
    const parameters = template.toJSON().Parameters as Record<string, { Type: string; Default: string }>;
    const [amiParameter] = Object.entries(parameters).filter(([, parameter]) => parameter.Default.includes('ami-amazon-linux'));
    expect(amiParameter[1]).toEqual({
      Type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>',
      Default: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64',
    });
    expect(instance.Properties.ImageId).toEqual({ Ref: amiParameter[0] });
  });

  test('t4g.micro in a public subnet with a public IP (no NAT in this VPC), the client SG attached', () => {
    expect(instance.Properties.InstanceType).toBe('t4g.micro');
    const [networkInterface] = instance.Properties.NetworkInterfaces as Array<Record<string, unknown>>;
    expect(networkInterface.AssociatePublicIpAddress).toBe(true);
    expect(JSON.stringify(networkInterface.SubnetId)).toMatch(/PublicSubnet1/);
    const groups = networkInterface.GroupSet as unknown[];
    expect(groups).toHaveLength(2);
    expect(groups[0]).toEqual({ 'Fn::GetAtt': [hostSgId, 'GroupId'] });
    expect(JSON.stringify(groups[1])).toMatch(/AuditLab-Database.*ClientSecurityGroup/);
  });

  test('IMDSv2 is required through the launch template', () => {
    const [launchTemplateId] = logicalIdsOfType(template, 'AWS::EC2::LaunchTemplate');
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: { MetadataOptions: { HttpTokens: 'required' } },
    });
    expect(JSON.stringify(instance.Properties.LaunchTemplate)).toContain(launchTemplateId);
  });

  test('encrypted gp3 root volume, deleted with the instance', () => {
    expect(instance.Properties.BlockDeviceMappings).toEqual([
      { DeviceName: '/dev/xvda', Ebs: { DeleteOnTermination: true, Encrypted: true, VolumeSize: 20, VolumeType: 'gp3' } },
    ]);
  });

  test('creation waits (45 minutes at most) for one success signal from the host', () => {
    expect(instance.CreationPolicy).toEqual({ ResourceSignal: { Count: 1, Timeout: 'PT45M' } });
  });
});

describe('LabHostStack: security group', () => {
  test('no inbound rule by default, outbound open for packages, SSM and S3', () => {
    const { Properties } = resources[hostSgId];
    expect(Properties.SecurityGroupIngress).toBeUndefined();
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
    expect(Properties.SecurityGroupEgress).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: '-1' })]);
    expect(instance.Properties.KeyName).toBeUndefined();
  });

  test('with sshCidr and keyPairName: SSH from that CIDR only, and the key pair', () => {
    withSsh.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: [{ CidrIp: '203.0.113.7/32', IpProtocol: 'tcp', FromPort: 22, ToPort: 22, Description: 'SSH from the configured CIDR' }],
    });
    withSsh.hasResourceProperties('AWS::EC2::Instance', { KeyName: 'lab-key' });
  });

  test('no ingress from 0.0.0.0/0 in either shape', () => {
    for (const t of [template, withSsh]) {
      for (const group of Object.values(t.findResources('AWS::EC2::SecurityGroup')) as Resource[]) {
        for (const rule of (group.Properties.SecurityGroupIngress as Array<Record<string, unknown>> | undefined) ?? []) {
          expect(rule.CidrIp).not.toBe('0.0.0.0/0');
          expect(rule.CidrIpv6).not.toBe('::/0');
        }
      }
    }
  });
});

describe('LabHostStack: instance role', () => {
  const [roleId] = logicalIdsOfType(template, 'AWS::IAM::Role');
  const statements = (): Array<{ Action: string | string[]; Resource: unknown }> => {
    const [policy] = Object.values(template.findResources('AWS::IAM::Policy')) as Resource[];
    return (policy.Properties.PolicyDocument as { Statement: Array<{ Action: string | string[]; Resource: unknown }> }).Statement;
  };

  test('EC2 role with the Session Manager core policy', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' } }] },
    });
    const role = resources[roleId];
    expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toContain(':iam::aws:policy/AmazonSSMManagedInstanceCore');
    expect(role.Properties.ManagedPolicyArns).toHaveLength(1);
  });

  test('reads exactly the database secret (through a cross-stack reference)', () => {
    const secretRead = statements().find((statement) => [statement.Action].flat().includes('secretsmanager:GetSecretValue'));
    expect(secretRead).toBeDefined();
    expect([secretRead!.Action].flat().sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    expect(JSON.stringify(secretRead!.Resource)).toMatch(/"StackName":"AuditLab-Database".*SecretAttachment/);
  });

  test('reads the script bundle from the CDK assets bucket and the backups under logs/ only', () => {
    const s3Statements = statements().filter((statement) => [statement.Action].flat().some((action) => action.startsWith('s3:')));
    const resources = JSON.stringify(s3Statements.map((statement) => statement.Resource));
    expect(resources).toContain('cdk-hnb659fds-assets-');
    expect(resources).toMatch(/"StackName":"AuditLab-BackupPipeline".*\/logs\/\*/);
    // The backup bucket's objects are readable only under the log prefix.
    const backupObjectArns = (resources.match(/PipelineBucket[^"]*Arn[^"]*"}},"\/[^"]*"/g) ?? []).map((arn) => arn.split('"/')[1]);
    expect(backupObjectArns).toEqual([`${LOG_OBJECT_PREFIX}*"`]);
  });
});

describe('LabHostStack: user data', () => {
  test('is a bash script that stops at the first failure and signals CloudFormation either way', () => {
    expect(lines[0]).toBe('#!/bin/bash');
    expect(script).toContain('trap exitTrap EXIT');
    expect(script).toMatch(
      new RegExp(`/opt/aws/bin/cfn-signal --stack AuditLab-LabHost --resource ${instanceId} --region <\\{"Ref":"AWS::Region"\\}> -e \\$exitCode`),
    );
    expect(lineIndex(/^set -euo pipefail$/)).toBeLessThan(lineIndex(/^dnf install/));
  });

  test('installs cfn-signal (aws-cfn-bootstrap) before anything that could fail later', () => {
    expect(lines[lineIndex(/^dnf install/)]).toBe('dnf install -y aws-cfn-bootstrap unzip');
  });

  test('writes the lab settings file the scripts read', () => {
    const settings = script.slice(script.indexOf("cat > /etc/audit-lab/settings.env <<'SETTINGS'\n"), script.indexOf('\nSETTINGS\n'));
    const keys = settings.split('\n').slice(1).map((line) => line.split('=')[0]);
    expect(keys).toEqual(['LAB_WRITER_HOST', 'LAB_READER_HOST', 'LAB_DB_PORT', 'LAB_DB_NAME', 'LAB_SECRET_ARN', 'AWS_REGION', 'LAB_BUCKET']);
    expect(settings).toMatch(/LAB_WRITER_HOST='<\{"Fn::GetStackOutput":\{"StackName":"AuditLab-Database".*EndpointAddress.*\}>'/);
    expect(settings).toMatch(/LAB_READER_HOST='<\{"Fn::GetStackOutput":.*ReadEndpointAddress.*\}>'/);
    expect(settings).toMatch(/LAB_DB_PORT='<\{"Fn::GetStackOutput":.*EndpointPort.*\}>'/);
    expect(settings).toContain("LAB_DB_NAME='sbtest'");
    expect(settings).toMatch(/LAB_SECRET_ARN='<\{"Fn::GetStackOutput":.*SecretAttachment.*\}>'/);
    expect(settings).toContain(`AWS_REGION='<{"Ref":"AWS::Region"}>'`);
    expect(settings).toMatch(/LAB_BUCKET='<\{"Fn::GetStackOutput":\{"StackName":"AuditLab-BackupPipeline".*PipelineBucket.*\}>'/);
    expect(script).toContain('chmod 0644 /etc/audit-lab/settings.env');
  });

  test('installs the script bundle under /home/ec2-user/scripts, owned by ec2-user', () => {
    expect(script).toMatch(/aws s3 cp 's3:\/\/<\{"Fn::Sub":"cdk-hnb659fds-assets-\$\{AWS::AccountId\}-\$\{AWS::Region\}"\}>\/[0-9a-f]{64}\.zip' \/tmp\/audit-lab-scripts\.zip/);
    expect(script).toContain('unzip -o -q /tmp/audit-lab-scripts.zip -d /home/ec2-user/scripts');
    expect(script).toContain('chown -R ec2-user:ec2-user /home/ec2-user/scripts');
  });

  test('runs setup_ec2.sh (MySQL client, Node.js, sysbench from source), then prepares and runs sysbench as ec2-user', () => {
    const settingsWritten = lineIndex(/^chmod 0644 \/etc\/audit-lab\/settings.env$/);
    const unzipped = lineIndex(/^unzip /);
    const setup = lineIndex(/^\/home\/ec2-user\/scripts\/setup_ec2\.sh$/);
    const prepare = lineIndex(/^sudo -H -u ec2-user -- \/home\/ec2-user\/scripts\/setup_sysbench\.sh prepare$/);
    const run = lineIndex(/^sudo -H -u ec2-user -- \/home\/ec2-user\/scripts\/setup_sysbench\.sh run --target both --time 60$/);
    expect([settingsWritten, unzipped, setup, prepare, run]).toEqual([...[settingsWritten, unzipped, setup, prepare, run]].sort((a, b) => a - b));
    expect(run).toBe(lines.length - 1);
  });

  test('a change to the user data replaces the instance (setup only runs at first boot)', () => {
    expect(instanceId).toMatch(/^LabHostInstance[0-9A-F]{8}[0-9a-f]{16}$/);
  });
});

describe('LabHostStack: the script bundle', () => {
  const assetDir = (): string => {
    const assembly = lab.app.synth();
    const key = /\/([0-9a-f]{64})\.zip'/.exec(script)![1];
    return path.join(assembly.directory, `asset.${key}`);
  };

  test('holds the three lab scripts (executable), their lib/ and the bundled analyser', () => {
    const dir = assetDir();
    expect(fs.readdirSync(dir).sort()).toEqual([...LAB_SHELL_SCRIPTS, AUDIT_ANALYSER_BUNDLE, 'lib'].sort());
    for (const name of LAB_SHELL_SCRIPTS) {
      expect(fs.statSync(path.join(dir, name)).mode & 0o111).toBe(0o111);
      expect(fs.readFileSync(path.join(dir, name), 'utf8')).toBe(fs.readFileSync(path.join(PROJECT_ROOT, 'scripts', name), 'utf8'));
    }
    expect(fs.existsSync(path.join(dir, 'lib', 'common.sh'))).toBe(true);
  });

  test('the analyser is one self-contained file that node runs', () => {
    const bundle = path.join(assetDir(), AUDIT_ANALYSER_BUNDLE);
    // The assembly lives in the OS temp folder, where no node_modules can be resolved: it runs only if
    // everything it loads (the S3 client included) is inside the bundle.
    expect(path.relative(PROJECT_ROOT, bundle).startsWith('..')).toBe(true);
    const help = spawnSync(process.execPath, [bundle, '--help'], { encoding: 'utf8', cwd: path.dirname(bundle) });
    expect(help.status).toBe(0);
    expect(`${help.stdout}${help.stderr}`).toMatch(/verify/);
  });
});

describe('LabHostStack: outputs', () => {
  test('instance id and the exact Session Manager command', () => {
    template.hasOutput('LabInstanceId', { Value: { Ref: instanceId } });
    template.hasOutput('SessionCommand', {
      Value: { 'Fn::Join': ['', ['aws ssm start-session --target ', { Ref: instanceId }, ' --region ', { Ref: 'AWS::Region' }]] },
    });
  });

  test('deploys after the network, database and backup pipeline stacks it reads from', () => {
    expect(lab.stacks.labHost.dependencies.map((stack) => stack.stackName).sort()).toEqual([
      'AuditLab-BackupPipeline',
      'AuditLab-Database',
      'AuditLab-Network',
    ]);
  });

  test('snapshot', () => {
    expect(snapshotJson(template, { [instanceId]: 'LabHostInstance[USER-DATA-HASH]' })).toMatchSnapshot();
  });
});

describe('LabHostStack with the audit-log bucket', () => {
  const { host } = buildLabHostWithBucket();
  const withBucket = templateOf(host);
  const [policy] = Object.values(withBucket.findResources('AWS::IAM::Policy')) as Resource[];
  const policyStatements = (policy.Properties.PolicyDocument as { Statement: Array<{ Action: string[]; Resource: unknown }> }).Statement;
  const fromBucketOwner = (value: unknown, outputName: RegExp): boolean => {
    const reference = (value as { 'Fn::GetStackOutput'?: { StackName: string; OutputName: string } })['Fn::GetStackOutput'];
    return reference?.StackName === 'BucketOwner' && outputName.test(reference.OutputName);
  };

  test(`grants read on ${LOG_OBJECT_PREFIX}* objects and listing of the bucket, plus decrypting with its key`, () => {
    const s3Read = policyStatements.find((statement) => statement.Action.includes('s3:GetObject*'))!;
    expect(s3Read.Action).toEqual(['s3:GetBucket*', 's3:GetObject*', 's3:List*']);
    const bucketResources = (s3Read.Resource as unknown[]).filter((resource) => JSON.stringify(resource).includes('BucketOwner'));
    expect(bucketResources).toHaveLength(2);
    expect(fromBucketOwner(bucketResources[0], /AuditLogs.*Arn/)).toBe(true);
    const [objects, suffix] = (bucketResources[1] as { 'Fn::Join': [string, [unknown, string]] })['Fn::Join'][1];
    expect(fromBucketOwner(objects, /AuditLogs.*Arn/)).toBe(true);
    expect(suffix).toBe(`/${LOG_OBJECT_PREFIX}*`);
    const kms = policyStatements.find((statement) => statement.Action.includes('kms:Decrypt'))!;
    expect(fromBucketOwner(kms.Resource, /AuditLogsKey.*Arn/)).toBe(true);
    expect(JSON.stringify(policyStatements)).not.toMatch(/s3:(Put|Delete|\*)/);
  });

  test('passes the bucket name to the scripts', () => {
    expect(userDataScript(withBucket)).toMatch(/LAB_BUCKET='<\{"Fn::GetStackOutput":\{"StackName":"BucketOwner".*AuditLogs.*\}>'/);
  });

  test('stays cdk-nag clean: the prefix wildcard is acknowledged for the bucket ARN as this stack renders it', () => {
    expect(formatNagFindings(unacknowledgedNagFindings([host]))).toBe('');
  });
});
