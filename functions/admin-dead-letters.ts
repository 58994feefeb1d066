import { listDeadLetters, parseRequeueRequest, requeueDeadLetters } from '../lib/coupons/dead-letters.js';
import { parseId } from '../lib/coupons/ids.js';
import { InvalidInputError } from '../lib/errors.js';
import { getRuntime } from '../lib/runtime.js';
import { adminDenied, couponNotFound, httpHandler, json, jsonBody, pathParam } from './http.js';

const integerParam = (raw: string | undefined, name: string): number | undefined => {
  if (raw === undefined) return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw new InvalidInputError(`${name} must be a non-negative integer`);
  return Number(raw);
};

/** GET /api/v2/admin/coupons/{couponId}/dead-letters[?offset=&limit=] */
export const list = httpHandler(async (event) => {
  const runtime = await getRuntime();
  const denied = adminDenied(event, await runtime.adminToken());
  if (denied) return denied;
  const couponId = parseId('couponId', pathParam(event, 'couponId'));
  const query = event.queryStringParameters ?? {};
  const items = await listDeadLetters(runtime, couponId, integerParam(query.offset, 'offset'), integerParam(query.limit, 'limit'));
  return items ? json(200, { items }) : couponNotFound(couponId);
});

/** POST /api/v2/admin/coupons/{couponId}/dead-letters/requeue  body {} or {"userIds": [...]} */
export const requeue = httpHandler(async (event) => {
  const runtime = await getRuntime();
  const denied = adminDenied(event, await runtime.adminToken());
  if (denied) return denied;
  const couponId = parseId('couponId', pathParam(event, 'couponId'));
  const userIds = parseRequeueRequest(event.body ? jsonBody(event) : undefined);
  const requeued = await requeueDeadLetters(runtime, couponId, userIds);
  return requeued === undefined ? couponNotFound(couponId) : json(200, { couponId, requeued });
});
