import { Aws, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { LOG_OBJECT_PREFIX } from '../../lambda/shared/contract';
import type { SshAccess } from '../config';
import { LabScriptsAsset } from './lab-scripts-asset';

/** Where the lab scripts read their connection settings (see notes/lab-settings.md). */
export const LAB_SETTINGS_DIR = '/etc/audit-lab';
export const LAB_SETTINGS_FILE = `${LAB_SETTINGS_DIR}/settings.env`;
export const LAB_SCRIPTS_DIR = '/home/ec2-user/scripts';
/** Workload schema sysbench prepares. */
export const LAB_DB_NAME = 'sbtest';
/**
 * The sysbench run at boot, on the writer and then the reader: each instance keeps its own audit files,
 * so both have something for the pipeline to back up from the start.
 */
export const BOOT_WORKLOAD_SECONDS = 60;
/**
 * How long CloudFormation waits for the host's success signal. Building sysbench from source on a
 * t4g.micro takes around 20 minutes; the prepare and the short run add a few more.
 */
export const SETUP_SIGNAL_TIMEOUT = Duration.minutes(45);

const ROOT_VOLUME_GIB = 20;
const LOCAL_BUNDLE = '/tmp/audit-lab-scripts.zip';

export interface LabHostProps {
  readonly vpc: ec2.IVpc;
  readonly instanceType: string;
  readonly cluster: rds.IDatabaseCluster;
  readonly secret: secretsmanager.ISecret;
  /** The database's client security group: attaching it is what opens the MySQL port to this host. */
  readonly databaseClientSecurityGroup: ec2.ISecurityGroup;
  /** Absent: Session Manager only, no inbound rule. */
  readonly ssh?: SshAccess;
  /** The audit-log backup bucket, once the pipeline exists: the host may read the backed-up logs. */
  readonly auditLogBucket?: s3.IBucket;
}

/**
 * Amazon Linux 2023 arm64 host in a public subnet that installs the MySQL client and sysbench, writes the
 * lab settings, installs the lab scripts and runs a first workload. The instance only counts as created
 * once its user data signals success, so a broken setup fails the deployment instead of hiding on the box.
 */
export class LabHost extends Construct {
  readonly instance: ec2.Instance;
  readonly role: iam.Role;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: LabHostProps) {
    super(scope, id);

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'Audit-log lab host: Session Manager, the database secret, lab scripts, backed-up audit logs',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    props.secret.grantRead(this.role);

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: props.ssh
        ? 'Audit-log lab host: SSH from the configured CIDR; outbound for packages, SSM and S3'
        : 'Audit-log lab host: no inbound (Session Manager); outbound for packages, SSM and S3',
      allowAllOutbound: true,
    });
    if (props.ssh) {
      this.securityGroup.addIngressRule(ec2.Peer.ipv4(props.ssh.cidr), ec2.Port.tcp(22), 'SSH from the configured CIDR');
    }

    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      // Public subnet with a public IP instead of a NAT gateway: the host needs outbound HTTPS for Session
      // Manager, dnf and the sysbench source, and its security group still admits nothing inbound.
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      associatePublicIpAddress: true,
      instanceType: new ec2.InstanceType(props.instanceType),
      machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
      role: this.role,
      securityGroup: this.securityGroup,
      requireImdsv2: true,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(ROOT_VOLUME_GIB, {
            encrypted: true,
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            deleteOnTermination: true,
          }),
        },
      ],
      ...(props.ssh ? { keyPair: ec2.KeyPair.fromKeyPairName(this, 'KeyPair', props.ssh.keyPairName) } : {}),
      // New scripts or settings mean a new host: setup only runs at first boot.
      userDataCausesReplacement: true,
    });
    this.instance.addSecurityGroup(props.databaseClientSecurityGroup);
    const cfnInstance = this.instance.node.defaultChild as ec2.CfnInstance;
    cfnInstance.cfnOptions.creationPolicy = {
      resourceSignal: { count: 1, timeout: SETUP_SIGNAL_TIMEOUT.toIsoString() },
    };

    const scripts = new LabScriptsAsset(this, 'Scripts').asset;
    scripts.grantRead(this.role);
    if (props.auditLogBucket) {
      const backedUpLogs = `${LOG_OBJECT_PREFIX}*`;
      props.auditLogBucket.grantRead(this.role, backedUpLogs);
      this.acknowledgeAuditLogRead(props.auditLogBucket.arnForObjects(backedUpLogs));
    }

    this.writeUserData(props, scripts.s3BucketName, scripts.s3ObjectKey);
    this.acknowledgeFindings();
  }

  private writeUserData(props: LabHostProps, scriptsBucket: string, scriptsKey: string): void {
    const userData = this.instance.userData;
    // Runs on every exit of the script: success sends 0, any failure (set -e) its exit code.
    userData.addSignalOnExitCommand(this.instance);
    const settings: Record<string, string> = {
      LAB_WRITER_HOST: props.cluster.clusterEndpoint.hostname,
      LAB_READER_HOST: props.cluster.clusterReadEndpoint.hostname,
      LAB_DB_PORT: props.cluster.clusterEndpoint.port.toString(),
      LAB_DB_NAME,
      LAB_SECRET_ARN: props.secret.secretArn,
      AWS_REGION: Aws.REGION,
      LAB_BUCKET: props.auditLogBucket?.bucketName ?? '',
    };
    // -H: the scripts (and the AWS CLI they call) see ec2-user's home, not root's.
    const runAsEc2User = (command: string): string => `sudo -H -u ec2-user -- ${LAB_SCRIPTS_DIR}/${command}`;
    userData.addCommands(
      'set -euo pipefail',
      // cfn-signal (used by the exit trap) ships in aws-cfn-bootstrap; unzip unpacks the lab scripts.
      'dnf install -y aws-cfn-bootstrap unzip',
      `install -d -m 0755 ${LAB_SETTINGS_DIR}`,
      `cat > ${LAB_SETTINGS_FILE} <<'SETTINGS'`,
      ...Object.entries(settings).map(([key, value]) => `${key}='${value}'`),
      'SETTINGS',
      `chmod 0644 ${LAB_SETTINGS_FILE}`,
      `aws s3 cp 's3://${scriptsBucket}/${scriptsKey}' ${LOCAL_BUNDLE} --region ${Aws.REGION}`,
      `install -d -o ec2-user -g ec2-user -m 0755 ${LAB_SCRIPTS_DIR}`,
      `unzip -o -q ${LOCAL_BUNDLE} -d ${LAB_SCRIPTS_DIR}`,
      `chmod 0755 ${LAB_SCRIPTS_DIR}/*.sh`,
      `chown -R ec2-user:ec2-user ${LAB_SCRIPTS_DIR}`,
      // Installs the MariaDB client, Node.js and sysbench 1.0.20 built from source with the MySQL driver.
      `${LAB_SCRIPTS_DIR}/setup_ec2.sh`,
      runAsEc2User('setup_sysbench.sh prepare'),
      runAsEc2User(`setup_sysbench.sh run --target both --time ${BOOT_WORKLOAD_SECONDS}`),
    );
  }

  private acknowledgeFindings(): void {
    const cfnInstance = this.instance.node.defaultChild as ec2.CfnInstance;
    Validations.of(cfnInstance).acknowledge(
      {
        id: 'AwsSolutions-EC28',
        reason: 'Detailed (1-minute) monitoring is billed per metric; 5-minute basic monitoring suits a lab workload driver.',
      },
      {
        id: 'AwsSolutions-EC29',
        reason:
          'The lab host is disposable and rebuilt from user data; termination protection would block cdk destroy.',
      },
    );
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      reason: 'AmazonSSMManagedInstanceCore is the AWS-maintained minimum for Session Manager access to the host.',
    });
    const policy = this.role.node.findChild('DefaultPolicy');
    const stack = Stack.of(this);
    const assetsBucket = `arn:<AWS::Partition>:s3:::cdk-${stack.synthesizer.bootstrapQualifier ?? 'hnb659fds'}-assets-<AWS::AccountId>-<AWS::Region>`;
    const assetReason =
      'Read access to the CDK assets bucket, granted by Asset.grantRead so the host can download its script ' +
      'bundle; the wildcards are the S3 read action families CDK grants.';
    for (const finding of ['Action::s3:GetObject*', 'Action::s3:GetBucket*', 'Action::s3:List*', `Resource::${assetsBucket}/*`]) {
      Validations.of(policy).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason: assetReason });
    }
  }

  /**
   * The read grant on the backed-up logs ends in `logs/*`. cdk-nag names that finding after the resource
   * as rendered in this stack, and for a bucket from another stack that rendering (a cross-stack
   * reference) only exists once CDK has resolved references. Construct validation runs after that and
   * before validation plugins such as cdk-nag, so the acknowledgement is recorded there.
   */
  private acknowledgeAuditLogRead(objectsArn: string): void {
    const policy = this.role.node.findChild('DefaultPolicy');
    this.node.addValidation({
      validate: () => {
        const rendered = flattenForNag(Stack.of(this).resolve(objectsArn));
        Validations.of(policy).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${rendered}]`,
          reason:
            `Read-only access to the backed-up audit logs (${LOG_OBJECT_PREFIX}* in the backup bucket) so the ` +
            'lab scripts can verify what the pipeline stored; the wildcard is the key prefix.',
        });
        return [];
      },
    });
  }
}

/**
 * Renders a resolved CloudFormation value the way cdk-nag names findings (its flattenCfnReference):
 * joins are concatenated, Fn::Sub variables become <name>, Ref and GetAtt become <Id> and <Id.Attr>,
 * Fn::ImportValue becomes its export name, anything else is JSON.
 */
function flattenForNag(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/}/g, '>');
  if (typeof value === 'object' && value !== null) {
    const node = value as Record<string, unknown>;
    if (node['Fn::Join']) {
      const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
      return items.map(flattenForNag).join(delimiter);
    }
    if (node['Fn::Sub']) return flattenForNag(node['Fn::Sub']);
    if (node['Fn::GetAtt']) {
      const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenForNag(resource)}.${flattenForNag(attribute)}>`;
    }
    if (node['Fn::ImportValue']) return flattenForNag(node['Fn::ImportValue']);
    if (node.Ref) return `<${flattenForNag(node.Ref)}>`;
  }
  return JSON.stringify(value);
}
