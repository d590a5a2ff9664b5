import { Match, Template } from 'aws-cdk-lib/assertions';
import { METRICS } from '../../lambda/shared/contract';
import { buildTestApp } from '../helpers/test-app';

/** bin's config reaches the pipeline's resources: createStacks maps every pipeline key to its prop. */
describe('createStacks hands the pipeline config to BackupPipelineStack', () => {
  const { stacks } = buildTestApp({
    'pipeline.scheduleRateMinutes': '5',
    'pipeline.includeInstances': 'prod-writer',
    'pipeline.downloaderReservedConcurrency': '3',
    'pipeline.objectLockMode': 'COMPLIANCE',
    'pipeline.retentionDays': '400',
    'pipeline.archiveStorageClass': 'STANDARD_IA',
    'pipeline.archiveAfterDays': '120',
    'pipeline.alarmEmail': 'soc@example.com',
    'pipeline.backupLagAlarmMinutes': '45',
  });
  const template = Template.fromStack(stacks.backupPipeline);

  test('schedule rate and instance filter', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(5 minutes)' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ INCLUDE_INSTANCES: 'prod-writer' }) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 3 });
  });

  test('object lock mode, retention and archive transition', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } } },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Transitions: Match.arrayWith([Match.objectLike({ StorageClass: 'STANDARD_IA', TransitionInDays: 120 })]) }),
        ]),
      },
    });
  });

  test('alarm email and lag threshold', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'soc@example.com' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: METRICS.backupLagSeconds, Threshold: 45 * 60 });
  });
});

describe('pipeline.downloaderReservedConcurrency=none', () => {
  test('leaves every pipeline function unreserved, for accounts with a low concurrency quota', () => {
    const { stacks } = buildTestApp({ 'pipeline.downloaderReservedConcurrency': 'none' });
    const functions = Template.fromStack(stacks.backupPipeline).findResources('AWS::Lambda::Function');
    expect(Object.keys(functions).length).toBeGreaterThan(0);
    for (const fn of Object.values(functions)) expect(fn.Properties?.ReservedConcurrentExecutions).toBeUndefined();
  });
});
