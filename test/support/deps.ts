/** Builds the system's dependencies against the services the global setup started. */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import type { AdmissionSettings, DrainSettings, RateLimitSettings } from '../../lib/config.js';
import { CouponCache } from '../../lib/coupons/coupon-cache.js';
import { RateLimiter } from '../../lib/coupons/rate-limiter.js';
import type { CouponStore } from '../../lib/redis/coupon-store.js';
import { Shards } from '../../lib/redis/shards.js';
import type { DrainTrigger } from '../../lib/drain/trigger.js';
import { scenarioDeps } from '../faults/scenarios.js';

export const services = () => inject('services');

export const defaultDrain: DrainSettings = {
  batchSize: 99,
  claimLeaseMs: 30_000,
  maxAttempts: 5,
  triggerLeaseMs: 10_000,
  stopBeforeTimeoutMs: 0,
  lingerMs: 0,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
};

/** Deps with a fresh Redis key prefix, so each test file (or test) has its own Redis state. */
export function testDeps(
  options: {
    drain?: Partial<DrainSettings>;
    trigger?: DrainTrigger;
    prefix?: string;
    rateLimit?: Partial<RateLimitSettings>;
    admission?: Partial<AdmissionSettings>;
    /** The Redis client's request timeout (default: production's 2 s). */
    redisTimeoutMs?: number;
  } = {},
) {
  return scenarioDeps(
    services(),
    options.prefix ?? `t${randomUUID().slice(0, 8)}`,
    {
      drain: { ...defaultDrain, ...options.drain },
      limiter: new RateLimiter({ userPerSecond: 0, ipPerSecond: 0, ...options.rateLimit }),
      admission: { ...defaultAdmission, ...options.admission },
      cache: new CouponCache({ ...defaultAdmission, ...options.admission }),
      ...(options.trigger ? { trigger: options.trigger } : {}),
    },
    { redisTimeoutMs: options.redisTimeoutMs },
  );
}

export const defaultAdmission: AdmissionSettings = { clockMarginMs: 1_000, soldOutRecheckMs: 2_000, rebuildWaitMs: 1_500 };

/** The same deps with the (only) shard's store replaced, e.g. by one with some methods overridden. */
export function withStore<D extends { store: CouponStore; shards: Shards }>(deps: D, store: CouponStore): D {
  return { ...deps, store, shards: new Shards([store]) };
}

/** The same deps with some of the ledger's methods replaced (the rest still reach the real ledger). */
export function withLedger<D extends { ledger: object }>(deps: D, overrides: Partial<D['ledger']>): D {
  return { ...deps, ledger: Object.assign(Object.create(deps.ledger), overrides) };
}

let counter = 0;
/** A coupon id no other test uses (the ledger table is shared by the whole run). */
export function uniqueCouponId(label = 'c'): string {
  counter += 1;
  return `${label}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export const forever = () => Number.MAX_SAFE_INTEGER;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
