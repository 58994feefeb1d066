import type { Context } from 'aws-lambda';
import { restoreCouponState, type RestoreResult } from '../lib/coupons/coupon-state.js';
import { isValidId } from '../lib/coupons/ids.js';
import type { RestoreRequest } from '../lib/coupons/restorer.js';
import { addLambdaContext, log } from '../lib/log.js';
import { getRuntime } from '../lib/runtime.js';

/** Time left when the rebuild lock should expire: a rebuild that dies holding it frees it by then. */
const LOCK_MARGIN_MS = 5_000;

/**
 * Rebuilds a coupon's Redis state from the ledger ({"couponId"}), asked asynchronously by the admission
 * path when it finds the state missing (lib/coupons/restorer.ts). A big coupon's rebuild scans many
 * pages of the ledger: it runs here, under this function's timeout, not in an API request.
 */
export async function handler(event: unknown, context: Context): Promise<RestoreResult | { kind: 'INVALID' }> {
  addLambdaContext(context);
  const { couponId, shard = 0 } = (event as Partial<RestoreRequest> | null) ?? {};
  const runtime = await getRuntime();
  if (!isValidId(couponId) || !Number.isInteger(shard) || shard < 0 || shard >= runtime.shards.count) {
    // Thrown, Lambda would retry this asynchronous invocation twice for the same result.
    log.error('restore invoked without a valid couponId and shard; ignored', { couponId: String(couponId).slice(0, 100), shard: String(shard).slice(0, 20) });
    return { kind: 'INVALID' };
  }
  const lockMs = Math.max(1_000, context.getRemainingTimeInMillis() - LOCK_MARGIN_MS);
  const result = await restoreCouponState(runtime, couponId, { shard, waitMs: lockMs, lockMs });
  if (result.kind !== 'PRESENT') log.info('restore requested', { couponId, shard, result: result.kind });
  return result;
}
