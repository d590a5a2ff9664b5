import { Annotations, ArnFormat, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS } from '../../lambda/shared/contract';

/** The custom (EMF) metrics the handlers publish, by their key in the contract's METRICS. */
export type PipelineMetric = Exclude<keyof typeof METRICS, 'namespace'>;

/**
 * Which Powertools services publish each custom metric. Powertools gives every metric exactly one
 * dimension, `service` (the function's POWERTOOLS_SERVICE_NAME); alarms and graphs read each service's
 * series and combine them, so a metric a service publishes but this table omits is never watched.
 */
export type MetricSources = Readonly<Record<PipelineMetric, readonly string[]>>;

export interface DeadLetterQueue {
  readonly queue: sqs.IQueue;
  /** Construct-id-like name for the alarm id and the graph label. */
  readonly name: string;
  /** What a message there means and where to look, for the alarm description. */
  readonly meaning: string;
}

/** A function a schedule invokes: silence for twice its rate is a failure. */
export interface ScheduledFunction {
  /** Alarm id prefix, e.g. `Reconcile` gives `ReconcileHeartbeatAlarm`. */
  readonly name: string;
  readonly fn: lambda.IFunction;
  readonly rate: Duration;
  /** What nobody is told while it does not run. */
  readonly consequence: string;
}

export interface PipelineMonitoringProps {
  /** Every pipeline function by a short name: each gets an Errors alarm and dashboard graphs. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>;
  /** Queues holding work the pipeline gave up on: any visible message raises an alarm. */
  readonly deadLetterQueues: readonly DeadLetterQueue[];
  /** The scanner-to-detector work queue (dashboard only). */
  readonly workQueue: sqs.IQueue;
  /** The function consuming the ledger stream (IteratorAge). */
  readonly streamConsumer: lambda.IFunction;
  /** The schedule group holding only the pipeline's schedules (AWS/Scheduler metrics are per group). */
  readonly scheduleGroup: scheduler.IScheduleGroup;
  /** The scanner and its schedule rate: no invocation for two periods raises an alarm. */
  readonly scheduledFunction: lambda.IFunction;
  readonly scheduleRate: Duration;
  /** Other scheduled functions watched the same way (e.g. the reconciler and its rate). */
  readonly otherScheduledFunctions?: readonly ScheduledFunction[];
  readonly metricSources: MetricSources;
  /** Backup lag above this raises an alarm. */
  readonly backupLagThreshold: Duration;
  /** Age of the oldest unprocessed ledger stream record above this raises an alarm. */
  readonly iteratorAgeThreshold: Duration;
  /** Subscribed to the alarm topic (the address must confirm the subscription). @default - none */
  readonly alarmEmail?: string;
}

/** Counts are judged per 5 minutes; the dashboards show the same granularity. */
const PERIOD = Duration.minutes(5);
/** CloudWatch alarms evaluate at most 7 days of periods of an hour or more (1 day below an hour). */
const MAX_EVALUATION_RANGE = Duration.days(7);
const HOUR = Duration.hours(1);

/**
 * Alarms, their SNS topic and a dashboard for the backup pipeline. Every alarm notifies the topic when it
 * enters ALARM; alarms describing a lasting state (dead letters waiting, lag, verifier findings, stream
 * backlog, missing scans) also notify when they recover.
 */
export class PipelineMonitoring extends Construct {
  public readonly topic: sns.Topic;
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly dashboard: cloudwatch.Dashboard;

  private readonly sources: MetricSources;

