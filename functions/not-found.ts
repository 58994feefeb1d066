import { error, httpHandler } from './http.js';

/**
 * The API's routes as serverless.yml declares them (test/routes.test.ts checks both name the same), for
 * telling a wrong method (405) from a wrong path (404).
 */
export const ROUTES = [
  'POST /api/v2/users/{userId}/coupons/{couponId}/issue',
  'GET /api/v2/users/{userId}/coupons/{couponId}',
  'GET /api/v2/users/{userId}/coupons',
  'GET /api/v2/coupons/{couponId}',
  'POST /api/v2/admin/coupons',
  'GET /api/v2/admin/coupons/{couponId}',
  'POST /api/v2/admin/coupons/{couponId}/reconcile',
  'GET /api/v2/admin/coupons/{couponId}/dead-letters',
  'POST /api/v2/admin/coupons/{couponId}/dead-letters/requeue',
  'GET /api/v2/admin/coupons/{couponId}/live',
  'GET /admin',
].map((key) => {
  const [method, path] = key.split(' ') as [string, string];
  return { key, method, pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`) };
});

/** The default route: anything no other route matched gets the API's JSON error shape. */
export const handler = httpHandler(async (event) => {
  const path = event.rawPath ?? '';
  const allowed = ROUTES.filter((route) => route.pattern.test(path)).map((route) => route.method);
  if (allowed.length > 0) {
    return error(405, 'METHOD_NOT_ALLOWED', `${path} accepts ${allowed.join(', ')} only.`, { allow: allowed.join(', ') });
  }
  return error(404, 'NOT_FOUND', 'There is no such route; see the README for the API.');
});
