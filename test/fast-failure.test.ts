import { createServer, type Server } from 'node:http';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpResult } from '../functions/http.js';
import { createCoupon } from '../lib/coupons/campaigns.js';
import { decodeEntry, userOfField } from '../lib/redis/codec.js';
import { startDynamoQuotaProxy, type DynamoQuotaProxy } from '../localstack/dynamodb-quota-proxy.js';
import { services, testDeps, uniqueCouponId } from './support/deps.js';
import { startDelayProxy, type DelayProxy } from './support/delay-proxy.js';
import { httpEvent } from './support/events.js';

/**
 * Failing fast (issue 17): the request path's handlers against a deliberately slow gateway (a delaying
 * TCP proxy in front of the real Upstash gateway), a slow DynamoDB (the quota proxy's latency in front of
 * DynamoDB Local) and a Lambda invoke endpoint that never answers. Each request must be answered within
 * its deadline plus a generous margin (two shared cores: no tight timing), with 503 and Retry-After, and
 * leave nothing half-applied.
 */
const DEADLINE_MS = 400;
const BREAKER_FAILURES = 3;
const BREAKER_OPEN_MS = 1_000;
const LEDGER_READ_TIMEOUT_MS = 400;
/** Generous: these tests prove bounds, not speed. */
const MARGIN_MS = 2_500;

type Handler = (event: unknown) => Promise<HttpResult>;

