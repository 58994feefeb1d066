import { UnavailableError } from '../errors.js';
import type { CouponReader } from '../ledger/coupon-reader.js';
import type { Shards } from '../redis/shards.js';
import type { RestoreResult } from './coupon-state.js';

/** Brings a coupon's Redis state in one shard back from the ledger when that database turns out to have lost it. */
export interface Restorer {
  /** RESTORED or PRESENT once the state is loaded, NOT_FOUND when the ledger has no such coupon. */
  restore(couponId: string, shard: number): Promise<RestoreResult>;
}

/** The event the restore function receives. */
export interface RestoreRequest {
  readonly couponId: string;
  /** Absent: the first shard. */
  readonly shard?: number;
}

/** How long one request for a rebuild keeps other containers from asking again. */
const REQUEST_MARK_MS = 10_000;

/**
 * The admission path's restorer: it reads whether the coupon exists (one ledger read), asks the restore
 * function to rebuild the state (one asynchronous invoke, once per coupon for every container, through a
 * mark in Redis) and waits a little for it, polling one HEXISTS at growing intervals; still missing, the
 * request is answered 503 with Retry-After. The rebuild itself scans the whole ledger and may take longer
 * than an API request may (hundreds of thousands of winners): it runs in its own function, with its own
 * timeout, not in the request that found the state missing.
 */
export class RemoteRestorer implements Restorer {
  constructor(
    private readonly coupons: CouponReader,
    private readonly shards: Shards,
    /** Starts the restore function for a coupon without waiting for it. */
    private readonly startRestore: (request: RestoreRequest) => Promise<void>,
    private readonly waitMs: number,
  ) {}

  async restore(couponId: string, shard: number): Promise<RestoreResult> {
    if (!(await this.coupons.getCoupon(couponId))) return { kind: 'NOT_FOUND' };
    const store = this.shards.at(shard);
    if (await store.hasState(couponId)) return { kind: 'PRESENT' };
    if (await store.markRestoreRequested(couponId, REQUEST_MARK_MS)) await this.startRestore(shard === 0 ? { couponId } : { couponId, shard });
    const deadline = Date.now() + this.waitMs;
    for (let pause = 50; Date.now() + pause <= deadline; pause *= 2) {
      await new Promise((resolve) => setTimeout(resolve, pause * (0.75 + Math.random() / 2)));
      if (await store.hasState(couponId)) return { kind: 'PRESENT' };
    }
    throw new UnavailableError(`coupon ${couponId} is being restored from the ledger`, 1);
  }
}
