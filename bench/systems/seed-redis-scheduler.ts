/**
 * The seed design's single scheduler: every BENCH_SEED_INTERVAL_MS (default 1,000 ms, fixed delay) it
 * processes one batch (BENCH_SEED_BATCH, default 1,000) of every active coupon, sequentially. Runs
 * until killed.
 */
import { processBatch, redis, seedKeys } from './seed-redis.js';

const interval = Number(process.env.BENCH_SEED_INTERVAL_MS ?? 1_000);
const batch = Number(process.env.BENCH_SEED_BATCH ?? 1_000);
for (;;) {
  try {
    const coupons = await redis().smembers(seedKeys('').active);
    for (const couponId of coupons) await processBatch(couponId, batch);
  } catch (error) {
    console.error(`seed scheduler: ${String(error)}`);
  }
  await new Promise((resolve) => setTimeout(resolve, interval));
}
