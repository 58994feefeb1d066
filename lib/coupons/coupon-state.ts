import { UnavailableError } from '../errors.js';
import { log } from '../log.js';
import type { Deps } from './deps.js';

export type RestoreResult =
  | { readonly kind: 'RESTORED'; readonly winners: number }
  | { readonly kind: 'PRESENT' }
  | { readonly kind: 'NOT_FOUND' };

const REBUILD_LOCK_MS = 30_000;
const REBUILD_WAIT_MS = 3_000;

/**
 * Load a coupon's Redis state from the ledger: after it is created, and whenever Redis turns out to have
 * lost it (restart without data, failover, flush). Winners persisted in the ledger are restored as ISSUED
 * and remaining = totalQuantity - issuedCount, so the ledger's cap still holds.
 *
 * Accepted requests that Redis acknowledged but the drain had not yet persisted when Redis lost its data
 * are not in the ledger and cannot be restored (the README states this window).
 *
 * Race: many admissions can find the state missing at once. One takes the rebuild lock and restores;
 * the others wait for it (briefly, then UnavailableError: 503 with Retry-After) instead of stampeding
 * the ledger. Meta is written last, so no admission is decided on a half-restored coupon.
 */
export async function restoreCouponState(deps: Deps, couponId: string): Promise<RestoreResult> {
  const { store, ledger } = deps;
  const coupon = await ledger.getCoupon(couponId, true);
  if (!coupon) return { kind: 'NOT_FOUND' };
  if (await store.readCounters(couponId)) return { kind: 'PRESENT' };
  const lock = await store.tryLockRebuild(couponId, REBUILD_LOCK_MS);
  if (!lock) return waitForRestore(deps, couponId);
  try {
    let winners = 0;
    let highestTicket = 0;
    for await (const page of ledger.issuancesOf(couponId)) {
      await store.restoreWinners(couponId, page);
      for (const w of page) highestTicket = Math.max(highestTicket, w.ticket);
      winners += page.length;
    }
    // The counter, not the item count, is what the ledger's guard enforces, so it decides what is left.
    // It is read again after the scan: a drain that claimed before Redis lost its state may have
    // committed a batch meanwhile, and the first read would leave those units counted as free (Redis
    // would then admit users the ledger's cap must reject). A batch committed after this read is not
    // counted either; the window is now the few milliseconds until loadCoupon, and reconcile reports
    // what falls in it as REMAINING_DRIFT.
    const issuedCount = (await ledger.getCoupon(couponId, true))?.issuedCount ?? coupon.issuedCount;
    const loaded = await store.loadCoupon(couponId, {
      total: coupon.totalQuantity,
      remaining: Math.max(0, coupon.totalQuantity - issuedCount),
      seq: Math.max(highestTicket, issuedCount),
      startsAt: coupon.startsAt,
      endsAt: coupon.endsAt ?? 0,
    });
    if (!loaded) return { kind: 'PRESENT' };
    if (winners > 0 || issuedCount > 0) {
      log.warn('coupon state restored from the ledger', { couponId, winners, issuedCount });
    }
    return { kind: 'RESTORED', winners };
  } finally {
    await store.unlockRebuild(couponId, lock);
  }
}

/** Another caller holds the rebuild lock: wait for its result rather than answering an error at once. */
async function waitForRestore(deps: Deps, couponId: string): Promise<RestoreResult> {
  const deadline = Date.now() + REBUILD_WAIT_MS;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25 + Math.random() * 25));
    if (await deps.store.readCounters(couponId)) return { kind: 'PRESENT' };
  }
  throw new UnavailableError(`coupon ${couponId} is being restored from the ledger`, 1);
}
