import type { Context } from 'aws-lambda';
import { isValidId } from '../lib/coupons/ids.js';
import { drainAll, drainCoupon, type DrainReport } from '../lib/drain/drain.js';
import type { DrainRequest } from '../lib/drain/trigger.js';
import { UnavailableError } from '../lib/errors.js';
import { isTransientAwsFault } from '../lib/ledger/faults.js';
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
  const reports = couponId === undefined ? await drainAll(runtime, timeLeftMs) : await drainOne(runtime, couponId, timeLeftMs, shard);
  for (const report of reports) {
    if (report.batches > 0 || report.requeued > 0 || report.deadLettered > 0) log.info('drained', { ...report });
  }
  return { reports };
}

/**
 * A triggered drain whose store cannot be reached (Redis past its deadline, the ledger unavailable)
 * stops with a warning instead of failing the invocation: nothing it did is half applied (a claim not
 * written comes back when its lease expires), the schedule and the next admission start drains again, and
 * a failed asynchronous invocation would only fill the failure queue operators watch for real faults
 * (locally, it would stop serverless offline). Bugs and misconfigurations still throw.
 */
async function drainOne(runtime: Awaited<ReturnType<typeof getRuntime>>, couponId: string, timeLeftMs: () => number, shard: number): Promise<DrainReport[]> {
  try {
    return [await drainCoupon(runtime, couponId, timeLeftMs, shard)];
  } catch (error) {
    if (!(error instanceof UnavailableError) && !isTransientAwsFault(error)) throw error;
    log.warn('drain stopped: a store is unavailable; the schedule or the next admission resumes it', { couponId, shard, error });
    return [];
  }
}
