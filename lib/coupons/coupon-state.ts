import { UnavailableError } from '../errors.js';
import { log } from '../log.js';
import type { Deps } from './deps.js';
import type { Restorer } from './restorer.js';

export type RestoreResult =
  | { readonly kind: 'RESTORED'; readonly winners: number }
  | { readonly kind: 'PRESENT' }
  | { readonly kind: 'NOT_FOUND' };

const REBUILD_LOCK_MS = 30_000;

/**
 * Load a coupon's Redis state from the ledger: after it is created, and whenever Redis turns out to have
 * lost it (restart without data, failover, flush). Winners persisted in the ledger are restored as ISSUED
 * and remaining = totalQuantity - issuedCount, so the ledger's cap still holds.
 *
 * Accepted requests that Redis acknowledged but no drain had claimed when Redis lost its data are not in
 * the ledger and cannot be restored (the README states this window). Those a drain had claimed are given
 * back to the rebuilt state by that drain, once the ledger refuses its batch as stale (see below).
 *
 * Steps, under the rebuild lock:
 * 1. The ledger's epoch moves on. From then on the ledger refuses every batch claimed from the lost state
 *    (Ledger.persistBatch), so no batch of it can land during or after the scan: the scan sees every
 *    issuance from before the loss, and the counter read after it is exact. (Without this, a batch written
 *    after its users' page was scanned was neither restored nor counted right, and its tickets were given
 *    again to newcomers.)
 * 2. The ledger's issuances are scanned and restored as winners (tickets kept).
 * 3. The counter is read; no batch of the new epoch can exist before step 4, so it is final.
 * 4. Meta is written last (with the new epoch), which opens the coupon to admissions and claims.
 *
 * Race: many admissions can find the state missing at once. One takes the rebuild lock and restores;
 * the others wait for it (up to REBUILD_WAIT_MS, then UnavailableError: 503 with Retry-After) instead of
 * stampeding the ledger.
 */
export async function restoreCouponState(
  deps: Deps,
  couponId: string,
  options: { waitMs?: number; lockMs?: number } = {},
): Promise<RestoreResult> {
  const { store, ledger } = deps;
  const coupon = await ledger.getCoupon(couponId, true);
  if (!coupon) return { kind: 'NOT_FOUND' };
  if (await store.hasState(couponId)) return { kind: 'PRESENT' };
  const lock = await store.tryLockRebuild(couponId, options.lockMs ?? REBUILD_LOCK_MS);
  if (!lock) return waitForRestore(deps, couponId, options.waitMs ?? deps.admission.rebuildWaitMs);
  try {
    // Checked again under the lock: the caller that held it before may have loaded the state meanwhile.
    if (await store.hasState(couponId)) return { kind: 'PRESENT' };
    const epoch = await ledger.nextEpoch(couponId);
    let winners = 0;
    let highestTicket = 0;
    for await (const page of ledger.issuancesOf(couponId)) {
      await store.restoreWinners(couponId, page);
      for (const w of page) highestTicket = Math.max(highestTicket, w.ticket);
      winners += page.length;
    }
    // The counter, not the item count, is what the ledger's guard enforces, so it decides what is left.
    const issuedCount = (await ledger.getCoupon(couponId, true))?.issuedCount ?? coupon.issuedCount;
    const loaded = await store.loadCoupon(couponId, {
      total: coupon.totalQuantity,
      remaining: Math.max(0, coupon.totalQuantity - issuedCount),
      // New tickets follow every restored one; tickets of the lost state that no drain wrote are never
      // written (step 1), so none of them can meet a new one.
      seq: Math.max(highestTicket, issuedCount),
      startsAt: coupon.startsAt,
      endsAt: coupon.endsAt ?? 0,
      epoch,
    });
    if (!loaded) return { kind: 'PRESENT' };
    if (winners > 0 || issuedCount > 0) {
      log.warn('coupon state restored from the ledger', { couponId, winners, issuedCount, epoch });
    }
    return { kind: 'RESTORED', winners };
  } finally {
    await store.unlockRebuild(couponId, lock);
  }
}

/** The restorer of handlers that have the ledger at hand: they rebuild in-process. */
export function inProcessRestorer(deps: Omit<Deps, 'restorer'>): Restorer {
  const restorer: Restorer = { restore: (couponId) => restoreCouponState({ ...deps, restorer }, couponId) };
  return restorer;
}

/**
 * Another caller holds the rebuild lock: wait a little for its result, polling with one HEXISTS at
 * growing intervals, then answer 503 (Retry-After). During a drop hundreds of containers may find the
 * state missing at once; holding each for long (and polling Redis for each) would cost concurrency and
 * billed commands while the rebuild runs.
 */
async function waitForRestore(deps: Deps, couponId: string, waitMs: number): Promise<RestoreResult> {
  const deadline = Date.now() + waitMs;
  for (let pause = 50; Date.now() + pause <= deadline; pause *= 2) {
    await new Promise((resolve) => setTimeout(resolve, pause * (0.75 + Math.random() / 2)));
    if (await deps.store.hasState(couponId)) return { kind: 'PRESENT' };
  }
  throw new UnavailableError(`coupon ${couponId} is being restored from the ledger`, 1);
}
