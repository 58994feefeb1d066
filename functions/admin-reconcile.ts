import { reconcileCoupon } from '../lib/coupons/reconcile.js';
import { getRuntime } from '../lib/runtime.js';
import { adminRoute, couponIdParam, couponNotFound, json, queryParam } from './http.js';

/** POST /api/v2/admin/coupons/{couponId}/reconcile[?dryRun=true]: compare Redis with the ledger and repair. */
export const handler = adminRoute(getRuntime, { dryRun: queryParam.boolean }, async ({ event, runtime, query }) => {
  const couponId = couponIdParam(event);
  const report = await reconcileCoupon(runtime, couponId, { dryRun: query.dryRun === true });
  return report ? json(200, report) : couponNotFound(couponId);
});
