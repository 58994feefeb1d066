import type { AdmitClock, Admission, SeenCoupon } from '../redis/coupon-store.js';

/** Answers a container gives without asking Redis. */
export type LocalAnswer =
  | { readonly kind: 'NOT_OPEN'; readonly startsAt: number }
  | { readonly kind: 'ENDED' }
  | { readonly kind: 'SOLD_OUT' }
  | { readonly kind: 'COUPON_NOT_FOUND' };

export interface CouponCacheSettings {
  /**
   * How far from startsAt and endsAt the container decides the window by its own clock, before it has
   * measured its offset to Redis' clock (or once that measurement is a minute old). Once measured, the
   * margin is the measurement's uncertainty (half a round trip) plus CLOCK_SAFETY_MS.
   */
  readonly clockMarginMs: number;
  /** How long SOLD_OUT is answered from what was learned before Redis is asked again. */
  readonly soldOutRecheckMs: number;
}

/** Added to a measured clock offset's uncertainty. */
const CLOCK_SAFETY_MS = 10;
/** A clock offset measured longer ago than this is measured again before it is relied on. */
const CLOCK_MEASUREMENT_TTL_MS = 60_000;
/** A coupon the ledger does not know is remembered as unknown this long. */
const UNKNOWN_COUPON_TTL_MS = 5_000;
const MAX_COUPONS = 10_000;

interface KnownShard {
  /** Set once an answer showed no unit left in the shard; asked again after `recheckAt`. */
  soldOut?: { readonly seq: number; readonly recheckAt: number };
  /** Everyone holding an entry in the shard when it sold out, read at `seq`. */
  winners?: { readonly seq: number; readonly users: ReadonlySet<string> };
}

interface Known {
  facts?: Pick<SeenCoupon, 'startsAt' | 'endsAt' | 'total'>;
  /** Every shard had no unit left (with one shard: it had none); asked again after `recheckAt`. */
  exhausted?: { readonly recheckAt: number };
  shards: KnownShard[];
  unknownUntil?: number;
}

/**
 * What one container has learned about coupons, so that requests that cannot change anything are
 * answered without Redis, which bills every command:
 *
 * - facts that never change (startsAt, endsAt, total), from the first admission's reply;
 * - its clock's offset to Redis' clock, measured on replies that carry Redis' time, so that it can tell
 *   "long before the opening" (NOT_OPEN, here) from "near the opening" (Redis' clock decides, for
 *   fairness whatever the containers' clocks say);
 * - that a coupon sold out (every shard had no unit left), and who holds an entry on the user's shard
 *   then: anyone else is answered SOLD_OUT here; a winner asking again still goes to Redis, for their
 *   exact status. SOLD_OUT is answered from here for soldOutRecheckMs at most: a unit that becomes free
 *   again (reconcile, a ledger refusal) is sold once a request asks Redis again, so within that long.
 *
 * One instance per container (a Lambda execution environment answers one request at a time).
 */
export class CouponCache {
  private readonly coupons = new Map<string, Known>();
  private offset: { ms: number; uncertaintyMs: number; measuredAt: number } | undefined;

