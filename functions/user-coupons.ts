import { listUserCoupons } from '../lib/coupons/user-coupons.js';
import { getReadRuntime } from '../lib/runtime.js';
import { json, queryParam, userRoute } from './http.js';

/** GET /api/v2/users/{userId}/coupons[?limit=&cursor=]: the user's issued coupons, from the ledger. */
export const handler = userRoute(getReadRuntime, { limit: queryParam.integer, cursor: queryParam.text }, async ({ runtime, userId, query }) => {
  const page = await listUserCoupons(runtime, userId, query);
  return json(200, { items: page.items, ...(page.cursor ? { cursor: page.cursor } : {}) });
});
