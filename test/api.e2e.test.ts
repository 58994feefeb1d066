import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../localstack/processes.js';
import { startStack, type Stack } from '../localstack/stack.js';
import { services, testDeps } from './support/deps.js';
import { api, eventually, inParallel } from './support/http.js';

/** The HTTP API end to end through `serverless offline`: routes, status codes, the drain trigger. */
describe('the HTTP API through serverless offline', () => {
  const adminToken = 'e2e-admin-token';
  const prefix = `e2e${Date.now().toString(36)}`;
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-e2e-'));
  let stack: Stack;
  let client: ReturnType<typeof api>;
  let anonymous: ReturnType<typeof api>;

  beforeAll(async () => {
    const s = services();
    stack = await startStack({
      dataDir: dir,
      ports: { api: await freePort(), lambda: await freePort(), dynamodb: 0, gateway: 0, redis: 0 },
      tableName: s.tableName,
      adminToken,
      upstashToken: s.gatewayToken,
      redisKeyPrefix: prefix,
      offline: true,
      externalRedis: { url: s.gatewayUrl, token: s.gatewayToken },
      externalDynamo: { endpoint: s.dynamodbEndpoint },
      offlineLog: join(dir, 'offline.log'),
      extraEnv: { LOG_LEVEL: 'warn' },
    });
    client = api(stack.apiUrl, adminToken);
    anonymous = api(stack.apiUrl);
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('10,000 concurrent requests from 3,000 users on a new 1,000-unit coupon: exactly the 1,000 winners persisted', async () => {
    const couponId = `e2e-burst-${Date.now()}`;
    const created = await client.createCoupon({ couponId, name: 'E2E burst', totalQuantity: 1_000 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ couponId, totalQuantity: 1_000, remaining: 1_000, status: 'OPEN' });

    const users = Array.from({ length: 10_000 }, (_, i) => `user${(i * 7_919) % 3_000}`);
    const replies = await inParallel(users.length, 100, (i) => anonymous.issue(users[i]!, couponId));
    expect(replies.filter((r) => r.status >= 500)).toEqual([]);
    const winners = new Set<string>();
    const firstAnswers = new Map<string, string>();
    replies.forEach((r, i) => {
      if (r.body.result === 'ACCEPTED') winners.add(users[i]!);
      if (!firstAnswers.has(users[i]!)) firstAnswers.set(users[i]!, r.body.result ?? r.body.error);
    });
    expect(winners.size).toBe(1_000);
    // Every other user's first request was answered SOLD_OUT.
    expect([...firstAnswers.entries()].filter(([u, a]) => !winners.has(u) && a !== 'SOLD_OUT')).toEqual([]);
    for (const [i, r] of replies.entries()) {
      if (r.body.result === 'ACCEPTED') continue;
      if (winners.has(users[i]!)) expect(r.body).toMatchObject({ result: 'ALREADY_ACCEPTED', ticket: expect.any(Number) });
      else expect(r).toMatchObject({ status: 409, body: { error: 'SOLD_OUT', message: expect.any(String) } });
    }

    // The first admission started a drain through the Lambda invoke endpoint: no minute-long wait.
    const view = await eventually(
      () => client.adminCoupon(couponId),
      (r) => r.body.issued === 1_000,
      60_000,
      'all winners persisted within a minute',
    );
    expect(view.body).toMatchObject({ status: 'FINISHED', queued: 0, inflight: 0, deadLettered: 0, remaining: 0 });
    const ledger = testDeps().ledger;
    const persisted: string[] = [];
    for await (const page of ledger.issuancesOf(couponId)) persisted.push(...page.map((p) => p.userId));
    expect(persisted.sort()).toEqual([...winners].sort());
    for (const userId of [...winners].slice(0, 20)) {
      expect((await anonymous.status(userId, couponId)).body).toMatchObject({ status: 'ISSUED', issuedAt: expect.any(String) });
    }
    const someWinner = [...winners][0]!;
    const mine = await anonymous.call('GET', `/api/v2/users/${someWinner}/coupons`);
    expect(mine.body.items).toContainEqual(expect.objectContaining({ couponId }));
  });

  it('answers every error with the JSON error shape and the right status', async () => {
    const expectError = (reply: { status: number; body: any }, status: number, code: string) => {
      expect(reply.status, JSON.stringify(reply.body)).toBe(status);
      expect(reply.body).toEqual({ error: code, message: expect.any(String) });
    };
    expectError(await anonymous.issue('u1', 'no-such-coupon'), 404, 'COUPON_NOT_FOUND');
    expectError(await anonymous.issue('bad id!', '1'), 400, 'INVALID_REQUEST');
    expectError(await anonymous.issue('x'.repeat(129), '1'), 400, 'INVALID_REQUEST');
    expectError(await anonymous.status('u1', 'no-such-coupon'), 404, 'COUPON_NOT_FOUND');
    expectError(await anonymous.call('GET', '/api/v2/coupons/no-such-coupon'), 404, 'COUPON_NOT_FOUND');
    expectError(await anonymous.call('GET', '/nowhere'), 404, 'NOT_FOUND');
    expectError(await anonymous.call('DELETE', '/api/v2/coupons/1'), 405, 'METHOD_NOT_ALLOWED');

    // Admin routes are refused by the gateway's authorizer, in the gateway's own shape (API Gateway:
    // {"message": "Unauthorized"}; serverless offline adds statusCode and error), before any handler.
    const refusedByGateway = (reply: { status: number; body: any }, status: number) => {
      expect(reply.status, JSON.stringify(reply.body)).toBe(status);
      expect(reply.body).toMatchObject({ message: expect.any(String) });
    };
    refusedByGateway(await anonymous.createCoupon({ couponId: 'x', name: 'x', totalQuantity: 1 }), 401);
    refusedByGateway(await api(stack.apiUrl, 'wrong').createCoupon({ couponId: 'x', name: 'x', totalQuantity: 1 }), 403);
    refusedByGateway(await anonymous.adminCoupon('x'), 401);
    expectError(await client.createCoupon('{"couponId":'), 400, 'INVALID_REQUEST');
    expectError(await client.createCoupon({ couponId: 'x', name: 'x', totalQuantity: 1, color: 'red' }), 400, 'INVALID_REQUEST');
    expectError(await client.createCoupon({ couponId: 'x', name: 'y'.repeat(5_000), totalQuantity: 1 }), 400, 'INVALID_REQUEST');
    expectError(await client.createCoupon({ couponId: 'x', name: 'x', totalQuantity: 10_000_001 }), 400, 'INVALID_REQUEST');
    expectError(await client.adminCoupon('x'), 404, 'COUPON_NOT_FOUND');

    const couponId = `e2e-window-${Date.now()}`;
    expect((await client.createCoupon({ couponId, name: 'later', totalQuantity: 5, startsAt: '2099-01-01T00:00:00Z' })).status).toBe(201);
    expectError(await client.createCoupon({ couponId, name: 'again', totalQuantity: 5 }), 409, 'COUPON_EXISTS');
    expectError(await anonymous.issue('u1', couponId), 409, 'NOT_OPEN');
    expectError(await anonymous.status('u1', couponId), 404, 'NOT_REQUESTED');
    expect((await anonymous.call('GET', `/api/v2/coupons/${couponId}`)).body).toMatchObject({ status: 'SCHEDULED', remaining: 5 });
  });
});