  constructor(scope: Construct, id: string, props: PipelineMonitoringProps) {
    super(scope, id);
    this.sources = props.metricSources;
    validateMonitoringProps(this, props);
    const stack = Stack.of(this);

    // Alarm notifications carry alarm names, states and metric values, never log content, so the topic
    // is TLS-only without a KMS key: CloudWatch can publish to an encrypted topic only through a customer
    // managed key whose policy admits it, and a mistake in that policy drops every notification silently.
    this.topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'Aurora audit-log backup alarms',
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccountPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
        },
      }),
    );
    Validations.of(this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications hold alarm names and metric values only, no audit-log content; a KMS-encrypted topic would need a customer managed key admitting CloudWatch, whose misconfiguration silently drops alarms. TLS is enforced (SNS3).',
    });
    if (props.alarmEmail !== undefined) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    const onAlarm = new SnsAction(this.topic);
    const watch = (alarmId: string, alarm: cloudwatch.AlarmProps, lasting: boolean): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, alarmId, alarm);
      created.addAlarmAction(onAlarm);
      if (lasting) created.addOkAction(onAlarm);
      this.alarms.push(created);
      return created;
    };

    // ---- Work the pipeline gave up on ------------------------------------------------------------
    for (const dlq of props.deadLetterQueues) {
      watch(
        `${dlq.name}Alarm`,
        {
          alarmDescription: `Messages in ${dlq.name}: ${dlq.meaning}`,
          metric: dlq.queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: cloudwatch.Stats.MAXIMUM }),
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          // SQS publishes queue metrics while a queue holds messages; no data means nothing waits.
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        },
        true,
      );
    }

    // ---- Evidence lost, late or inconsistent -----------------------------------------------------
    watch(
      'LostLogFilesAlarm',
      {
        alarmDescription:
          'Audit log files disappeared from RDS before all of their bytes were backed up (ledger status LOST): those bytes are gone. Check the ledger items with Status LOST and why the backup fell behind.',
        metric: this.customMetric('lostLogFiles', cloudwatch.Stats.SUM, 'Lost audit log files'),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // A count of events: no data is no event.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
      false,
    );
    watch(
      'BackupLagAlarm',
      {
        alarmDescription: `Audit log bytes have waited more than ${props.backupLagThreshold.toHumanString()} to be backed up (RDS keeps them about 24 h). Check the downloader's errors, the stream failure queue and the ledger's PENDING/FAILED items.`,
        metric: this.customMetric('backupLagSeconds', cloudwatch.Stats.MAXIMUM),
        threshold: props.backupLagThreshold.toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // Lag is reported only when the detector runs; between runs the last verdict stands (a detector
        // that stops running raises its own errors, dead-letter and missing-scan alarms).
        treatMissingData: cloudwatch.TreatMissingData.IGNORE,
      },
      true,
    );
    watch(
      'VerifierFindingsAlarm',
      {
        alarmDescription:
          'The completeness verifier found gaps, checksum mismatches, unlisted or stale files. Run `npm run verify` for the report.',
        metric: this.customMetric('verifierFindings', cloudwatch.Stats.MAXIMUM),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // One data point per verifier run; findings stand until a clean run reports 0.
        treatMissingData: cloudwatch.TreatMissingData.IGNORE,
      },
      true,
    );

    // ---- The machinery -----------------------------------------------------------------------------
    for (const [name, fn] of Object.entries(props.functions)) {
      watch(
        `${pascal(name)}ErrorsAlarm`,
        {
          alarmDescription: `The ${name} function failed (unhandled error or timeout); see its log group.`,
          metric: fn.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        },
        false,
      );
    }
    watch(
      'StreamIteratorAgeAlarm',
      {
        alarmDescription: `Ledger stream records have waited more than ${props.iteratorAgeThreshold.toHumanString()} for the downloader; records older than the event source's maximum age go to the failure queue.`,
        metric: iteratorAge(props.streamConsumer),
        threshold: props.iteratorAgeThreshold.toMilliseconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // Lambda reports IteratorAge only when it delivers records: no data is no backlog.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
      true,
    );
    const schedulerFailures = schedulerMetrics(props.scheduleGroup);
    watch(
      'ScheduleFailuresAlarm',
      {
        alarmDescription:
          'EventBridge Scheduler could not invoke the scanner or the reconciler (target errors, invocations dropped after retries, or failed dead-letter deliveries).',
        metric: new cloudwatch.MathExpression({
          label: 'Scheduler failures',
          expression: 'FILL(targetErrors, 0) + FILL(dropped, 0) + FILL(failedToDeadLetter, 0)',
          usingMetrics: {
            targetErrors: schedulerFailures.targetErrors,
            dropped: schedulerFailures.dropped,
            failedToDeadLetter: schedulerFailures.failedToDeadLetter,
          },
          period: PERIOD,
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
      false,
    );
    const scheduled: ScheduledFunction[] = [
      {
        name: 'Scan',
        fn: props.scheduledFunction,
        rate: props.scheduleRate,
        consequence: 'no audit log is being discovered or backed up',
      },
      ...(props.otherScheduledFunctions ?? []),
    ];
    for (const { name, fn, rate, consequence } of scheduled) {
      const heartbeat = heartbeatWindow(rate);
      watch(
        `${name}HeartbeatAlarm`,
        {
          alarmDescription: `${fn.node.id} has not run for ${heartbeat.window.toHumanString()} (twice its schedule rate): ${consequence}. Check the schedule's state and group.`,
          metric: fn.metricInvocations({ period: heartbeat.period, statistic: cloudwatch.Stats.SUM }),
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: heartbeat.evaluationPeriods,
          // Lambda publishes no Invocations data for a function nobody invokes: silence is the failure.
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        },
        true,
      );
    }

    this.dashboard = this.buildDashboard(props, schedulerFailures);
  }

  /**
   * One custom metric across the services that publish it: the series itself for one service; for
   * several, their sum (counts) or maximum (levels), each series filled with 0 where it has no data.
   */
  private customMetric(metric: PipelineMetric, statistic: string, label?: string): cloudwatch.IMetric {
    const services = this.sources[metric];
    // Unlabelled single series keep an alarm on its plain metric (a label turns it into a metric query).
    const series = services.map(
      (service) =>
        new cloudwatch.Metric({
          namespace: METRICS.namespace,
          metricName: METRICS[metric],
          dimensionsMap: { service },
          statistic,
          period: PERIOD,
          label: label === undefined || services.length === 1 ? label : `${label} (${service})`,
        }),
    );
    if (series.length === 1) return series[0];
    const ids = Object.fromEntries(series.map((s, index) => [`${metric.toLowerCase()}${index}`, s]));
    const filled = Object.keys(ids).map((seriesId) => `FILL(${seriesId}, 0)`);
    return new cloudwatch.MathExpression({
      label: label ?? METRICS[metric],
      expression: statistic === cloudwatch.Stats.SUM ? filled.join(' + ') : `MAX([${filled.join(', ')}])`,
      usingMetrics: ids,
      period: PERIOD,
    });
  }

  /** Every series of a custom metric, one per publishing service. */
  private customSeries(metric: PipelineMetric, statistic: string): cloudwatch.IMetric[] {
    return this.sources[metric].map(
      (service) =>
        new cloudwatch.Metric({
          namespace: METRICS.namespace,
          metricName: METRICS[metric],
          dimensionsMap: { service },
          statistic,
          period: PERIOD,
          label: service,
        }),
    );
  }

  private buildDashboard(props: PipelineMonitoringProps, scheduler: ReturnType<typeof schedulerMetrics>): cloudwatch.Dashboard {
    const fns = Object.entries(props.functions);
    const perFunction = (metric: (fn: lambda.IFunction) => cloudwatch.IMetric): cloudwatch.IMetric[] =>
      fns.map(([name, fn]) => (metric(fn) as cloudwatch.Metric).with({ label: name }));
    const wide = 12;
    const third = 8;
    const height = 6;

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(1),
      periodOverride: cloudwatch.PeriodOverride.INHERIT,
    });
    dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown:
          '# Aurora audit-log backup\nBytes and files stored, how far behind the backup is, and everything that means evidence may be missing: LOST files, verifier findings, dead letters, errors.',
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Bytes backed up',
        left: [this.customMetric('bytesBackedUp', cloudwatch.Stats.SUM, 'Bytes backed up')],
        width: third,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Files backed up',
        left: [this.customMetric('filesBackedUp', cloudwatch.Stats.SUM, 'Files backed up')],
        width: third,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Backup lag (seconds)',
        left: [this.customMetric('backupLagSeconds', cloudwatch.Stats.MAXIMUM, 'Backup lag (s)')],
        leftAnnotations: [{ value: props.backupLagThreshold.toSeconds(), label: 'Alarm threshold' }],
        width: third,
        height,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'LOST and FAILED files',
        left: [
          this.customMetric('lostLogFiles', cloudwatch.Stats.SUM, 'LOST'),
          this.customMetric('failedLogFiles', cloudwatch.Stats.SUM, 'FAILED'),
        ],
        width: third,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Verifier findings',
        left: [this.customMetric('verifierFindings', cloudwatch.Stats.MAXIMUM, 'Findings')],
        width: third,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'RDS API: portion calls and throttle retries',
        left: [this.customMetric('portionCalls', cloudwatch.Stats.SUM, 'DownloadDBLogFilePortion calls')],
        right: this.customSeries('throttleRetries', cloudwatch.Stats.SUM),
        rightYAxis: { label: 'throttle retries', showUnits: false },
        width: third,
        height,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues (visible messages)',
        left: props.deadLetterQueues.map((dlq) =>
          dlq.queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: cloudwatch.Stats.MAXIMUM, label: dlq.name }),
        ),
        width: wide,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Scan queue',
        left: [
          props.workQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: cloudwatch.Stats.MAXIMUM, label: 'Visible' }),
          this.customMetric('instancesScanned', cloudwatch.Stats.SUM, 'Instances queued'),
        ],
        right: [props.workQueue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: cloudwatch.Stats.MAXIMUM, label: 'Oldest message age (s)' })],
        width: wide,
        height,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Function errors',
        left: perFunction((fn) => fn.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM })),
        width: third,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Function duration (max)',
        left: perFunction((fn) => fn.metricDuration({ period: PERIOD, statistic: cloudwatch.Stats.MAXIMUM })),
        width: third,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Function throttles',
        left: perFunction((fn) => fn.metricThrottles({ period: PERIOD, statistic: cloudwatch.Stats.SUM })),
        width: third,
        height,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Ledger stream iterator age (ms)',
        left: [iteratorAge(props.streamConsumer, 'Iterator age (ms)')],
        leftAnnotations: [{ value: props.iteratorAgeThreshold.toMilliseconds(), label: 'Alarm threshold' }],
        width: wide,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Scheduler',
        left: [
          scheduler.attempts.with({ label: 'Invocation attempts' }),
          scheduler.targetErrors.with({ label: 'Target errors' }),
          scheduler.dropped.with({ label: 'Dropped' }),
          scheduler.sentToDeadLetter.with({ label: 'Sent to DLQ' }),
        ],
        width: wide,
        height,
      }),
    );
    return dashboard;
  }
}

