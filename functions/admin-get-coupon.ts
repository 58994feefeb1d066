import { getAdminCouponView } from '../lib/coupons/campaigns.js';
import { parseId } from '../lib/coupons/ids.js';
import { getRuntime } from '../lib/runtime.js';
import { adminDenied, couponNotFound, httpHandler, json, pathParam } from './http.js';

/** GET /api/v2/admin/coupons/{couponId}: the public view plus queued, inflight, issued, deadLettered. */
export const handler = httpHandler(async (event) => {
  const runtime = await getRuntime();
  const denied = adminDenied(event, await runtime.adminToken());
  if (denied) return denied;
  const couponId = parseId('couponId', pathParam(event, 'couponId'));
  const view = await getAdminCouponView(runtime, couponId);
  return view ? json(200, view) : couponNotFound(couponId);
});
