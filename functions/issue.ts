import { issueCoupon } from '../lib/coupons/issue.js';
import { getIssueRuntime } from '../lib/issue-runtime.js';
import { couponIdParam, couponNotFound, error, json, NO_QUERY, userRoute } from './http.js';

/** POST /api/v2/users/{userId}/coupons/{couponId}/issue */
export const handler = userRoute(getIssueRuntime, NO_QUERY, async ({ event, runtime, userId }) => {
  const couponId = couponIdParam(event);
  const outcome = await issueCoupon(runtime, couponId, userId, event.requestContext?.http?.sourceIp);
  switch (outcome.kind) {
    case 'ACCEPTED':
      return json(200, { result: 'ACCEPTED', couponId, userId, ticket: outcome.ticket });
    case 'ALREADY_ACCEPTED':
      return json(200, {
        result: 'ALREADY_ACCEPTED',
        couponId,
        userId,
        ticket: outcome.ticket,
        status: outcome.status,
        ...(outcome.issuedAt ? { issuedAt: new Date(outcome.issuedAt).toISOString() } : {}),
      });
    case 'SOLD_OUT':
      return error(409, 'SOLD_OUT', `Coupon ${couponId} is sold out.`);
    case 'NOT_OPEN':
      return error(409, 'NOT_OPEN', `Coupon ${couponId} opens at ${new Date(outcome.startsAt).toISOString()}.`);
    case 'ENDED':
      return error(409, 'ENDED', `Coupon ${couponId} has ended.`);
    case 'COUPON_NOT_FOUND':
      return couponNotFound(couponId);
    case 'RATE_LIMITED':
      return error(429, 'RATE_LIMITED', 'Too many requests for this coupon from this user or address; retry shortly.', {
        'retry-after': '1',
      });
  }
});
