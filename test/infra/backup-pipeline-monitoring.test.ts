/**
 * Alarms, their topic and the dashboard: every alarm's metric, statistic, threshold, comparison,
 * missing-data treatment and actions; the topic's policy and optional email subscription; the
 * dashboard's figures; and the prop values refused at synth time.
 */
import { Duration } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { METRICS } from '../../lambda/shared/contract';
import { METRIC_SOURCES, PIPELINE_SERVICE_NAMES } from '../../lib/constructs/backup-pipeline';
import { heartbeatWindow, PipelineMetric } from '../../lib/constructs/pipeline-monitoring';
import { onlyResource, pipelineFunction, resourcesOfType, synthPipeline } from '../helpers/pipeline-template';

const noBundling = { bundle: false } as const;
const { template, stack } = synthPipeline({}, noBundling);

type Alarm = { Type: string; Properties: Record<string, any> };
const alarms = resourcesOfType(template, 'AWS::CloudWatch::Alarm') as Array<[string, Alarm]>;
const [topicId] = onlyResource(template, 'AWS::SNS::Topic');
const [scannerId] = pipelineFunction(template, 'scanner');
const [detectorId] = pipelineFunction(template, 'detector');
const [downloaderId] = pipelineFunction(template, 'downloader');
const [reconcilerId] = pipelineFunction(template, 'reconciler');
const [scheduleGroupId, scheduleGroup] = onlyResource(template, 'AWS::Scheduler::ScheduleGroup');
const scheduleGroupName = scheduleGroup.Properties!.Name as string;

/** The one alarm whose own metric (not a math expression) is this namespace/name. */
function alarmOn(namespace: string, metricName: string, dimensionValue?: unknown): Alarm['Properties'] {
  const found = alarms.filter(
    ([, alarm]) =>
      alarm.Properties.Namespace === namespace &&
      alarm.Properties.MetricName === metricName &&
      (dimensionValue === undefined || JSON.stringify(alarm.Properties.Dimensions).includes(JSON.stringify(dimensionValue))),
  );
  if (found.length !== 1) throw new Error(`expected one alarm on ${namespace}/${metricName}, found ${found.length}`);
  return found[0][1].Properties;
}

/** The one alarm computed from a math expression over these metric names. */
function mathAlarmOver(metricNames: string[]): Alarm['Properties'] {
  const found = alarms.filter(([, alarm]) => {
    const names = (alarm.Properties.Metrics ?? [])
      .map((query: { MetricStat?: { Metric: { MetricName: string } } }) => query.MetricStat?.Metric.MetricName)
      .filter(Boolean);
    return names.length === metricNames.length && metricNames.every((name) => names.includes(name));
  });
  if (found.length !== 1) throw new Error(`expected one math alarm over ${metricNames.join(', ')}, found ${found.length}`);
  return found[0][1].Properties;
}

const notifies = { AlarmActions: [{ Ref: topicId }] };
const notifiesBothWays = { AlarmActions: [{ Ref: topicId }], OKActions: [{ Ref: topicId }] };

describe('alarm topic', () => {
  test('is TLS-only and lets this account’s CloudWatch alarms publish', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Resource: { Ref: topicId },
            Condition: {
              StringEquals: { 'aws:SourceAccount': '111111111111' },
              ArnLike: { 'aws:SourceArn': 'arn:aws:cloudwatch:eu-west-1:111111111111:alarm:*' },
            },
          }),
        ]),
      },
    });
  });

  test('has no subscription unless an email is configured, then exactly that one', () => {
    expect(resourcesOfType(template, 'AWS::SNS::Subscription')).toHaveLength(0);
    const withEmail = synthPipeline({ alarmEmail: 'audit-ops@example.com' }, noBundling).template;
    const [subscriptionTopic] = onlyResource(withEmail, 'AWS::SNS::Topic');
    const subscriptions = resourcesOfType(withEmail, 'AWS::SNS::Subscription');
    expect(subscriptions).toHaveLength(1);
    expect(subscriptions[0][1].Properties).toEqual({
      Protocol: 'email',
      Endpoint: 'audit-ops@example.com',
      TopicArn: { Ref: subscriptionTopic },
    });
  });
});

