/**
 * Keeping drains off a coupon while the bench queues its admissions (the drain's own measurement, the
 * drop's persisting probe), straight in Redis.
 */
import type { Redis as IORedis } from 'ioredis';
import { couponIndexKey, couponKeys } from '../lib/redis/keys.js';

/**
 * Keep every drain off a coupon: its drain mark is set (admissions start none) and it leaves the
 * scheduled drain's index. The returned function lets drains back in.
 */
export async function holdDrain(redis: IORedis, prefix: string, couponId: string, forMs: number): Promise<() => Promise<void>> {
  // The drain mark is the state's "drain" field: until when a drain counts as running (epoch ms).
  const { state } = couponKeys(prefix, couponId);
  await redis.hset(state, 'drain', Date.now() + forMs);
  await redis.srem(couponIndexKey(prefix), couponId);
  return async () => {
    await redis.hdel(state, 'drain');
    await redis.sadd(couponIndexKey(prefix), couponId);
  };
}
