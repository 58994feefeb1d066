import { parseId } from '../lib/coupons/ids.js';
import { reconcileCoupon } from '../lib/coupons/reconcile.js';
import { InvalidInputError } from '../lib/errors.js';
import { getRuntime } from '../lib/runtime.js';
import { adminDenied, couponNotFound, httpHandler, json, pathParam } from './http.js';

/** POST /api/v2/admin/coupons/{couponId}/reconcile[?dryRun=true]: compare Redis with the ledger and repair. */
export const handler = httpHandler(async (event) => {
  const runtime = await getRuntime();
  const denied = adminDenied(event, await runtime.adminToken());
  if (denied) return denied;
  const couponId = parseId('couponId', pathParam(event, 'couponId'));
  const dryRunParam = event.queryStringParameters?.dryRun;
  if (dryRunParam !== undefined && dryRunParam !== 'true' && dryRunParam !== 'false') {
    throw new InvalidInputError('dryRun must be true or false');
  }
  const report = await reconcileCoupon(runtime, couponId, { dryRun: dryRunParam === 'true' });
  return report ? json(200, report) : couponNotFound(couponId);
});
