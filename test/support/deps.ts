/** Builds the system's dependencies against the services the global setup started. */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import type { DrainSettings, RateLimitSettings } from '../../lib/config.js';
import type { Deps } from '../../lib/coupons/deps.js';
import { scheduleOnly, type DrainTrigger } from '../../lib/drain/trigger.js';
import { createDynamo } from '../../lib/ledger/dynamo.js';
import { Ledger } from '../../lib/ledger/ledger.js';
import { createRedis } from '../../lib/redis/client.js';
import { CouponStore } from '../../lib/redis/coupon-store.js';

export const services = () => inject('services');

export const defaultDrain: DrainSettings = {
  batchSize: 99,
  claimLeaseMs: 30_000,
  maxAttempts: 5,
  triggerLeaseMs: 10_000,
  stopBeforeTimeoutMs: 0,
};

export function testRedis() {
  const s = services();
  return createRedis({ url: s.gatewayUrl, token: s.gatewayToken, retries: 1 });
}

/** Deps with a fresh Redis key prefix, so each test file (or test) has its own Redis state. */
export function testDeps(
  options: { drain?: Partial<DrainSettings>; trigger?: DrainTrigger; prefix?: string; rateLimit?: Partial<RateLimitSettings> } = {},
): Deps & {
  redis: ReturnType<typeof createRedis>;
} {
  const s = services();
  const redis = testRedis();
  const prefix = options.prefix ?? `t${randomUUID().slice(0, 8)}`;
  return {
    redis,
    store: new CouponStore(redis, prefix),
    ledger: new Ledger(createDynamo({ region: 'us-east-1', endpoint: s.dynamodbEndpoint }), s.tableName),
    trigger: options.trigger ?? scheduleOnly,
    drain: { ...defaultDrain, ...options.drain },
    rateLimit: { userPerSecond: 0, ipPerSecond: 0, ...options.rateLimit },
  };
}

let counter = 0;
/** A coupon id no other test uses (the ledger table is shared by the whole run). */
export function uniqueCouponId(label = 'c'): string {
  counter += 1;
  return `${label}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export const forever = () => Number.MAX_SAFE_INTEGER;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
