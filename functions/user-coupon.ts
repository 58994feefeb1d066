import { getUserCouponStatus } from '../lib/coupons/user-coupons.js';
import { getReadRuntime } from '../lib/runtime.js';
import { couponIdParam, couponNotFound, error, json, NO_QUERY, userRoute } from './http.js';

/** GET /api/v2/users/{userId}/coupons/{couponId}: where the user stands on one coupon. */
export const handler = userRoute(getReadRuntime, NO_QUERY, async ({ event, runtime, userId }) => {
  const couponId = couponIdParam(event);
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
