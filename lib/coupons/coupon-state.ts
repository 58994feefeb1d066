import { UnavailableError } from '../errors.js';
import { log } from '../log.js';
import { shardOf } from '../redis/shards.js';
import type { Deps } from './deps.js';
import type { Restorer } from './restorer.js';

export type RestoreResult = { readonly kind: 'RESTORED'; readonly winners: number } | { readonly kind: 'PRESENT' } | { readonly kind: 'NOT_FOUND' };

export interface RestoreOptions {
  /** The shard (Upstash database) whose state is missing; default the first. */
  readonly shard?: number;
  /** How long to wait for another caller's rebuild before answering 503 (default REBUILD_WAIT_MS). */
  readonly waitMs?: number;
  /** How long the rebuild lock lives if its holder dies. */
  readonly lockMs?: number;
}

const REBUILD_LOCK_MS = 30_000;

/**
 * Load a coupon's Redis state in one shard from the ledger: after it is created, and whenever Redis
 * turns out to have lost it (restart without data, failover, flush). Winners persisted in the ledger are
 * restored as ISSUED, with their tickets, and the units left are what the ledger's counter allows, so the
 * ledger's cap still holds.
 *
 * Accepted requests that Redis acknowledged but no drain had claimed when Redis lost its data are not in
 * the ledger and cannot be restored (the docs state this window). Those a drain had claimed are given
 * back to the rebuilt state by that drain, once the ledger refuses its batch as stale (see below).
 *
 * Steps, under the shard's rebuild lock:
 * 1. The shard's epoch in the ledger moves on. From then on the ledger refuses every batch claimed from
 *    the lost state (Ledger.persistBatch), so no batch of it can land during or after the scan: the scan
 *    sees every issuance from before the loss, and the counter read after it is exact. (Without this, a
 *    batch written after its users' page was scanned was neither restored nor counted right, and its
 *    tickets were given again to newcomers.)
 * 2. The ledger's issuances of the shard's users are scanned and restored as winners (tickets kept).
 * 3. The counter is read; with one shard no batch of the new epoch can exist before step 4, so it is final.
 * 4. The state is written last (with the new epoch), which opens the shard to admissions and claims.
 *
 * With several shards, the units left are shared: this shard gets what the ledger's counter leaves once
 * the other shards' units (left, in transit, held by winners not yet in the ledger) are counted, split
 * evenly with any other shard that lost its state too (see unitsLeft).
 *
 * Race: many admissions can find the state missing at once. One takes the rebuild lock and restores;
 * the others wait for it (up to REBUILD_WAIT_MS, then UnavailableError: 503 with Retry-After) instead of
 * stampeding the ledger.
 */
export async function restoreCouponState(deps: Deps, couponId: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const { ledger } = deps;
  const shard = options.shard ?? 0;
  const store = deps.shards.at(shard);
  const coupon = await ledger.getCoupon(couponId, true);
  if (!coupon) return { kind: 'NOT_FOUND' };
  if (await store.hasState(couponId)) return { kind: 'PRESENT' };
  const lock = await store.tryLockRebuild(couponId, options.lockMs ?? REBUILD_LOCK_MS);
  if (!lock) return waitForRestore(deps, couponId, shard, options.waitMs ?? deps.admission.rebuildWaitMs);
  try {
    // Checked again under the lock: the caller that held it before may have loaded the state meanwhile.
    if (await store.hasState(couponId)) return { kind: 'PRESENT' };
    const epoch = await ledger.nextEpoch(couponId, shard);
    const shards = coupon.shards;
    // With several shards, what the others hold is read before the scan (see unitsLeft).
    const others = shards > 1 ? await otherShards(deps, couponId, shard, shards) : undefined;
    const inLedger = new Set<string>();
    let winners = 0;
    let highestTicket = 0;
    for await (const page of ledger.issuancesOf(couponId)) {
      if (others) for (const w of page) inLedger.add(w.userId);
      const mine = shards === 1 ? page : page.filter((w) => shardOf(w.userId, shards) === shard);
      await store.restoreWinners(couponId, mine);
      for (const w of mine) highestTicket = Math.max(highestTicket, w.ticket);
      winners += mine.length;
    }
    // The counter, not the item count, is what the ledger's guard enforces, so it decides what is left.
    const issuedCount = (await ledger.getCoupon(couponId, true))?.issuedCount ?? coupon.issuedCount;
    const remaining = unitsLeft(coupon.totalQuantity, issuedCount, others, inLedger);
    const loaded = await store.loadCoupon(couponId, {
      total: coupon.totalQuantity,
      remaining,
      // New tickets follow every restored one; tickets of the lost state that no drain wrote are never
      // written (step 1), so none of them can meet a new one.
      seq: shards === 1 ? Math.max(highestTicket, issuedCount) : Math.ceil(highestTicket / shards),
      startsAt: coupon.startsAt,
      endsAt: coupon.endsAt ?? 0,
      epoch,
      shard,
      shards,
    });
    if (!loaded) return { kind: 'PRESENT' };
    if (winners > 0 || issuedCount > 0) {
      log.warn('coupon state restored from the ledger', { couponId, shard, winners, issuedCount, remaining, epoch });
    }
    return { kind: 'RESTORED', winners };
  } finally {
    await store.unlockRebuild(couponId, lock);
  }
}