  constructor(
    private readonly settings: CouponCacheSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** An answer this container can give without Redis, or undefined when Redis must decide. */
  answer(couponId: string, userId: string, shard = 0): LocalAnswer | undefined {
    const known = this.coupons.get(couponId);
    if (!known) return undefined;
    const now = this.now();
    if (known.unknownUntil !== undefined) {
      if (known.unknownUntil > now) return { kind: 'COUPON_NOT_FOUND' };
      this.coupons.delete(couponId);
      return undefined;
    }
    const facts = known.facts;
    if (!facts) return undefined;
    const redisNow = this.redisNow(now);
    const margin = this.margin(now);
    if (redisNow < facts.startsAt - margin) return { kind: 'NOT_OPEN', startsAt: facts.startsAt };
    if (facts.endsAt > 0 && redisNow >= facts.endsAt + margin) return { kind: 'ENDED' };
    const { soldOut, winners } = known.shards[shard] ?? {};
    const exhausted = known.exhausted !== undefined && known.exhausted.recheckAt > now;
    if (exhausted && soldOut && winners?.seq === soldOut.seq && !winners.users.has(userId)) return { kind: 'SOLD_OUT' };
    return undefined;
  }

  /** Whose clock decides this admission (see admit.lua). */
  clockFor(couponId: string): AdmitClock {
    const facts = this.coupons.get(couponId)?.facts;
    if (!facts) return { kind: 'redis' };
    const now = this.now();
    const redisNow = this.redisNow(now);
    const margin = this.margin(now);
    if (redisNow < facts.startsAt) return { kind: 'redis-first', startsAt: facts.startsAt };
    if (redisNow < facts.startsAt + margin) return { kind: 'redis' };
    if (facts.endsAt > 0 && redisNow >= facts.endsAt - margin) return { kind: 'redis' };
    return { kind: 'container', now: Math.round(redisNow) };
  }

  /**
   * Learn from an admission in one of `shards` shards, sent at `sentAt` and answered at `answeredAt`
   * (this container's clock).
   */
  learn(couponId: string, admission: Admission, sentAt: number, answeredAt: number, shard = 0, shards = 1): void {
    if (admission.redisNow !== undefined) this.measureOffset(admission.redisNow, sentAt, answeredAt);
    const { seen } = admission;
    if (!seen) return;
    const known = this.known(couponId);
    known.facts = { startsAt: seen.startsAt, endsAt: seen.endsAt, total: seen.total };
    const knownShard = (known.shards[shard] ??= {});
    // Sold out is what remaining says, not the answer: a rejected winner asking again is answered
    // SOLD_OUT while units may be left.
    if (seen.remaining <= 0) {
      knownShard.soldOut = { seq: seen.seq, recheckAt: answeredAt + this.settings.soldOutRecheckMs };
      // With one shard, its last unit is the coupon's; with more, the others are asked first (rebalance.ts).
      if (shards === 1) known.exhausted = { recheckAt: answeredAt + this.settings.soldOutRecheckMs };
    } else {
      knownShard.soldOut = undefined;
      known.exhausted = undefined;
    }
  }

  /** Whether Redis has shown this container the coupon's state (so the coupon exists). */
  knows(couponId: string): boolean {
    return this.coupons.get(couponId)?.facts !== undefined;
  }

  /** Every shard was found without a unit (rebalance.ts): SOLD_OUT is answered here for a while. */
  markExhausted(couponId: string): void {
    this.known(couponId).exhausted = { recheckAt: this.now() + this.settings.soldOutRecheckMs };
  }

  /** Whether every shard was lately found without a unit. */
  isExhausted(couponId: string): boolean {
    const exhausted = this.coupons.get(couponId)?.exhausted;
    return exhausted !== undefined && exhausted.recheckAt > this.now();
  }

  /** True when the coupon sold out and who holds an entry on the shard is not known (or changed since read). */
  needsWinners(couponId: string, shard = 0): boolean {
    const known = this.coupons.get(couponId);
    const soldOut = known?.shards[shard]?.soldOut;
    return known?.exhausted !== undefined && soldOut !== undefined && known.shards[shard]?.winners?.seq !== soldOut.seq;
  }

  setWinners(couponId: string, seq: number, users: readonly string[], shard = 0): void {
    (this.known(couponId).shards[shard] ??= {}).winners = { seq, users: new Set(users) };
  }

  /** The ledger has no such coupon: answered COUPON_NOT_FOUND here for a few seconds. */
  markUnknown(couponId: string): void {
    this.known(couponId).unknownUntil = this.now() + UNKNOWN_COUPON_TTL_MS;
  }

  /** Forget what was learned about a coupon (it was just created, or restored). */
  forget(couponId: string): void {
    this.coupons.delete(couponId);
  }

  private known(couponId: string): Known {
    let known = this.coupons.get(couponId);
    if (!known) {
      if (this.coupons.size >= MAX_COUPONS) this.coupons.clear();
      known = { shards: [] };
      this.coupons.set(couponId, known);
    }
    return known;
  }

  /**
   * Redis' clock is read in the middle of a round trip: the offset is known to within half of it. The
   * tightest recent measurement is kept.
   */
  private measureOffset(redisNow: number, sentAt: number, answeredAt: number): void {
    const uncertaintyMs = Math.max(0, answeredAt - sentAt) / 2;
    const current = this.offset;
    const stale = !current || answeredAt - current.measuredAt > CLOCK_MEASUREMENT_TTL_MS;
    if (stale || uncertaintyMs <= current.uncertaintyMs) {
      this.offset = { ms: redisNow - (sentAt + answeredAt) / 2, uncertaintyMs, measuredAt: answeredAt };
    }
  }

  private redisNow(now: number): number {
    return now + (this.offset?.ms ?? 0);
  }

  private margin(now: number): number {
    const offset = this.offset;
    if (!offset || now - offset.measuredAt > CLOCK_MEASUREMENT_TTL_MS) return this.settings.clockMarginMs;
    return offset.uncertaintyMs + CLOCK_SAFETY_MS;
  }
}
