import { beforeAll, describe, expect, it } from 'vitest';
import type { HttpResult } from '../functions/http.js';
import { services, sleep, uniqueCouponId } from './support/deps.js';
import { httpEvent } from './support/events.js';

/** Handlers under AUTH_MODE=jwt, with rate limits on: who may act, and how often. */
describe('users act only for themselves, admins need the token, abusers are slowed down', () => {
  const adminToken = 'auth-test-admin-token';
  let issue: (e: unknown) => Promise<HttpResult>;
  let createCoupon: (e: unknown) => Promise<HttpResult>;
  let couponId: string;

  beforeAll(async () => {
    const s = services();
    Object.assign(process.env, {
      STAGE: 'local',
      AUTH_MODE: 'jwt',
      ADMIN_TOKEN: adminToken,
      UPSTASH_REDIS_REST_URL: s.gatewayUrl,
      UPSTASH_REDIS_REST_TOKEN: s.gatewayToken,
      DYNAMODB_ENDPOINT: s.dynamodbEndpoint,
      TABLE_NAME: s.tableName,
      REDIS_KEY_PREFIX: `auth${Date.now().toString(36)}`,
      RATE_LIMIT_USER_PER_SECOND: '3',
      RATE_LIMIT_IP_PER_SECOND: '5',
    });
    issue = (await import('../functions/issue.js')).handler as typeof issue;
    createCoupon = (await import('../functions/admin-create-coupon.js')).handler as typeof createCoupon;
    couponId = uniqueCouponId('auth');
    const created = await createCoupon(
      httpEvent({
        method: 'POST',
        path: '/api/v2/admin/coupons',
        headers: { authorization: `Bearer ${adminToken}` },
        body: JSON.stringify({ couponId, name: 'auth', totalQuantity: 100 }),
      }),
    );
    expect(created.statusCode).toBe(201);
  });

  const issueAs = (userId: string, jwtSubject: string | undefined, sourceIp?: string) =>
    issue(httpEvent({ method: 'POST', path: `/api/v2/users/${userId}/coupons/${couponId}/issue`, pathParameters: { userId, couponId }, jwtSubject, sourceIp }));

  it('answers 403 when the path names another user than the token, and 401 without a subject', async () => {
    const other = await issueAs('alice', 'mallory');
    expect(other.statusCode).toBe(403);
    expect(JSON.parse(other.body!)).toMatchObject({ error: 'FORBIDDEN' });
    expect((await issueAs('alice', undefined)).statusCode).toBe(401);
    expect(JSON.parse((await issueAs('alice', 'alice', '198.51.100.1')).body!)).toMatchObject({ result: 'ACCEPTED' });
  });

  it('admin routes: 401 without a token, 403 with a wrong one (compared in constant time), and nothing is created', async () => {
    const body = JSON.stringify({ couponId: 'never-created', name: 'x', totalQuantity: 1 });
    const none = await createCoupon(httpEvent({ method: 'POST', path: '/api/v2/admin/coupons', body }));
    const wrong = await createCoupon(httpEvent({ method: 'POST', path: '/api/v2/admin/coupons', headers: { authorization: 'Bearer nope' }, body }));
    const longer = await createCoupon(httpEvent({ method: 'POST', path: '/api/v2/admin/coupons', headers: { authorization: `Bearer ${adminToken}x` }, body }));
    expect([none.statusCode, wrong.statusCode, longer.statusCode]).toEqual([401, 403, 403]);
    for (const reply of [none, wrong, longer]) expect(reply.body).not.toContain(adminToken);
  });

  it('answers 429 RATE_LIMITED with Retry-After past the per-user limit, and takes no unit', async () => {
    await nearStartOfSecond();
    const replies = await Promise.all(Array.from({ length: 5 }, () => issueAs('bob', 'bob', '198.51.100.2')));
    const codes = replies.map((r) => r.statusCode).sort();
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    const limited = replies.find((r) => r.statusCode === 429)!;
    expect(limited.headers?.['retry-after']).toBe('1');
    expect(JSON.parse(limited.body!)).toMatchObject({ error: 'RATE_LIMITED' });
    expect(replies.filter((r) => r.body?.includes('"ACCEPTED"'))).toHaveLength(1);
  });

  it('answers 429 past the per-client-IP limit, whoever the users are', async () => {
    await nearStartOfSecond();
    const users = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'];
    const replies = await Promise.all(users.map((u) => issueAs(u, u, '198.51.100.3')));
    expect(replies.filter((r) => r.statusCode === 200)).toHaveLength(5);
    expect(replies.filter((r) => r.statusCode === 429)).toHaveLength(2);
  });
});

/** Rate windows are whole seconds: start a burst early in one so it does not straddle two. */
async function nearStartOfSecond(): Promise<void> {
  const intoSecond = Date.now() % 1000;
  if (intoSecond > 300) await sleep(1000 - intoSecond + 10);
}
