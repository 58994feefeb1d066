import { getCouponView } from '../lib/coupons/campaigns.js';
import { getReadRuntime } from '../lib/runtime.js';
import { couponIdParam, couponNotFound, json, NO_QUERY, publicRoute } from './http.js';

/** GET /api/v2/coupons/{couponId}: the public view of a coupon. */
export const handler = publicRoute(getReadRuntime, NO_QUERY, async ({ event, runtime }) => {
  const couponId = couponIdParam(event);
  const view = await getCouponView(runtime, couponId);
  return view ? json(200, view) : couponNotFound(couponId);
});
