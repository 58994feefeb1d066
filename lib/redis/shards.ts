import type { CouponStore } from './coupon-store.js';

/**
 * The Upstash databases of a deployment (one, or several to go past one database's commands per
 * second), each holding a share of every coupon. A user always lands on the same shard, chosen by a
 * stable hash of the user id, so that their repeat, status and rate limit live in one place. The number
 * of shards is fixed for a deployment's coupons (it is recorded in each coupon's ledger item and state).
 */
export class Shards {
  constructor(readonly stores: readonly CouponStore[]) {
    if (stores.length === 0) throw new Error('at least one shard is needed');
  }

  get count(): number {
    return this.stores.length;
  }

  at(index: number): CouponStore {
    const store = this.stores[index];
    if (!store) throw new Error(`there is no shard ${index} (of ${this.count})`);
    return store;
  }

  /** The user's shard: FNV-1a (32 bits) of "shard:" and the user id, modulo the number of shards. */
  indexOf(userId: string): number {
    if (this.count === 1) return 0;
    return shardOf(userId, this.count);
  }

  forUser(userId: string): { readonly index: number; readonly store: CouponStore } {
    const index = this.indexOf(userId);
    return { index, store: this.at(index) };
  }
}

/** The shard of a user among `count` (see Shards.indexOf). */
export function shardOf(userId: string, count: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(`shard:${userId}`, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** How a coupon's units are split when it is created: as evenly as they go, the remainder to the first shards. */
export function initialShare(total: number, shards: number, index: number): number {
  return Math.floor(total / shards) + (index < total % shards ? 1 : 0);
}
