import { error, httpHandler } from './http.js';

/** The API's routes, for telling a wrong method (405) from a wrong path (404). Mirrors serverless.yml. */
const ROUTES: ReadonlyArray<{ method: string; pattern: RegExp }> = [
  { method: 'POST', pattern: /^\/api\/v2\/users\/[^/]+\/coupons\/[^/]+\/issue$/ },
  { method: 'GET', pattern: /^\/api\/v2\/users\/[^/]+\/coupons\/[^/]+$/ },
  { method: 'GET', pattern: /^\/api\/v2\/users\/[^/]+\/coupons$/ },
  { method: 'GET', pattern: /^\/api\/v2\/coupons\/[^/]+$/ },
  { method: 'POST', pattern: /^\/api\/v2\/admin\/coupons$/ },
  { method: 'GET', pattern: /^\/api\/v2\/admin\/coupons\/[^/]+$/ },
  { method: 'POST', pattern: /^\/api\/v2\/admin\/coupons\/[^/]+\/reconcile$/ },
  { method: 'GET', pattern: /^\/api\/v2\/admin\/coupons\/[^/]+\/dead-letters$/ },
  { method: 'POST', pattern: /^\/api\/v2\/admin\/coupons\/[^/]+\/dead-letters\/requeue$/ },
];

/** The default route: anything no other route matched gets the API's JSON error shape. */
export const handler = httpHandler(async (event) => {
  const path = event.rawPath ?? '';
  const allowed = ROUTES.filter((route) => route.pattern.test(path)).map((route) => route.method);
  if (allowed.length > 0) {
    return error(405, 'METHOD_NOT_ALLOWED', `${path} accepts ${allowed.join(', ')} only.`, { allow: allowed.join(', ') });
  }
  return error(404, 'NOT_FOUND', 'There is no such route; see the README for the API.');
});