function validateMonitoringProps(scope: Construct, props: PipelineMonitoringProps): void {
  const email = props.alarmEmail;
  if (email !== undefined && !Token.isUnresolved(email) && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    throw new Error(`alarmEmail must be an email address; got ${JSON.stringify(email)}`);
  }
  const lag = props.backupLagThreshold;
  if (lag.toSeconds() < 60 || lag.toSeconds() >= Duration.hours(24).toSeconds()) {
    throw new Error(
      `backupLagAlarmThreshold must be at least 1 minute and under 24 hours (RDS rotates audit files away after about 24 h, ` +
        `so a later alarm comes too late); got ${lag.toHumanString()}`,
    );
  }
  if (lag.toSeconds() <= props.scheduleRate.toSeconds()) {
    Annotations.of(scope).addWarningV2(
      'audit-backup:lagThresholdBelowScheduleRate',
      `backupLagAlarmThreshold (${lag.toHumanString()}) is not above the schedule rate (${props.scheduleRate.toHumanString()}): ` +
        'new bytes routinely wait a whole schedule period, so the lag alarm will fire on ordinary operation.',
    );
  }
  heartbeatWindow(props.scheduleRate);
  for (const [metric, services] of Object.entries(props.metricSources)) {
    if (services.length === 0) throw new Error(`metric ${metric} has no publishing service`);
  }
}

