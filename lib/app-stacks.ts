import { Duration } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { AppConfig } from './config';
import { BackupPipelineStack } from './stacks/backup-pipeline-stack';
import { DatabaseStack } from './stacks/database-stack';
import { LabHostStack } from './stacks/lab-host-stack';
import { NetworkStack } from './stacks/network-stack';

export interface AppStacks {
  readonly network: NetworkStack;
  readonly database: DatabaseStack;
  readonly labHost: LabHostStack;
  readonly backupPipeline: BackupPipelineStack;
}

/**
 * Creates every stack of the app from one validated config and wires them through props (CDK turns the
 * references into cross-stack outputs). Stacks are environment-agnostic: synth needs no credentials.
 */
export function createStacks(scope: Construct, config: AppConfig): AppStacks {
  const name = (suffix: string): string => `${config.stackPrefix}-${suffix}`;

  const network = new NetworkStack(scope, name('Network'), {
    description: 'Aurora audit-log lab: VPC with public and isolated subnets, flow logs, S3 endpoint',
    destroyLabDataOnTeardown: config.destroyLabDataOnTeardown,
  });

  const database = new DatabaseStack(scope, name('Database'), {
    description: 'Aurora audit-log lab: Aurora MySQL 3 cluster with advanced auditing',
    vpc: network.vpc,
    engineVersion: config.auroraEngineVersion,
    instanceClass: config.dbInstanceClass,
    auditEvents: config.auditEvents,
    identifierBase: config.stackPrefix,
    destroyLabDataOnTeardown: config.destroyLabDataOnTeardown,
  });

  // Created first so the lab host can read the backups back; the pipeline itself never depends on the
  // lab and deploys alone into any account.
  const backupPipeline = new BackupPipelineStack(scope, name('BackupPipeline'), {
    description: 'Aurora MySQL audit-log backup pipeline: scheduler, scanner, detector, ledger, downloader, S3',
    pipeline: {
      scheduleRate: Duration.minutes(config.pipeline.scheduleRateMinutes),
      includeInstances: [...config.pipeline.includeInstances],
      excludeInstances: [...config.pipeline.excludeInstances],
      retainData: config.pipeline.retainPipelineData,
      downloaderReservedConcurrency: config.pipeline.downloaderReservedConcurrency,
      logRetention: config.pipeline.logRetentionDays,
      objectLockMode: config.pipeline.objectLockMode,
      retentionDays: config.pipeline.retentionDays,
      archiveStorageClass: config.pipeline.archiveStorageClass,
      archiveAfterDays: config.pipeline.archiveAfterDays,
      retentionAdminRoleArn: config.pipeline.retentionAdminRoleArn,
      alarmEmail: config.pipeline.alarmEmail,
      backupLagAlarmThreshold: Duration.minutes(config.pipeline.backupLagAlarmMinutes),
    },
  });

  const labHost = new LabHostStack(scope, name('LabHost'), {
    description: 'Aurora audit-log lab: workload host (sysbench, lab scripts) reached through Session Manager',
    vpc: network.vpc,
    cluster: database.cluster,
    secret: database.secret,
    databaseClientSecurityGroup: database.clientSecurityGroup,
    instanceType: config.labInstanceType,
    ssh: config.ssh,
    auditLogBucket: backupPipeline.bucket,
  });

  return { network, database, labHost, backupPipeline };
}
