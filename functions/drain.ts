import type { Context } from 'aws-lambda';
import { isValidId } from '../lib/coupons/ids.js';
import { drainAll, drainCoupon, type DrainReport } from '../lib/drain/drain.js';
import type { DrainRequest } from '../lib/drain/trigger.js';
import { addLambdaContext, log } from '../lib/log.js';
import { publishMetrics } from '../lib/metrics.js';
import { getRuntime } from '../lib/runtime.js';

/**
 * Drains queues into the ledger. Invoked by the EventBridge schedule (every coupon) and asynchronously
 * by an admission that found no drain running ({"couponId"}: that coupon only).
 */
export async function handler(event: unknown, context: Context): Promise<{ reports: DrainReport[] }> {
  addLambdaContext(context);
  try {
    return await drain(event, context);
  } finally {
    publishMetrics();
  }
}

async function drain(event: unknown, context: Context): Promise<{ reports: DrainReport[] }> {
  const runtime = await getRuntime();
  const timeLeftMs = () => context.getRemainingTimeInMillis();
  const request = (event as Partial<DrainRequest> | null) ?? {};
  const { couponId, shard = 0 } = request;
  if ((couponId !== undefined && !isValidId(couponId)) || !Number.isInteger(shard) || shard < 0 || shard >= runtime.shards.count) {
    // Thrown, Lambda would retry this asynchronous invocation twice for the same result.
    log.error('drain invoked with an invalid couponId or shard; ignored', { couponId: String(couponId).slice(0, 100), shard: String(shard).slice(0, 20) });
    return { reports: [] };
  }
  const reports = couponId === undefined ? await drainAll(runtime, timeLeftMs) : [await drainCoupon(runtime, couponId, timeLeftMs, shard)];
  for (const report of reports) {
    if (report.batches > 0 || report.requeued > 0 || report.deadLettered > 0) log.info('drained', { ...report });
  }
  return { reports };
}
