/**
 * Every Redis key of the system is built here.
 *
 * All keys of one coupon share the hash tag `{<couponId>}`, so a script that touches one coupon touches
 * one cluster slot. The exception is the coupon index (couponIndexKey): the scripts that load a coupon,
 * queue work for it or forget it also add it to or remove it from the index, in the same step, so that
 * the scheduled drain can never miss a coupon with work. That is fine on Upstash, whose databases are
 * not clustered; on a Redis Cluster the index would have to be split per slot. Scripts receive all their
 * keys in KEYS (Upstash's key-based locking requires it).
 */
export interface CouponKeys {
  /**
   * HASH, the coupon's state and its winners, so that one HMGET reads everything an admission decides on:
   *   total, startsAt, endsAt (epoch ms; 0 = none)   the coupon, as loaded from the ledger
   *   remaining, seq                                 units left, last ticket given
   *   epoch                                          the ledger's rebuild generation of this state
   *   shard, shards                                  this database's shard index, and how many there are
   *   drain                                          until when a drain is marked running (epoch ms)
   *   failures, backoffUntil                         while the ledger fails (see release.lua)
   *   u:<userId>                                     a winner's entry (codec.ts)
   */
  readonly state: string;
  /** ZSET userId scored by ticket: accepted, waiting for the ledger. */
  readonly queue: string;
  /** ZSET userId scored by claim lease deadline (epoch ms): claimed by a drain, not yet acknowledged. */
  readonly inflight: string;
  /** HASH userId -> times the ledger refused the item on its own. */
  readonly attempts: string;
  /** ZSET userId scored by ticket: refused too often; an operator requeues them. */
  readonly dead: string;
  /** HASH userId -> last error seen while persisting it. */
  readonly errors: string;
  /** STRING, with a TTL: held while the coupon's state is rebuilt from the ledger. */
  readonly rebuildLock: string;
  /** STRING, with a TTL: a rebuild was asked of the restore function (one asks for every container). */
  readonly restoreRequested: string;
  /** HASH transferId -> units given to another shard and not yet settled ("out:...") or taken ("in:..."). */
  readonly transfers: string;
  /** STRING, with a TTL: one container is refilling this shard from the others (see rebalance.ts). */
  readonly refilling: string;
  /**
   * HASH, for the live operator page only (nothing decides on it): c:<containerId> -> that container's
   * running decision totals (DecisionTally), the drains' running totals and lag:<shard> (record-drain.lua).
   */
  readonly live: string;
}

export function couponKeys(prefix: string, couponId: string): CouponKeys {
  const base = `${prefix}:coupon:{${couponId}}`;
  return {
    state: `${base}:state`,
    queue: `${base}:queue`,
    inflight: `${base}:inflight`,
    attempts: `${base}:attempts`,
    dead: `${base}:dead`,
    errors: `${base}:errors`,
    rebuildLock: `${base}:rebuild`,
    restoreRequested: `${base}:restore-requested`,
    transfers: `${base}:transfers`,
    refilling: `${base}:refilling`,
    live: `${base}:live`,
  };
}

/** SET of coupon ids whose state lives in Redis: what the scheduled drain walks. Not hash-tagged. */
export function couponIndexKey(prefix: string): string {
  return `${prefix}:coupons`;
}
