import { createCoupon, parseNewCoupon } from '../lib/coupons/campaigns.js';
import { getRuntime } from '../lib/runtime.js';
import { adminRoute, error, json, jsonBody, NO_QUERY } from './http.js';

/** POST /api/v2/admin/coupons {"couponId","name","totalQuantity","startsAt"?,"endsAt"?} */
export const handler = adminRoute(getRuntime, NO_QUERY, async ({ event, runtime }) => {
  const input = parseNewCoupon(jsonBody(event));
  const outcome = await createCoupon(runtime, input);
  if (outcome.kind === 'COUPON_EXISTS') return error(409, 'COUPON_EXISTS', `Coupon ${input.couponId} already exists.`);
  return json(201, outcome.coupon, { location: `/api/v2/coupons/${input.couponId}` });
});
