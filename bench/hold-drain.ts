/**
 * Keeping drains off a coupon while the bench queues its admissions (the drain's own measurement, the
 * drop's persisting probe), straight in Redis.
 */
import { Redis as IORedis } from 'ioredis';
import { LambdaInvoker } from '../lib/aws/lambda.js';
import { LambdaDrainTrigger } from '../lib/drain/trigger.js';
import { couponIndexKey, couponKeys } from '../lib/redis/keys.js';
import type { Stack } from '../localstack/stack.js';
import { runLoad } from './load.js';

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

/**
 * Queue `amount` winners of a coupon with every drain held off (one admission per new user, over
 * `connections`). Returns the function that lets drains back in and starts one through the Lambda
 * endpoint, as an admission would: the caller times the drain from there.
 */
export async function queueWithDrainsHeld(
  stack: Stack,
  options: { redisPort: number; lambdaPort: number | string; couponId: string; amount: number; connections: number; label: string },
): Promise<() => Promise<void>> {
  const { couponId, amount, label } = options;
  const redis = new IORedis({ port: options.redisPort });
  redis.on('error', () => undefined);
  const release = await holdDrain(redis, stack.env.REDIS_KEY_PREFIX!, couponId, 300_000);
  let n = 0;
  const load = await runLoad({
    baseUrl: stack.apiUrl,
    path: (u) => `/api/v2/users/${u}/coupons/${couponId}/issue`,
    nextUser: () => `${label[0]}${n++}`,
    connections: options.connections,
    amount,
  });
  if (load.usersWith200.size !== amount) {
    redis.disconnect();
    throw new Error(`${label}: ${load.usersWith200.size} of ${amount} admissions accepted`);
  }
  return async () => {
    await release();
    redis.disconnect();
    await new LambdaDrainTrigger(`fcfs-coupons-${stack.env.STAGE}-drain`, new LambdaInvoker('us-east-1', `http://127.0.0.1:${options.lambdaPort}`)).start(
      couponId,
    );
  };
}
