import { listDeadLetters, parseRequeueRequest, requeueDeadLetters } from '../lib/coupons/dead-letters.js';
import { getRuntime } from '../lib/runtime.js';
import { adminRoute, couponIdParam, couponNotFound, json, jsonBody, NO_QUERY, queryParam } from './http.js';

/** GET /api/v2/admin/coupons/{couponId}/dead-letters[?offset=&limit=] */
export const list = adminRoute(getRuntime, { offset: queryParam.integer, limit: queryParam.integer }, async ({ event, runtime, query }) => {
  const couponId = couponIdParam(event);
  const items = await listDeadLetters(runtime, couponId, query.offset, query.limit);
  return items ? json(200, { items }) : couponNotFound(couponId);
});

/** POST /api/v2/admin/coupons/{couponId}/dead-letters/requeue  body {} or {"userIds": [...]} */
export const requeue = adminRoute(getRuntime, NO_QUERY, async ({ event, runtime }) => {
  const couponId = couponIdParam(event);
  const userIds = parseRequeueRequest(event.body ? jsonBody(event) : undefined);
  const requeued = await requeueDeadLetters(runtime, couponId, userIds);
  return requeued === undefined ? couponNotFound(couponId) : json(200, { couponId, requeued });
});