/**
 * Periods of the missing-scan alarm: it fires when no invocation happened in twice the schedule rate
 * (one late or missed run is tolerated). Periods are the rate itself up to an hour, hours beyond.
 */
export function heartbeatWindow(rate: Duration): { period: Duration; evaluationPeriods: number; window: Duration } {
  const window = Duration.seconds(rate.toSeconds() * 2);
  const period = rate.toSeconds() <= HOUR.toSeconds() ? rate : HOUR;
  const evaluationPeriods = Math.ceil(window.toSeconds() / period.toSeconds());
  if (period.toSeconds() * evaluationPeriods > MAX_EVALUATION_RANGE.toSeconds()) {
    throw new Error(
      `scheduleRate ${rate.toHumanString()} is too slow to watch: a missing-scan alarm needs twice the rate and CloudWatch ` +
        `evaluates at most ${MAX_EVALUATION_RANGE.toHumanString()} (RDS keeps audit files only about 24 h anyway)`,
    );
  }
  if (period.toSeconds() % 60 !== 0) throw new Error(`scheduleRate must be whole minutes; got ${rate.toHumanString()}`);
  return { period, evaluationPeriods, window };
}

function iteratorAge(fn: lambda.IFunction, label?: string): cloudwatch.Metric {
  return fn.metric('IteratorAge', { period: PERIOD, statistic: cloudwatch.Stats.MAXIMUM, label });
}

function schedulerMetrics(group: scheduler.IScheduleGroup) {
  const metric = (metricName: string): cloudwatch.Metric =>
    new cloudwatch.Metric({
      namespace: 'AWS/Scheduler',
      metricName,
      dimensionsMap: { ScheduleGroup: group.scheduleGroupName },
      statistic: cloudwatch.Stats.SUM,
      period: PERIOD,
    });
  return {
    attempts: metric('InvocationAttemptCount'),
    targetErrors: metric('TargetErrorCount'),
    dropped: metric('InvocationDroppedCount'),
    sentToDeadLetter: metric('InvocationsSentToDeadLetterCount'),
    failedToDeadLetter: metric('InvocationsFailedToBeSentToDeadLetterCount'),
  };
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
