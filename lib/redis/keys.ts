/**
 * Every Redis key of the system is built here.
 *
 * All keys of one coupon share the hash tag `{<couponId>}`, so a script that touches one coupon touches
 * one cluster slot. The exception is the coupon index (couponIndexKey): the scripts that load a coupon,
 * queue work for it or forget it also add it to or remove it from the index, in the same step, so that
 * the scheduled drain can never miss a coupon with work. That is fine on Upstash, whose databases are
 * not clustered; on a Redis Cluster the index would have to be split per slot. Scripts receive all their
 * keys in KEYS.
 */
export interface CouponKeys {
  /**
   * HASH total, remaining, seq (last ticket given), startsAt, endsAt (epoch ms; endsAt 0 = none), epoch
   * (the ledger's rebuild generation), and while the ledger fails: failures, backoffUntil (epoch ms).
   */
  readonly meta: string;
  /** HASH userId -> "<ticket>:<requestedAtMs>", one entry per winner. */
  readonly tickets: string;
  /** HASH userId -> "I:<issuedAtMs>" (persisted) or "R" (rejected by the ledger's cap). */
  readonly outcomes: string;
  /** ZSET userId scored by ticket: accepted, waiting for the ledger. */
  readonly queue: string;
  /** ZSET userId scored by claim lease deadline (epoch ms): claimed by a drain, not yet acknowledged. */
  readonly inflight: string;
  /** HASH userId -> times the ledger refused the item on its own. */
  readonly attempts: string;
  /** ZSET userId scored by ticket: gave up after too many attempts; an operator requeues them. */
  readonly dead: string;
  /** HASH userId -> last error seen while persisting it. */
  readonly errors: string;
  /** STRING, with a TTL: present while a drain works on this coupon, so admissions start no other. */
  readonly drainMark: string;
  /** STRING, with a TTL: held while the coupon's state is rebuilt from the ledger. */
  readonly rebuildLock: string;
}

export function couponKeys(prefix: string, couponId: string): CouponKeys {
  const base = `${prefix}:coupon:{${couponId}}`;
  return {
    meta: `${base}:meta`,
    tickets: `${base}:tickets`,
    outcomes: `${base}:outcomes`,
    queue: `${base}:queue`,
    inflight: `${base}:inflight`,
    attempts: `${base}:attempts`,
    dead: `${base}:dead`,
    errors: `${base}:errors`,
    drainMark: `${base}:drain`,
    rebuildLock: `${base}:rebuild`,
  };
}

/**
 * HASH, with a TTL: a coupon's request counts per user and per client IP in one one-second window.
 * Same hash tag as the coupon's other keys.
 */
export function rateWindowKey(prefix: string, couponId: string, epochSecond: number): string {
  return `${prefix}:coupon:{${couponId}}:rate:${epochSecond}`;
}

/** SET of coupon ids whose state lives in Redis: what the scheduled drain walks. Not hash-tagged. */
export function couponIndexKey(prefix: string): string {
  return `${prefix}:coupons`;
}
