import { LiveViews } from '../lib/coupons/live-view.js';
import { getRuntime } from '../lib/runtime.js';
import { adminRoute, couponIdParam, couponNotFound, json, NO_QUERY } from './http.js';

let views: LiveViews | undefined;

/**
 * GET /api/v2/admin/coupons/{couponId}/live: what the operator page (/admin) shows, read at most once a
 * second per container whoever watches (LiveViews).
 */
export const handler = adminRoute(getRuntime, NO_QUERY, async ({ event, runtime }) => {
  const couponId = couponIdParam(event);
  views ??= new LiveViews(runtime);
  const view = await views.get(couponId);
  return view ? json(200, view) : couponNotFound(couponId);
});
