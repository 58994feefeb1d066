import { parseId } from '../lib/coupons/ids.js';
import { getUserCouponStatus } from '../lib/coupons/user-coupons.js';
import { getReadRuntime } from '../lib/runtime.js';
import { couponNotFound, error, httpHandler, json, pathParam, userDenied, userIdParam } from './http.js';

/** GET /api/v2/users/{userId}/coupons/{couponId}: where the user stands on one coupon. */
export const handler = httpHandler(async (event) => {
  const userId = userIdParam(event);
  const couponId = parseId('couponId', pathParam(event, 'couponId'));
  const runtime = await getReadRuntime();
  const denied = userDenied(event, userId, runtime.config.authMode);
  if (denied) return denied;
  const status = await getUserCouponStatus(runtime, couponId, userId);
  switch (status.kind) {
    case 'FOUND':
      return json(200, {
        couponId,
        userId,
        status: status.status,
        ticket: status.ticket,
        ...(status.issuedAt ? { issuedAt: new Date(status.issuedAt).toISOString() } : {}),
      });
    case 'NOT_REQUESTED':
      return error(404, 'NOT_REQUESTED', `User ${userId} has no ticket for coupon ${couponId}.`);
    case 'COUPON_NOT_FOUND':
      return couponNotFound(couponId);
  }
});
