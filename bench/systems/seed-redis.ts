/**
 * Baseline "seed-redis": the seed design, reproduced faithfully (shared/reference/seed-design.md).
 *
 * Request path: SISMEMBER issued-set user (already issued? -> 409), then ZADD queue <timestamp> user,
 * then 200 "request received": two round trips, no real-time result.
 * Scheduler: bench/systems/seed-redis-scheduler.ts.
 * Same Redis (through the same Upstash REST gateway and client settings as fcfs-coupons' handlers).
 */
import { createRedis } from '../../lib/redis/client.js';
import { answering, BAD_ID, env, ids, reply, type Event, type Result } from './shared.js';

let redisClient: ReturnType<typeof createRedis> | undefined;
export const redis = () => (redisClient ??= createRedis({ url: env('UPSTASH_REDIS_REST_URL'), token: env('UPSTASH_REDIS_REST_TOKEN'), retries: 1 }));

export const seedKeys = (couponId: string) => ({
  queue: `seed:{${couponId}}:queue`,
  issued: `seed:{${couponId}}:issued`,
  stock: `seed:{${couponId}}:stock`,
  finished: `seed:{${couponId}}:finished`,
  active: 'seed:active-coupons',
});

export const handler = answering(async (event: Event): Promise<Result> => {
  const parsed = ids(event);
  if (!parsed) return BAD_ID;
  const keys = seedKeys(parsed.couponId);
  if (Number(await redis().command(['SISMEMBER', keys.issued, parsed.userId])) === 1) return reply(409, { error: 'ALREADY_ISSUED' });
  await redis().command(['ZADD', keys.queue, Date.now(), parsed.userId]);
  return reply(200, { result: 'REQUEST_RECEIVED', userId: parsed.userId });
});
