import { InvalidInputError } from '../lib/errors.js';
import { listUserCoupons } from '../lib/coupons/user-coupons.js';
import { getReadRuntime } from '../lib/runtime.js';
import { httpHandler, json, userDenied, userIdParam } from './http.js';

/** GET /api/v2/users/{userId}/coupons[?limit=&cursor=]: the user's issued coupons, from the ledger. */
export const handler = httpHandler(async (event) => {
  const userId = userIdParam(event);
  const runtime = await getReadRuntime();
  const denied = userDenied(event, userId, runtime.config.authMode);
  if (denied) return denied;
  const query = event.queryStringParameters ?? {};
  const unknown = Object.keys(query).filter((key) => key !== 'limit' && key !== 'cursor');
  if (unknown.length > 0) throw new InvalidInputError(`unknown query parameter(s): ${unknown.slice(0, 5).join(', ')}`);
  const limit = query.limit === undefined ? undefined : /^\d{1,3}$/.test(query.limit) ? Number(query.limit) : NaN;
  const page = await listUserCoupons(runtime, userId, { limit, cursor: query.cursor });
  return json(200, { items: page.items, ...(page.cursor ? { cursor: page.cursor } : {}) });
});
