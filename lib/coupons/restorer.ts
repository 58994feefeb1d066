import { UnavailableError } from '../errors.js';
import type { CouponReader } from '../ledger/coupon-reader.js';
import type { CouponStore } from '../redis/coupon-store.js';
import type { RestoreResult } from './coupon-state.js';

/** Brings a coupon's Redis state back from the ledger when Redis turns out to have lost it. */
export interface Restorer {
  /** RESTORED or PRESENT once the state is loaded, NOT_FOUND when the ledger has no such coupon. */
  restore(couponId: string): Promise<RestoreResult>;
}

/** The event the restore function receives. */
export interface RestoreRequest {
  readonly couponId: string;
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
    private readonly store: CouponStore,
    /** Starts the restore function for a coupon without waiting for it. */
    private readonly startRestore: (request: RestoreRequest) => Promise<void>,
    private readonly waitMs: number,
  ) {}

  async restore(couponId: string): Promise<RestoreResult> {
    if (!(await this.coupons.getCoupon(couponId))) return { kind: 'NOT_FOUND' };
    if (await this.store.hasState(couponId)) return { kind: 'PRESENT' };
    if (await this.store.markRestoreRequested(couponId, REQUEST_MARK_MS)) await this.startRestore({ couponId });
    const deadline = Date.now() + this.waitMs;
    for (let pause = 50; Date.now() + pause <= deadline; pause *= 2) {
      await new Promise((resolve) => setTimeout(resolve, pause * (0.75 + Math.random() / 2)));
      if (await this.store.hasState(couponId)) return { kind: 'PRESENT' };
    }
    throw new UnavailableError(`coupon ${couponId} is being restored from the ledger`, 1);
  }
}