describe('alarms', () => {
  test('there are exactly the documented alarms, and every one notifies the topic', () => {
    // 3 dead-letter queues, LOST, lag, verifier, 4 function error alarms (scanner, detector, downloader,
    // reconciler), iterator age, scheduler, missing scans, missing reconciler runs.
    expect(alarms).toHaveLength(14);
    for (const [, alarm] of alarms) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
  });

  test('dead-letter alarms fire on any visible message and report recovery', () => {
    const dlqAlarms = alarms.filter(([, alarm]) => alarm.Properties.MetricName === 'ApproximateNumberOfMessagesVisible');
    expect(dlqAlarms).toHaveLength(3);
    for (const [, alarm] of dlqAlarms) {
      expect(alarm.Properties).toMatchObject({
        Namespace: 'AWS/SQS',
        Statistic: 'Maximum',
        Period: 300,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
        ...notifiesBothWays,
      });
      expect(alarm.Properties.AlarmDescription).toMatch(/^Messages in (ScanDeadLetterQueue|ScanRunDeadLetterQueue|DownloaderFailureQueue): /);
    }
    // Failed reconciler runs land in the scan-run queue too; its alarm must say so.
    const scanRun = dlqAlarms.find(([, alarm]) => alarm.Properties.AlarmDescription.startsWith('Messages in ScanRunDeadLetterQueue: '));
    expect(scanRun?.[1].Properties.AlarmDescription).toMatch(/scanner or reconciler/);
  });

  test('LOST files: the sum over detector and downloader, any one is an alarm', () => {
    const lost = mathAlarmOver([METRICS.lostLogFiles, METRICS.lostLogFiles]);
    expect(lost).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching', ...notifies });
    expect(lost.OKActions).toBeUndefined();
    const expression = lost.Metrics.find((query: { Expression?: string }) => query.Expression).Expression;
    expect(expression).toBe('FILL(lostlogfiles0, 0) + FILL(lostlogfiles1, 0)');
  });

  test('backup lag: the detector’s maximum above 2 hours; the last verdict stands between scans', () => {
    expect(alarmOn(METRICS.namespace, METRICS.backupLagSeconds)).toMatchObject({
      Dimensions: [{ Name: 'service', Value: PIPELINE_SERVICE_NAMES.detector }],
      Statistic: 'Maximum',
      Period: 300,
      Threshold: 7200,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'ignore',
      ...notifiesBothWays,
    });
  });

  test('the lag threshold is configurable', () => {
    const custom = synthPipeline({ backupLagAlarmThreshold: Duration.minutes(45) }, noBundling).template;
    custom.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: METRICS.backupLagSeconds, Threshold: 2700 });
  });

  test('verifier findings: any finding of the reconciler is an alarm until a clean run', () => {
    expect(alarmOn(METRICS.namespace, METRICS.verifierFindings)).toMatchObject({
      Dimensions: [{ Name: 'service', Value: PIPELINE_SERVICE_NAMES.reconciler }],
      Statistic: 'Maximum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'ignore',
      ...notifiesBothWays,
    });
  });

  test.each([
    ['scanner', () => scannerId],
    ['detector', () => detectorId],
    ['downloader', () => downloaderId],
    ['reconciler', () => reconcilerId],
  ])('%s errors: any error in 5 minutes', (name, functionId) => {
    const alarm = alarmOn('AWS/Lambda', 'Errors', { Ref: functionId() });
    expect(alarm).toMatchObject({
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId() } }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      ...notifies,
    });
    expect(alarm.OKActions).toBeUndefined();
    expect(alarm.AlarmDescription).toBe(`The ${name} function failed (unhandled error or timeout); see its log group.`);
  });

  test('stream iterator age: the downloader’s oldest record above an hour', () => {
    expect(alarmOn('AWS/Lambda', 'IteratorAge')).toMatchObject({
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: downloaderId } }],
      Statistic: 'Maximum',
      Threshold: 3_600_000,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      ...notifiesBothWays,
    });
  });

  test('scheduler failures: target errors, drops and failed dead-letter deliveries of the pipeline’s own group', () => {
    const alarm = mathAlarmOver(['TargetErrorCount', 'InvocationDroppedCount', 'InvocationsFailedToBeSentToDeadLetterCount']);
    expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching', ...notifies });
    for (const query of alarm.Metrics.filter((q: { MetricStat?: unknown }) => q.MetricStat)) {
      expect(query.MetricStat).toMatchObject({
        Metric: { Namespace: 'AWS/Scheduler', Dimensions: [{ Name: 'ScheduleGroup', Value: scheduleGroupName }] },
        Stat: 'Sum',
        Period: 300,
      });
    }
    // Both of the pipeline's schedules (scan, reconcile) are in that group, so the alarm covers both.
    const schedules = resourcesOfType(template, 'AWS::Scheduler::Schedule');
    expect(schedules).toHaveLength(2);
    for (const [, schedule] of schedules) expect(schedule.Properties!.GroupName).toBe(scheduleGroupName);
    expect(alarm.AlarmDescription).toMatch(/scanner or the reconciler/);
    expect(scheduleGroupId).toMatch(/ScanScheduleGroup/);
  });

  test('missing scans: no scanner invocation in two schedule periods, silence counts as failure', () => {
    expect(alarmOn('AWS/Lambda', 'Invocations', { Ref: scannerId })).toMatchObject({
      Statistic: 'Sum',
      Period: 900,
      EvaluationPeriods: 2,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
      ...notifiesBothWays,
    });
  });

  test('missing reconciler runs: no invocation in two hours, silence counts as failure', () => {
    const alarm = alarmOn('AWS/Lambda', 'Invocations', { Ref: reconcilerId });
    expect(alarm).toMatchObject({
      Statistic: 'Sum',
      Period: 3600,
      EvaluationPeriods: 2,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
      ...notifiesBothWays,
    });
    expect(alarm.AlarmDescription).toMatch(/^Reconciler has not run for 2 hours .*not being verified/);
  });

  test('missing scans with slow schedules: hourly periods spanning twice the rate, within CloudWatch’s 7 days', () => {
    expect(heartbeatWindow(Duration.minutes(5))).toMatchObject({ evaluationPeriods: 2 });
    expect(heartbeatWindow(Duration.minutes(90)).period.toSeconds()).toBe(3600);
    expect(heartbeatWindow(Duration.minutes(90)).evaluationPeriods).toBe(3);
    const slow = synthPipeline({ scheduleRate: Duration.hours(36) }, noBundling).template;
    slow.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Invocations', Period: 3600, EvaluationPeriods: 72 });
  });

  test('every custom metric the alarms read is a contract metric with a publishing service', () => {
    const customNames = new Set<string>();
    for (const [, alarm] of alarms) {
      if (alarm.Properties.Namespace === METRICS.namespace) customNames.add(alarm.Properties.MetricName);
      for (const query of alarm.Properties.Metrics ?? []) {
        if (query.MetricStat?.Metric.Namespace === METRICS.namespace) customNames.add(query.MetricStat.Metric.MetricName);
      }
    }
    expect([...customNames].sort()).toEqual(
      [METRICS.lostLogFiles, METRICS.backupLagSeconds, METRICS.verifierFindings].sort(),
    );
    const contractMetrics = Object.keys(METRICS).filter((key) => key !== 'namespace').sort();
    expect(Object.keys(METRIC_SOURCES).sort()).toEqual(contractMetrics);
  });

  test('the reconciler’s metrics are watched: its findings, and its RDS throttle retries like every RDS caller', () => {
    expect(METRIC_SOURCES.verifierFindings).toEqual([PIPELINE_SERVICE_NAMES.reconciler]);
    expect(METRIC_SOURCES.throttleRetries).toContain(PIPELINE_SERVICE_NAMES.reconciler);
  });
});

