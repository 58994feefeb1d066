import { parseId } from '../lib/coupons/ids.js';
import { LiveViews } from '../lib/coupons/live-view.js';
import { getRuntime } from '../lib/runtime.js';
import { adminDenied, couponNotFound, httpHandler, json, pathParam } from './http.js';

let views: LiveViews | undefined;

/**
 * GET /api/v2/admin/coupons/{couponId}/live: what the operator page (/admin) shows, read at most once a
 * second per container whoever watches (LiveViews).
 */
export const handler = httpHandler(async (event) => {
  const runtime = await getRuntime();
  const denied = adminDenied(event, await runtime.adminToken());
  if (denied) return denied;
  const couponId = parseId('couponId', pathParam(event, 'couponId'));
  views ??= new LiveViews(runtime);
  const view = await views.get(couponId);
  return view ? json(200, view) : couponNotFound(couponId);
});
