/**
 * For tests that set a coupon's Redis state by hand (drift, over-admission, decided entries), through
 * the same keys and encodings as the scripts (lib/redis/keys.ts, lib/redis/codec.ts).
 */
import { decodeEntry, encodeEntry, userField, type ItemOutcome } from '../../lib/redis/codec.js';
import type { testDeps } from './deps.js';

type TestDeps = Pick<ReturnType<typeof testDeps>, 'redis' | 'store'>;

/** Set a coupon's remaining units. */
export async function setRemaining(deps: TestDeps, couponId: string, remaining: number): Promise<void> {
  await deps.redis.hset(deps.store.keys(couponId).state, { remaining });
}

/** Record an outcome on a winner's entry, as ack.lua would, without touching the queue. */
export async function setOutcome(deps: TestDeps, couponId: string, userId: string, outcome: ItemOutcome | undefined): Promise<void> {
  const state = deps.store.keys(couponId).state;
  const raw = await deps.redis.hget<string>(state, userField(userId));
  if (raw === null) throw new Error(`${userId} has no entry on ${couponId}`);
  await deps.redis.hset(state, { [userField(userId)]: encodeEntry({ ...decodeEntry(String(raw)), outcome }) });
}
