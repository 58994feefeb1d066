/**
 * Baseline "seed-redis": the seed design, reproduced faithfully (shared/reference/seed-design.md).
 *
 * Request path: SISMEMBER issued-set user (already issued? -> 409), then ZADD queue <timestamp> user,
 * then 200 "request received": two round trips, no real-time result.
 * Scheduler (bench/systems/seed-redis-scheduler.ts, one process, a fixed interval): ZPOPMIN a batch;
 * per user SISMEMBER again, DECR stock (below zero: INCR back and mark finished), SADD issued-set, then
 * the ledger insert; on a ledger error SREM and INCR as compensation.
 * Same Redis (through the same Upstash REST gateway and client settings) and same DynamoDB Local.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { createDynamo } from '../../lib/ledger/dynamo.js';
import { createRedis } from '../../lib/redis/client.js';
import { BAD_ID, env, ids, reply, type Event, type Result } from './shared.js';

let redisClient: ReturnType<typeof createRedis> | undefined;
export const redis = () => (redisClient ??= createRedis({ url: env('UPSTASH_REDIS_REST_URL'), token: env('UPSTASH_REDIS_REST_TOKEN'), retries: 1 }));
let dynamo: ReturnType<typeof createDynamo> | undefined;
const ledger = () => (dynamo ??= createDynamo({ region: 'us-east-1', endpoint: process.env.DYNAMODB_ENDPOINT }));

export const seedKeys = (couponId: string) => ({
  queue: `seed:{${couponId}}:queue`,
  issued: `seed:{${couponId}}:issued`,
  stock: `seed:{${couponId}}:stock`,
  finished: `seed:{${couponId}}:finished`,
  active: 'seed:active-coupons',
});

export async function handler(event: Event): Promise<Result> {
  const parsed = ids(event);
  if (!parsed) return BAD_ID;
  const keys = seedKeys(parsed.couponId);
  if (await redis().sismember(keys.issued, parsed.userId)) return reply(409, { error: 'ALREADY_ISSUED' });
  await redis().zadd(keys.queue, { score: Date.now(), member: parsed.userId });
  return reply(200, { result: 'REQUEST_RECEIVED' });
}

/** One scheduler tick for one coupon: returns how many items it handled. */
export async function processBatch(couponId: string, batchSize: number): Promise<number> {
  const keys = seedKeys(couponId);
  const popped = (await redis().zpopmin(keys.queue, batchSize)) as (string | number)[];
  let handled = 0;
  for (let i = 0; i < popped.length; i += 2) {
    const userId = String(popped[i]);
    const requestedAt = Number(popped[i + 1]);
    handled += 1;
    if (await redis().sismember(keys.issued, userId)) continue; // duplicate: the seed writes a FAILED row
    const left = await redis().decr(keys.stock);
    if (left < 0) {
      await redis().incr(keys.stock);
      await redis().set(keys.finished, '1');
      continue;
    }
    await redis().sadd(keys.issued, userId);
    try {
      await ledger().send(
        new PutItemCommand({
          TableName: env('BENCH_SEED_TABLE'),
          Item: {
            PK: { S: `COUPON#${couponId}` },
            SK: { S: `ISSUE#${userId}` },
            userId: { S: userId },
            requestedAt: { S: new Date(requestedAt).toISOString() },
            issuedAt: { S: new Date().toISOString() },
          },
        }),
      );
    } catch {
      await redis().srem(keys.issued, userId);
      await redis().incr(keys.stock);
    }
  }
  return handled;
}