/** What the other shards of a coupon hold, read before the rebuild scans the ledger. */
interface OtherShards {
  /** Units left or in transit in the other shards. */
  readonly units: number;
  /** Their winners not decided yet (no outcome): each holds a unit unless the ledger already has them. */
  readonly pending: ReadonlySet<string>;
  /** Other shards without state, which share the free units with this one. */
  readonly missing: number;
}

async function otherShards(deps: Deps, couponId: string, shard: number, shards: number): Promise<OtherShards> {
  let units = 0;
  let missing = 0;
  const pending = new Set<string>();
  for (let other = 0; other < shards; other++) {
    if (other === shard) continue;
    const snapshot = await deps.shards.at(other).snapshot(couponId);
    if (!snapshot) {
      missing += 1;
      continue;
    }
    units += snapshot.remaining + snapshot.inTransit;
    for (const [userId, entry] of snapshot.winners) if (!entry.outcome) pending.add(userId);
  }
  return { units, pending, missing };
}

/**
 * The units a rebuilt shard starts with. One shard: all the ledger's counter leaves. Several: what the
 * counter leaves less what the other shards hold (units left or in transit, and winners not in the
 * ledger yet: a winner persisted but not yet acknowledged is counted once, by the counter), shared with
 * the other shards that have no state either. The others keep admitting meanwhile: what they hold is
 * read before the ledger, so a winner they persist in between is counted twice, leaving a unit unsold
 * (found by reconcile's REMAINING_DRIFT) rather than sold twice.
 */
function unitsLeft(total: number, issuedCount: number, others: OtherShards | undefined, inLedger: ReadonlySet<string>): number {
  if (!others) return Math.max(0, total - issuedCount);
  let unpersisted = 0;
  for (const userId of others.pending) if (!inLedger.has(userId)) unpersisted += 1;
  const free = Math.max(0, total - issuedCount - others.units - unpersisted);
  return Math.floor(free / (others.missing + 1)) + (free % (others.missing + 1));
}

/** The restorer of handlers that have the ledger at hand: they rebuild in-process. */
export function inProcessRestorer(deps: Omit<Deps, 'restorer'>): Restorer {
  const restorer: Restorer = { restore: (couponId, shard) => restoreCouponState({ ...deps, restorer }, couponId, { shard }) };
  return restorer;
}

/**
 * Another caller holds the rebuild lock: wait a little for its result, polling with one HEXISTS at
 * growing intervals, then answer 503 (Retry-After). During a drop hundreds of containers may find the
 * state missing at once; holding each for long (and polling Redis for each) would cost concurrency and
 * billed commands while the rebuild runs.
 */
async function waitForRestore(deps: Deps, couponId: string, shard: number, waitMs: number): Promise<RestoreResult> {
  const deadline = Date.now() + waitMs;
  for (let pause = 50; Date.now() + pause <= deadline; pause *= 2) {
    await new Promise((resolve) => setTimeout(resolve, pause * (0.75 + Math.random() / 2)));
    if (await deps.shards.at(shard).hasState(couponId)) return { kind: 'PRESENT' };
  }
  throw new UnavailableError(`coupon ${couponId} is being restored from the ledger`, 1);
}

/** Restore every shard of a coupon that lost its state (a coupon's META without state in some database). */
export async function restoreAllShards(deps: Deps, couponId: string, options: Omit<RestoreOptions, 'shard'> = {}): Promise<RestoreResult> {
  let result: RestoreResult = { kind: 'PRESENT' };
  for (let shard = 0; shard < deps.shards.count; shard++) {
    const restored = await restoreCouponState(deps, couponId, { ...options, shard });
    if (restored.kind === 'NOT_FOUND') return restored;
    if (restored.kind === 'RESTORED') result = restored;
  }
  return result;
}
