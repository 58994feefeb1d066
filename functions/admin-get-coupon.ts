import { getAdminCouponView } from '../lib/coupons/campaigns.js';
import { getRuntime } from '../lib/runtime.js';
import { adminRoute, couponIdParam, couponNotFound, json, NO_QUERY } from './http.js';

/** GET /api/v2/admin/coupons/{couponId}: the public view plus queued, inflight, issued, deadLettered. */
export const handler = adminRoute(getRuntime, NO_QUERY, async ({ event, runtime }) => {
  const couponId = couponIdParam(event);
  const view = await getAdminCouponView(runtime, couponId);
  return view ? json(200, view) : couponNotFound(couponId);
});
