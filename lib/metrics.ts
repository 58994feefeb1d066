/**
 * Metrics in CloudWatch's embedded metric format (EMF) through Powertools for AWS Lambda's Metrics: each
 * handler publishes what an invocation recorded as one log line at its end (publishMetrics), which
 * CloudWatch turns into metrics; no network call is made, on the request path or anywhere. One
 * namespace (POWERTOOLS_METRICS_NAMESPACE, default fcfs-coupons), dimensions service and stage only: a
 * coupon id is not a dimension. Every metric is described in the operations guide (docs/).
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** Every metric the system emits. */
export type MetricName =
  | 'DecisionAccepted'
  | 'DecisionAlreadyAccepted'
  | 'DecisionSoldOut'
  | 'DecisionNotOpen'
  | 'DecisionEnded'
  | 'DecisionRateLimited'
  | 'DecisionCouponNotFound'
  | 'AnsweredWithoutRedis'
  | 'RedisLatency'
  | 'ServiceUnavailable'
  | 'Unavailable'
  | 'ShardRefills'
  | 'DrainIssued'
  | 'DrainRedelivered'
  | 'DrainRejected'
  | 'DrainDeadLettered'
  | 'DrainStale'
  | 'PersistLag'
  | 'LedgerThrottles'
  | 'LedgerFailures';

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || 'fcfs-coupons',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'fcfs-coupons',
  defaultDimensions: { stage: process.env.STAGE || 'local' },
});

export function count(name: MetricName, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}

export function milliseconds(name: MetricName, value: number): void {
  metrics.addMetric(name, MetricUnit.Milliseconds, Math.max(0, Math.round(value)));
}

/** Write what this invocation recorded (one EMF line), and the cold start once per container. */
export function publishMetrics(): void {
  metrics.captureColdStartMetric();
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
