import { getCouponView } from '../lib/coupons/campaigns.js';
import { parseId } from '../lib/coupons/ids.js';
import { getReadRuntime } from '../lib/runtime.js';
import { couponNotFound, httpHandler, json, pathParam } from './http.js';

/** GET /api/v2/coupons/{couponId}: the public view of a coupon. */
export const handler = httpHandler(async (event) => {
  const couponId = parseId('couponId', pathParam(event, 'couponId'));
  const view = await getCouponView(await getReadRuntime(), couponId);
  return view ? json(200, view) : couponNotFound(couponId);
});