describe('the request path fails fast', () => {
  const prefix = `ff${Date.now().toString(36)}`;
  let redisProxy: DelayProxy;
  let dynamoProxy: DynamoQuotaProxy;
  let lambda: Server;
  const invokes: string[] = [];
  let issue: Handler;
  let userCoupons: Handler;
  let coupon: Handler;
  const deps = () => testDeps({ prefix });

  beforeAll(async () => {
    const s = services();
    redisProxy = await startDelayProxy(Number(new URL(s.gatewayUrl).port));
    dynamoProxy = await startDynamoQuotaProxy({ target: s.dynamodbEndpoint });
    // A Lambda invoke endpoint that takes every request and never answers.
    lambda = createServer((req) => invokes.push(req.url ?? ''));
    await new Promise<void>((resolve) => lambda.listen(0, '127.0.0.1', () => resolve()));
    const lambdaPort = (lambda.address() as { port: number }).port;
    Object.assign(process.env, {
      STAGE: 'local',
      UPSTASH_REDIS_REST_URL: redisProxy.url,
      UPSTASH_REDIS_REST_TOKEN: s.gatewayToken,
      REDIS_KEY_PREFIX: prefix,
      DYNAMODB_ENDPOINT: dynamoProxy.url,
      TABLE_NAME: s.tableName,
      LAMBDA_ENDPOINT: `http://127.0.0.1:${lambdaPort}`,
      DRAIN_FUNCTION_NAME: 'fcfs-coupons-test-drain',
      RESTORE_FUNCTION_NAME: 'fcfs-coupons-test-restore',
      REDIS_DEADLINE_MS: String(DEADLINE_MS),
      REDIS_BREAKER_FAILURES: String(BREAKER_FAILURES),
      REDIS_BREAKER_OPEN_MS: String(BREAKER_OPEN_MS),
      LEDGER_READ_ATTEMPTS: '2',
      LEDGER_READ_REQUEST_TIMEOUT_MS: String(LEDGER_READ_TIMEOUT_MS),
      RATE_LIMIT_USER_PER_SECOND: '0',
    });
    issue = (await import('../functions/issue.js')).handler as Handler;
    userCoupons = (await import('../functions/user-coupons.js')).handler as Handler;
    coupon = (await import('../functions/coupon.js')).handler as Handler;
  });
  afterAll(async () => {
    lambda?.closeAllConnections();
    await new Promise((resolve) => lambda?.close(resolve));
    await redisProxy?.close();
    await dynamoProxy?.close();
  });

  const issueAs = (userId: string, couponId: string) =>
    timed(() => issue(httpEvent({ method: 'POST', path: `/api/v2/users/${userId}/coupons/${couponId}/issue`, pathParameters: { userId, couponId } })));

  async function newCoupon(units: number): Promise<string> {
    const couponId = uniqueCouponId('ff');
    await createCoupon(deps(), { couponId, name: 'fast failure', totalQuantity: units, startsAt: undefined, endsAt: undefined });
    return couponId;
  }

  it("answers a winner within the drain start's 300 ms budget (plus a margin) when the invoke never answers; the winner stays queued for the schedule", async () => {
    const couponId = await newCoupon(10);
    const { result, ms } = await issueAs('first-winner', couponId);
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body!)).toMatchObject({ result: 'ACCEPTED', ticket: 1 });
    // The first winner found no drain running and asked for one: the invoke reached the endpoint.
    expect(invokes).toEqual(['/2015-03-31/functions/fcfs-coupons-test-drain/invocations']);
    expect(ms).toBeLessThan(300 + MARGIN_MS);
    expect(await inRedis((redis) => redis.zscore(deps().store.keys(couponId).queue, 'first-winner'))).toBe('1');
  });

  it('answers 503 with Retry-After within the deadline while the gateway is slow, then at once without asking Redis, and recovers by itself; nothing is half-applied', async () => {
    const couponId = await newCoupon(100);
    redisProxy.set({ replyMs: 3_000 });
    const slow: { userId: string; ms: number; result: HttpResult; chunksBefore: number; chunksAfter: number }[] = [];
    try {
      for (let i = 0; i < BREAKER_FAILURES + 3; i++) {
        const userId = `slow${i}`;
        const chunksBefore = redisProxy.stats.chunks;
        const { result, ms } = await issueAs(userId, couponId);
        slow.push({ userId, ms, result, chunksBefore, chunksAfter: redisProxy.stats.chunks });
      }
    } finally {
      redisProxy.set({});
    }
    for (const { result, ms } of slow) {
      expect(result.statusCode).toBe(503);
      expect(JSON.parse(result.body!)).toEqual({ error: 'UNAVAILABLE', message: expect.any(String) });
      expect(Number(result.headers?.['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(ms).toBeLessThan(DEADLINE_MS + MARGIN_MS);
    }
    // The first requests reached Redis (late); after BREAKER_FAILURES timeouts, none was sent.
    for (const request of slow.slice(0, BREAKER_FAILURES)) expect(request.chunksAfter).toBeGreaterThan(request.chunksBefore);
    for (const request of slow.slice(BREAKER_FAILURES)) expect(request.chunksAfter).toBe(request.chunksBefore);

    // The breaker closes by itself: after its open period one request goes through, and it succeeds.
    await new Promise((resolve) => setTimeout(resolve, BREAKER_OPEN_MS + 200));
    const after = await issueAs('after-the-outage', couponId);
    expect(after.result.statusCode).toBe(200);
    expect(JSON.parse(after.result.body!)).toMatchObject({ result: 'ACCEPTED' });

    // Nothing half-applied: each admission that reached Redis applied whole (entry, queue, unit), and
    // each user asking again is answered consistently with it.
    const keys = deps().store.keys(couponId);
    const state = await inRedis((redis) => redis.hgetall(keys.state));
    const queue = await inRedis((redis) => redis.zrange(keys.queue, 0, -1, 'WITHSCORES'));
    const queued = new Map<string, number>();
    for (let i = 0; i < queue.length; i += 2) queued.set(String(queue[i]), Number(queue[i + 1]));
    const entries = Object.entries(state).flatMap(([field, raw]) => {
      const userId = userOfField(field);
      return userId ? [{ userId, entry: decodeEntry(String(raw)) }] : [];
    });
    expect(Number(state.remaining) + entries.length).toBe(100);
    for (const { userId, entry } of entries) expect(queued.get(userId), userId).toBe(entry.ticket);
    expect(queued.size).toBe(entries.length);
    for (const { userId } of slow.slice(0, BREAKER_FAILURES)) {
      const { result } = await issueAs(userId, couponId);
      const body = JSON.parse(result.body!);
      const entry = entries.find((e) => e.userId === userId)?.entry;
      if (entry) expect(body).toMatchObject({ result: 'ALREADY_ACCEPTED', ticket: entry.ticket });
      else expect(body).toMatchObject({ result: 'ACCEPTED' });
    }
  }, 60_000);

  it("answers read requests 503 with Retry-After within the read client's budget while DynamoDB is slow", async () => {
    const couponId = await newCoupon(5);
    expect((await coupon(httpEvent({ method: 'GET', path: `/api/v2/coupons/${couponId}`, pathParameters: { couponId } }))).statusCode).toBe(200);
    // 2 attempts of 400 ms each (connecting included) + the SDK's pause of at most 1 s.
    const budgetMs = 2 * LEDGER_READ_TIMEOUT_MS + 1_000;
    dynamoProxy.setLatency(5_000);
    try {
      for (const call of [
        () => userCoupons(httpEvent({ method: 'GET', path: '/api/v2/users/reader/coupons', pathParameters: { userId: 'reader' } })),
        () => coupon(httpEvent({ method: 'GET', path: `/api/v2/coupons/${couponId}`, pathParameters: { couponId } })),
      ]) {
        const { result, ms } = await timed(call);
        expect(result.statusCode, result.body).toBe(503);
        expect(result.headers?.['retry-after']).toBe('1');
        expect(ms).toBeLessThan(budgetMs + MARGIN_MS);
      }
    } finally {
      dynamoProxy.setLatency(0);
    }
    expect((await userCoupons(httpEvent({ method: 'GET', path: '/api/v2/users/reader/coupons', pathParameters: { userId: 'reader' } }))).statusCode).toBe(200);
  }, 60_000);
});

/** redis-server itself, behind the gateway and the proxy. */
async function inRedis<T>(read: (redis: IORedis) => Promise<T>): Promise<T> {
  const redis = new IORedis({ port: services().redisPort, lazyConnect: true });
  try {
    await redis.connect();
    return await read(redis);
  } finally {
    redis.disconnect();
  }
}

async function timed(call: () => Promise<HttpResult>): Promise<{ result: HttpResult; ms: number }> {
  const started = performance.now();
  const result = await call();
  return { result, ms: performance.now() - started };
}
