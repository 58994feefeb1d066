import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { metrics } from '../lib/metrics.js';
import type { HttpResult } from '../functions/http.js';
import { freePort } from '../localstack/processes.js';
import { services } from './support/deps.js';
import { httpEvent } from './support/events.js';

/** Redis (or its REST gateway) unreachable: a clear 503 with Retry-After, never a 500. */
describe('when Redis cannot be reached', () => {
  let issue: (e: unknown) => Promise<HttpResult>;
  let status: (e: unknown) => Promise<HttpResult>;

  beforeAll(async () => {
    const s = services();
    Object.assign(process.env, {
      STAGE: 'local',
      UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${await freePort()}`,
      UPSTASH_REDIS_REST_TOKEN: 't',
      DYNAMODB_ENDPOINT: s.dynamodbEndpoint,
      TABLE_NAME: s.tableName,
    });
    issue = (await import('../functions/issue.js')).handler as typeof issue;
    status = (await import('../functions/user-coupon.js')).handler as typeof status;
  });

  it('the issue and status endpoints answer 503 UNAVAILABLE with Retry-After, each counted as ServiceUnavailable', async () => {
    const recorded = vi.spyOn(metrics, 'addMetric');
    const params = { userId: 'u1', couponId: '1' };
    for (const reply of [
      await issue(httpEvent({ method: 'POST', path: '/api/v2/users/u1/coupons/1/issue', pathParameters: params })),
      await status(httpEvent({ method: 'GET', path: '/api/v2/users/u1/coupons/1', pathParameters: params })),
    ]) {
      expect(reply.statusCode).toBe(503);
      expect(reply.headers?.['retry-after']).toBe('1');
      expect(JSON.parse(reply.body!)).toEqual({ error: 'UNAVAILABLE', message: expect.any(String) });
    }
    expect(recorded.mock.calls.filter(([name]) => name === 'ServiceUnavailable')).toHaveLength(2);
    recorded.mockRestore();
  });

  it('a drain invoked with an invalid couponId is ignored at once (thrown, Lambda would retry it twice), touching nothing', async () => {
    const drain = (await import('../functions/drain.js')).handler;
    const context = { getRemainingTimeInMillis: () => 60_000 } as Context;
    // Thrown before: parseId refused these ids. Now nothing is attempted and there is no report.
    await expect(drain({ couponId: '../../etc' }, context)).resolves.toEqual({ reports: [] });
    await expect(drain({ couponId: 42 }, context)).resolves.toEqual({ reports: [] });
  });

  it('a drain started for a coupon while Redis is unreachable ends with a warning, not a thrown error (which crashed serverless offline and fills the failure queue)', async () => {
    const drain = (await import('../functions/drain.js')).handler;
    const context = { getRemainingTimeInMillis: () => 60_000 } as Context;
    await expect(drain({ couponId: '1' }, context)).resolves.toEqual({ reports: [] });
    await expect(drain({ couponId: '1', shard: 0 }, context)).resolves.toEqual({ reports: [] });
  });
});
