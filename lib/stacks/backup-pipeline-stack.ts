import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BackupPipeline, BackupPipelineProps } from '../constructs/backup-pipeline';

export interface BackupPipelineStackProps extends StackProps {
  readonly pipeline?: BackupPipelineProps;
}

/**
 * The product: deploys on its own into any account (no lab needed) and backs up every audit-enabled
 * Aurora MySQL instance it discovers there.
 */
export class BackupPipelineStack extends Stack {
  /** Handed to the lab host so it can read `logs/*` back. */
  public readonly bucket: s3.IBucket;
  public readonly pipeline: BackupPipeline;

  constructor(scope: Construct, id: string, props: BackupPipelineStackProps = {}) {
    super(scope, id, props);

    this.pipeline = new BackupPipeline(this, 'Pipeline', props.pipeline);
    this.bucket = this.pipeline.bucket;

    new CfnOutput(this, 'BackupBucketName', {
      description: 'Bucket holding the backed-up audit logs under logs/',
      value: this.pipeline.bucket.bucketName,
    });
    new CfnOutput(this, 'LedgerTableName', {
      description: 'DynamoDB ledger: one item per (instance, audit log file)',
      value: this.pipeline.ledgerTable.tableName,
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'SNS topic every pipeline alarm notifies: subscribe your on-call channel',
      value: this.pipeline.alarmTopic.topicArn,
    });
    new CfnOutput(this, 'DashboardName', {
      description: 'CloudWatch dashboard of the backup pipeline',
      value: this.pipeline.dashboard.dashboardName,
    });
  }
}