describe('dashboard', () => {
  const [, dashboard] = onlyResource(template, 'AWS::CloudWatch::Dashboard');
  const body = JSON.stringify(dashboard.Properties!.DashboardBody);

  test.each((Object.keys(METRIC_SOURCES) as PipelineMetric[]).map((metric) => [METRICS[metric], metric] as const))(
    'shows %s from every publishing service',
    (metricName, metric) => {
      for (const service of METRIC_SOURCES[metric]) {
        expect(body).toContain(`\\"${METRICS.namespace}\\",\\"${metricName}\\",\\"service\\",\\"${service}\\"`);
      }
    },
  );

  test.each([
    ['dead-letter depths', 'AWS/SQS\\",\\"ApproximateNumberOfMessagesVisible'],
    ['function errors', 'AWS/Lambda\\",\\"Errors'],
    ['function duration', 'AWS/Lambda\\",\\"Duration'],
    ['function throttles', 'AWS/Lambda\\",\\"Throttles'],
    ['stream iterator age', 'AWS/Lambda\\",\\"IteratorAge'],
    ['scheduler errors', 'AWS/Scheduler\\",\\"TargetErrorCount'],
    ['scheduler drops', 'AWS/Scheduler\\",\\"InvocationDroppedCount'],
    ['alarm status', '\\"type\\":\\"alarm\\"'],
  ])('shows %s', (_name, fragment) => {
    expect(body).toContain(fragment);
  });

  test('marks the lag alarm threshold on the lag graph', () => {
    expect(body).toContain('{\\"value\\":7200,\\"label\\":\\"Alarm threshold\\"');
  });
});

describe('validation', () => {
  test.each([
    ['an alarm email that is no address', { alarmEmail: 'not-an-address' }, /alarmEmail must be an email address; got "not-an-address"/],
    ['a lag threshold under a minute', { backupLagAlarmThreshold: Duration.seconds(30) }, /backupLagAlarmThreshold must be at least 1 minute and under 24 hours/],
    ['a lag threshold of a day', { backupLagAlarmThreshold: Duration.hours(24) }, /backupLagAlarmThreshold must be at least 1 minute and under 24 hours/],
    ['a schedule too slow for a missing-scan alarm', { scheduleRate: Duration.days(4) }, /scheduleRate 4 days is too slow to watch/],
  ] as const)('%s is refused', (_name, props, message) => {
    expect(() => synthPipeline(props, noBundling)).toThrow(message);
  });

  test('a lag threshold not above the schedule rate synthesizes with a warning', () => {
    const { stack: tight } = synthPipeline({ scheduleRate: Duration.minutes(30), backupLagAlarmThreshold: Duration.minutes(30) }, noBundling);
    Annotations.fromStack(tight).hasWarning('*', Match.stringLikeRegexp('lag alarm will fire on ordinary operation'));
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('lag alarm'));
  });
});
