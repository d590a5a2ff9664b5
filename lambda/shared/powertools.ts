/**
 * Powertools logger and metrics, one per execution environment. Service name and log level come from
 * the standard Powertools variables (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL, ...); the metrics
 * namespace is part of the contract so that alarms and dashboards find the figures.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS } from './contract';

export const logger = new Logger();

export const metrics = new Metrics({ namespace: METRICS.namespace });

export type MetricName = (typeof METRICS)[Exclude<keyof typeof METRICS, 'namespace'>];

export function countMetric(name: MetricName, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}

export function bytesMetric(name: MetricName, value: number): void {
  metrics.addMetric(name, MetricUnit.Bytes, value);
}

/** A level, not an event count (e.g. backup lag): alarms read its Maximum. */
export function secondsMetric(name: MetricName, value: number): void {
  metrics.addMetric(name, MetricUnit.Seconds, value);
}

/** Flushes what an invocation recorded; an invocation that recorded nothing prints nothing. */
export function publishMetrics(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
