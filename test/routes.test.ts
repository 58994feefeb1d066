import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HttpResult } from '../functions/http.js';
import { PROJECT_ROOT } from '../localstack/processes.js';
import { services, uniqueCouponId } from './support/deps.js';
import { httpEvent } from './support/events.js';

type Handler = (event: unknown) => Promise<HttpResult>;

/** serverless.yml's HTTP API routes ("METHOD /path"), catch-alls excepted. */
function declaredRoutes(): string[] {
  const yml = readFileSync(join(PROJECT_ROOT, 'serverless.yml'), 'utf8');
  const routes: string[] = [];
  for (const match of yml.matchAll(/- httpApi:\n\s+method: (\w+)\n\s+path: (\S+)/g)) routes.push(`${match[1]} ${match[2]}`);
  return routes.sort();
}

describe('the not-found router', () => {
  it('knows the same routes as serverless.yml, so a wrong method on any of them is a 405', async () => {
    const { ROUTES } = await import('../functions/not-found.js');
    expect(declaredRoutes().length).toBeGreaterThan(5);
    expect(ROUTES.map((route) => route.key).sort()).toEqual(declaredRoutes());
  });

  it('answers 405 with Allow for every declared path asked with another method, 404 elsewhere', async () => {
    const { handler } = await import('../functions/not-found.js');
    for (const key of declaredRoutes()) {
      const [method, template] = key.split(' ') as [string, string];
      const path = template.replace(/\{[^}]+\}/g, 'x1');
      const other = method === 'GET' ? 'DELETE' : 'GET';
      const reply = (await handler(httpEvent({ method: other, path }))) as HttpResult;
      expect(reply.statusCode, key).toBe(405);
      expect(reply.headers?.allow, key).toContain(method);
    }
    expect(((await handler(httpEvent({ method: 'GET', path: '/api/v2/nothing' }))) as HttpResult).statusCode).toBe(404);
  });
});

describe('every API route refuses a query parameter it does not take', () => {
  const adminToken = 'routes-test-admin-token';
  const admin = { authorization: `Bearer ${adminToken}` };
  let couponId: string;
  const handlers: Record<string, Handler> = {};

  beforeAll(async () => {
    const s = services();
    Object.assign(process.env, {
      STAGE: 'local',
      AUTH_MODE: 'none',
      ADMIN_TOKEN: adminToken,
      UPSTASH_REDIS_REST_URL: s.gatewayUrl,
      UPSTASH_REDIS_REST_TOKEN: s.gatewayToken,
      DYNAMODB_ENDPOINT: s.dynamodbEndpoint,
      TABLE_NAME: s.tableName,
      REDIS_KEY_PREFIX: `routes${Date.now().toString(36)}`,
    });
    const deadLetters = await import('../functions/admin-dead-letters.js');
    Object.assign(handlers, {
      issue: (await import('../functions/issue.js')).handler,
      userCoupon: (await import('../functions/user-coupon.js')).handler,
      userCoupons: (await import('../functions/user-coupons.js')).handler,
      coupon: (await import('../functions/coupon.js')).handler,
      create: (await import('../functions/admin-create-coupon.js')).handler,
      get: (await import('../functions/admin-get-coupon.js')).handler,
      reconcile: (await import('../functions/admin-reconcile.js')).handler,
      deadLetters: deadLetters.list,
      requeue: deadLetters.requeue,
      live: (await import('../functions/admin-live.js')).handler,
    });
    couponId = uniqueCouponId('routes');
    const created = await handlers.create!(
      httpEvent({ method: 'POST', path: '/api/v2/admin/coupons', headers: admin, body: JSON.stringify({ couponId, name: 'routes', totalQuantity: 5 }) }),
    );
    expect(created.statusCode).toBe(201);
  });

  const user = (path: string) => ({ pathParameters: { userId: 'u1', couponId }, path });
  const cases = (): [string, Parameters<typeof httpEvent>[0]][] => [
    ['issue', { method: 'POST', ...user(`/api/v2/users/u1/coupons/${couponId}/issue`) }],
    ['userCoupon', { method: 'GET', ...user(`/api/v2/users/u1/coupons/${couponId}`) }],
    ['userCoupons', { method: 'GET', ...user('/api/v2/users/u1/coupons') }],
    ['coupon', { method: 'GET', path: `/api/v2/coupons/${couponId}`, pathParameters: { couponId } }],
    [
      'create',
      { method: 'POST', path: '/api/v2/admin/coupons', headers: admin, body: JSON.stringify({ couponId: `${couponId}b`, name: 'x', totalQuantity: 1 }) },
    ],
    ['get', { method: 'GET', path: `/api/v2/admin/coupons/${couponId}`, pathParameters: { couponId }, headers: admin }],
    ['reconcile', { method: 'POST', path: `/api/v2/admin/coupons/${couponId}/reconcile`, pathParameters: { couponId }, headers: admin }],
    ['deadLetters', { method: 'GET', path: `/api/v2/admin/coupons/${couponId}/dead-letters`, pathParameters: { couponId }, headers: admin }],
    ['requeue', { method: 'POST', path: `/api/v2/admin/coupons/${couponId}/dead-letters/requeue`, pathParameters: { couponId }, headers: admin, body: '{}' }],
    ['live', { method: 'GET', path: `/api/v2/admin/coupons/${couponId}/live`, pathParameters: { couponId }, headers: admin }],
  ];

  it('with 400 INVALID_REQUEST naming it, before doing anything', async () => {
    for (const [name, event] of cases()) {
      const reply = await handlers[name]!(httpEvent({ ...event, query: { bogus: '1' } }));
      expect(reply.statusCode, name).toBe(400);
      expect(JSON.parse(reply.body!), name).toEqual({ error: 'INVALID_REQUEST', message: expect.stringMatching(/^unknown query parameter\(s\): bogus; /) });
    }
    // Nothing was admitted or created.
    const standing = await handlers.userCoupon!(httpEvent({ method: 'GET', ...user(`/api/v2/users/u1/coupons/${couponId}`) }));
    expect(JSON.parse(standing.body!)).toMatchObject({ error: 'NOT_REQUESTED' });
    const other = await handlers.get!(
      httpEvent({ method: 'GET', path: `/api/v2/admin/coupons/${couponId}b`, pathParameters: { couponId: `${couponId}b` }, headers: admin }),
    );
    expect(other.statusCode).toBe(404);
  });

  it('and still answers the same request without it', async () => {
    for (const [name, event] of cases()) {
      const reply = await handlers[name]!(httpEvent(event));
      expect(reply.statusCode, `${name}: ${reply.body}`).toBeLessThan(300);
    }
  });
});
