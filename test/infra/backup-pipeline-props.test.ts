import { Duration } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { ENV } from '../../lambda/shared/contract';
import { onlyResource, pipelineFunction, referencedId, resourcesOfType, synthPipeline } from '../helpers/pipeline-template';

// Props only change the template, never the bundles: skip esbuild so several variants stay cheap.
const noBundling = { bundle: false } as const;

// Every prop set away from its default: the lab's throw-away shape.
const { template } = synthPipeline(
  {
    scheduleRate: Duration.minutes(5),
    includeInstances: ['audit-lab-writer', 'audit-lab-reader'],
    excludeInstances: ['audit-lab-reader'],
    retainData: false,
    downloaderReservedConcurrency: 3,
    logRetention: RetentionDays.ONE_WEEK,
  },
  noBundling,
);

const [scannerId] = pipelineFunction(template, 'scanner');
const [reconcilerId] = pipelineFunction(template, 'reconciler');
const invoking = (functionId: string) => ({ Target: Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId, 'Arn'] } }) });

test('the schedule rate is configurable and bounds the scan’s event age', () => {
  template.hasResourceProperties('AWS::Scheduler::Schedule', {
    ...invoking(scannerId),
    ScheduleExpression: 'rate(5 minutes)',
    Target: Match.objectLike({ RetryPolicy: Match.objectLike({ MaximumEventAgeInSeconds: 300 }) }),
  });
  template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: scannerId }, MaximumEventAgeInSeconds: 300 });
});

test('the reconcile schedule keeps its own rate whatever the scan rate', () => {
  const [, reconcileSchedule] = onlyResource(template, 'AWS::Scheduler::Schedule', { Properties: invoking(reconcilerId) });
  expect(reconcileSchedule.Properties!.ScheduleExpression).toBe('rate(1 hour)');
});

test.each(['scanner', 'reconciler'] as const)('include/exclude lists reach the %s comma-joined', (name) => {
  const [, fn] = pipelineFunction(template, name);
  expect(fn.Properties!.Environment.Variables).toMatchObject({
    [ENV.includeInstances]: 'audit-lab-writer,audit-lab-reader',
    [ENV.excludeInstances]: 'audit-lab-reader',
  });
});

test('downloader reserved concurrency comes from props', () => {
  const [, downloader] = pipelineFunction(template, 'downloader');
  expect(downloader.Properties!.ReservedConcurrentExecutions).toBe(3);
});

/** One log group per function: scanner, detector, downloader, reconciler. */
const FUNCTION_LOG_GROUPS = 4;

test('log retention comes from props', () => {
  const logGroups = resourcesOfType(template, 'AWS::Logs::LogGroup');
  expect(logGroups).toHaveLength(FUNCTION_LOG_GROUPS);
  for (const [, logGroup] of logGroups) expect(logGroup.Properties!.RetentionInDays).toBe(7);
});

test('retainData=false destroys tables, buckets (emptied first), the bucket key and log groups', () => {
  const [ledgerId, ledger] = onlyResource(template, 'AWS::DynamoDB::Table', {
    Properties: { StreamSpecification: Match.anyValue() },
  });
  expect(ledger.Properties!.DeletionProtectionEnabled).toBe(false);
  const stateful = [
    ...resourcesOfType(template, 'AWS::DynamoDB::Table'),
    ...resourcesOfType(template, 'AWS::S3::Bucket'),
    ...resourcesOfType(template, 'AWS::KMS::Key'),
    ...resourcesOfType(template, 'AWS::Logs::LogGroup'),
  ];
  expect(stateful).toHaveLength(2 + 2 + 1 + FUNCTION_LOG_GROUPS);
  for (const [, resource] of stateful) expect(resource.DeletionPolicy).toBe('Delete');

  const emptied = resourcesOfType(template, 'Custom::S3AutoDeleteObjects').map(([, r]) =>
    referencedId(r.Properties!.BucketName),
  );
  expect(emptied.sort()).toEqual(resourcesOfType(template, 'AWS::S3::Bucket').map(([id]) => id).sort());
  void ledgerId;
});

test('the idempotency table is destroyed with the stack whatever retainData says', () => {
  const retained = synthPipeline({ retainData: true }, noBundling).template;
  for (const t of [template, retained]) {
    t.hasResource('AWS::DynamoDB::Table', {
      Properties: { TimeToLiveSpecification: Match.anyValue() },
      DeletionPolicy: 'Delete',
    });
  }
});

test('a schedule slower than a day still caps event ages at the services’ maxima', () => {
  const slow = synthPipeline({ scheduleRate: Duration.hours(36) }, noBundling).template;
  slow.hasResourceProperties('AWS::Scheduler::Schedule', {
    ScheduleExpression: 'rate(36 hours)',
    Target: Match.objectLike({ RetryPolicy: Match.objectLike({ MaximumEventAgeInSeconds: 24 * 3600 }) }),
  });
  // Lambda keeps an async event at most 6 h.
  const [slowScannerId] = pipelineFunction(slow, 'scanner');
  slow.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: slowScannerId }, MaximumEventAgeInSeconds: 6 * 3600 });
});
