/**
 * The seed design's scheduler (shared/reference/seed-design.md): one long-running process that every
 * BENCH_SEED_INTERVAL_MS (default 1,000 ms, fixed delay) processes one batch (BENCH_SEED_BATCH, default
 * 1,000) of every active coupon, sequentially: ZPOPMIN the batch; per user SISMEMBER again, DECR stock
 * (below zero: INCR back and mark finished), SADD issued-set, then the ledger insert; on a ledger error
 * SREM and INCR as compensation. Runs until killed.
 *
 * Like the seed's Spring scheduler it holds a TCP connection to Redis (BENCH_REDIS_URL), not REST calls:
 * its per-item round trips are its design, and making each one an HTTP request would handicap it.
 * Same DynamoDB Local as every system.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Redis } from 'ioredis';
import { createDynamo } from '../../lib/ledger/dynamo.js';
import { env } from './shared.js';
import { seedKeys } from './seed-redis.js';

const redis = new Redis(env('BENCH_REDIS_URL'), { maxRetriesPerRequest: 1 });
redis.on('error', (error) => console.error(`seed scheduler: redis: ${String(error)}`));
const ledger = createDynamo({ region: 'us-east-1', endpoint: process.env.DYNAMODB_ENDPOINT });
const table = env('BENCH_SEED_TABLE');
const interval = Number(process.env.BENCH_SEED_INTERVAL_MS ?? 1_000);
const batch = Number(process.env.BENCH_SEED_BATCH ?? 1_000);

/** One scheduler tick for one coupon. */
async function processBatch(couponId: string, batchSize: number): Promise<void> {
  const keys = seedKeys(couponId);
  const popped = await redis.zpopmin(keys.queue, batchSize);
  for (let i = 0; i < popped.length; i += 2) {
    const userId = popped[i]!;
    const requestedAt = Number(popped[i + 1]);
    if (await redis.sismember(keys.issued, userId)) continue; // duplicate: the seed writes a FAILED row
    const left = await redis.decr(keys.stock);
    if (left < 0) {
      await redis.incr(keys.stock);
      await redis.set(keys.finished, '1');
      continue;
    }
    await redis.sadd(keys.issued, userId);
    try {
      await ledger.send(
        new PutItemCommand({
          TableName: table,
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
      await redis.srem(keys.issued, userId);
      await redis.incr(keys.stock);
    }
  }
}

for (;;) {
  try {
    const coupons = await redis.smembers(seedKeys('').active);
    for (const couponId of coupons) await processBatch(couponId, batch);
  } catch (error) {
    console.error(`seed scheduler: ${String(error)}`);
  }
  await new Promise((resolve) => setTimeout(resolve, interval));
}
