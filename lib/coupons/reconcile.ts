import type { IssuanceRecord } from '../ledger/model.js';
import { log } from '../log.js';
import type { CouponSnapshot, CouponStore, ItemOutcome, UserState } from '../redis/coupon-store.js';
import { restoreCouponState } from './coupon-state.js';
import type { Deps } from './deps.js';
import { completeTransfers, TRANSFER_COMPLETE_AFTER_MS } from './rebalance.js';

/**
 * The kinds of drift between Redis and the ledger, and what repairing each does:
 * - REDIS_STATE_MISSING: Redis (a shard) has nothing for the coupon -> rebuilt from the ledger.
 * - WINNER_NOT_TRACKED: a winner neither queued, in flight, dead-lettered nor decided, and not in the
 *   ledger (its claim was lost) -> queued again.
 * - PERSISTED_NOT_MARKED: a winner in the ledger that Redis still shows as pending (or rejected) ->
 *   marked ISSUED with the ledger's issuedAt.
 * - PERSISTED_MISSING_FROM_REDIS: a ledger issuance whose user has no ticket in Redis -> restored.
 * - MARKED_NOT_PERSISTED: Redis says ISSUED, the ledger has no item -> queued again to be persisted.
 * - REMAINING_DRIFT: units left + winners not rejected (+ units in transit between shards) !=
 *   totalQuantity -> units left corrected.
 * - COUNTER_DRIFT: the ledger's issuedCount differs from its number of issuance items -> corrected.
 * - TRANSFER_INTERRUPTED: units a shard gave another that the other never took (the giver died half-way)
 *   -> delivered.
 */
export type DifferenceKind =
  | 'REDIS_STATE_MISSING'
  | 'WINNER_NOT_TRACKED'
  | 'PERSISTED_NOT_MARKED'
  | 'PERSISTED_MISSING_FROM_REDIS'
  | 'MARKED_NOT_PERSISTED'
  | 'REMAINING_DRIFT'
  | 'COUNTER_DRIFT'
  | 'TRANSFER_INTERRUPTED';

export interface Difference {
  readonly kind: DifferenceKind;
  readonly userId?: string;
  /** The shard (Upstash database) it was found in, with several. */
  readonly shard?: number;
  readonly detail: string;
}

export interface ReconcileReport {
  readonly couponId: string;
  readonly dryRun: boolean;
  readonly ledger: { readonly totalQuantity: number; readonly issuedCount: number; readonly issuances: number };
  /** Summed over the shards. */
  readonly redis: {
    readonly remaining: number;
    readonly winners: number;
    readonly queued: number;
    readonly inflight: number;
    readonly deadLettered: number;
    readonly issued: number;
    readonly rejected: number;
  };
  /** Count of differences per kind. */
  readonly summary: Partial<Record<DifferenceKind, number>>;
  /** The differences found (the first MAX_LISTED of them). */
  readonly differences: Difference[];
  readonly repaired: boolean;
  /** Set when a repair found the state changed under it: run reconcile again. */
  readonly retry: boolean;
}

const MAX_LISTED = 1_000;

/** A live drain acknowledges a batch within moments of writing it; one that has not after this is gone. */
const LIVE_DRAIN_GRACE_MS = 1_000;

/** One shard's findings, before and after the second look. */
interface ShardFindings {
  readonly shard: number;
  readonly store: CouponStore;
  readonly snapshot: CouponSnapshot | undefined;
  readonly toMark: Map<string, ItemOutcome>;
  readonly toRequeue: string[];
  readonly toUnmark: string[];
  readonly toRestore: IssuanceRecord[];
  /** Winners holding a unit once repaired: every ticket, plus restored ones, less rejected ones. */
  holding: number;
  issuedInRedis: number;
  rejected: number;
}

/**
 * Compare a coupon's Redis state (winners, units left, queue, in-flight, dead letters, in every shard)
 * with the ledger, report every difference and, unless dryRun, repair it. Each repair is an atomic
 * script that re-checks its condition, so reconcile is safe while admissions and drains run; a counter
 * that moved meanwhile is reported as `retry`. Undefined when the ledger has no such coupon.
 *
 * Redis is read first, the ledger after it, and during a drop drains commit in between: a winner written
 * then shows up as in the ledger but pending in Redis, or not in Redis at all, and the ledger's counter
 * moves under the scan. So every difference found is looked at again after the scan, and reported only
 * if it still holds. A winner in the ledger that a live drain holds (in flight, lease not expired) is
 * being acknowledged by that drain: it is looked at a third time, LIVE_DRAIN_GRACE_MS later, and is drift
 * only if still unacknowledged then (the drain died after writing). The counter is compared with the
 * scan only when the scan ran between two equal readings of it.
 *
 * With several shards, each shard's winners are checked against the ledger's issuances of its users;
 * units left are checked for the coupon as a whole, since units move between shards.
 */
export async function reconcileCoupon(deps: Deps, couponId: string, options: { dryRun: boolean }): Promise<ReconcileReport | undefined> {
  const { ledger } = deps;
  const coupon = await ledger.getCoupon(couponId, true);
  if (!coupon) return undefined;
  const differences: Difference[] = [];
  const sharded = deps.shards.count > 1;
  const found = (difference: Difference, shard: number) => differences.push(sharded ? { ...difference, shard } : difference);
  let retry = false;

  if (sharded) await findInterruptedTransfers(deps, couponId, options.dryRun, found);

  const shards: ShardFindings[] = [];
  for (const [shard, store] of deps.shards.stores.entries()) {
    let snapshot = await store.snapshot(couponId);
    if (!snapshot) {
      found({ kind: 'REDIS_STATE_MISSING', detail: sharded ? `shard ${shard} has no state for this coupon` : 'Redis has no state for this coupon' }, shard);
      if (!options.dryRun) {
        await restoreCouponState(deps, couponId, { shard });
        snapshot = await store.snapshot(couponId);
      }
    }
    shards.push({ shard, store, snapshot, toMark: new Map(), toRequeue: [], toUnmark: [], toRestore: [], holding: 0, issuedInRedis: 0, rejected: 0 });
  }

  const persisted = new Map<string, IssuanceRecord>();
  for await (const page of ledger.issuancesOf(couponId)) for (const item of page) persisted.set(item.userId, item);
  const counterAfterScan = (await ledger.getCoupon(couponId, true))?.issuedCount ?? coupon.issuedCount;

  for (const findings of shards) {
    const mine = sharded ? new Map([...persisted].filter(([userId]) => deps.shards.indexOf(userId) === findings.shard)) : persisted;
    await lookTwice(deps, couponId, findings, mine, (difference) => found(difference, findings.shard));
  }

  // The counter is compared with the scan only if no batch committed while it ran.
  const counterSettled = coupon.issuedCount === counterAfterScan;
  const counterDrift = counterSettled && persisted.size !== counterAfterScan;
  if (counterDrift) {
    differences.push({ kind: 'COUNTER_DRIFT', detail: `issuedCount is ${counterAfterScan} but the ledger holds ${persisted.size} issuances` });
  } else if (!counterSettled && (persisted.size < coupon.issuedCount || persisted.size > counterAfterScan)) {
    // The scan cannot be matched with a counter that moved, and it fits no value the counter held while
    // it ran: likely drift, to be confirmed by a run when drains are quiet.
    retry = true;
  }

  // Units left, for the coupon as a whole: every unit is left in a shard, in transit, or held by a winner.
  const present = shards.filter((f) => f.snapshot);
  let remainingCorrection: { shard: ShardFindings; expected: number } | undefined;
  if (present.length === shards.length && present.length > 0) {
    if (present.some((f) => !f.snapshot!.remainingSettled)) {
      // Admissions moved remaining while the winners were read: a difference would be theirs, not
      // drift. Nothing is reported or set; run reconcile again once the drop is over.
      retry = true;
    } else {
      const left = present.reduce((sum, f) => sum + f.snapshot!.remaining + f.snapshot!.inTransit, 0);
      const holding = present.reduce((sum, f) => sum + f.holding, 0);
      const expected = Math.max(0, coupon.totalQuantity - holding);
      if (left !== expected) {
        // Corrected on one shard (rebalancing spreads units again): the one with the most units left
        // when some must go, the first otherwise.
        const target = expected < left ? present.reduce((a, b) => (b.snapshot!.remaining > a.snapshot!.remaining ? b : a)) : present[0]!;
        const corrected = Math.max(0, target.snapshot!.remaining + expected - left);
        differences.push({ kind: 'REMAINING_DRIFT', detail: `remaining is ${left}, expected ${expected} (${coupon.totalQuantity} less ${holding} winners)` });
        remainingCorrection = { shard: target, expected: corrected };
      }
    }
  }

  if (!options.dryRun) {
    for (const f of shards) {
      await f.store.restoreWinners(couponId, f.toRestore);
      await f.store.acknowledge(couponId, f.toMark);
      const requeued = (await f.store.requeue(couponId, f.toRequeue)) + (await f.store.unmarkUnpersisted(couponId, f.toUnmark));
      if (requeued > 0) await deps.trigger.start(couponId, f.shard).catch(() => undefined);
    }
    if (counterDrift) {
      retry ||= !(await ledger.correctIssuedCount(couponId, counterAfterScan, persisted.size));
    }
    if (remainingCorrection) {
      const { shard, expected } = remainingCorrection;
      retry ||= !(await shard.store.setRemaining(couponId, shard.snapshot!.remaining, expected));
    }
    if (differences.length > 0) log.warn('reconcile repaired drift', { couponId, differences: differences.length });
  }

  const summary: Partial<Record<DifferenceKind, number>> = {};
  for (const d of differences) summary[d.kind] = (summary[d.kind] ?? 0) + 1;
  const sum = (pick: (f: ShardFindings) => number) => shards.reduce((total, f) => total + pick(f), 0);
  return {
    couponId,
    dryRun: options.dryRun,
    ledger: { totalQuantity: coupon.totalQuantity, issuedCount: counterAfterScan, issuances: persisted.size },
    redis: {
      remaining: sum((f) => f.snapshot?.remaining ?? 0),
      winners: sum((f) => f.snapshot?.winners.size ?? 0),
      queued: sum((f) => f.snapshot?.queued.size ?? 0),
      inflight: sum((f) => f.snapshot?.inflight.size ?? 0),
      deadLettered: sum((f) => f.snapshot?.dead.size ?? 0),
      issued: sum((f) => f.issuedInRedis),
      rejected: sum((f) => f.rejected),
    },
    summary,
    differences: differences.slice(0, MAX_LISTED),
    repaired: !options.dryRun && differences.length > 0 && !retry,
    retry,
  };
}

/** One shard's candidates from its snapshot and the ledger's issuances of its users, and the second look. */
async function lookTwice(
  deps: Deps,
  couponId: string,
  f: ShardFindings,
  persisted: ReadonlyMap<string, IssuanceRecord>,
  found: (difference: Difference) => void,
): Promise<void> {
  const snapshot = f.snapshot;
  // First look: candidates, from the snapshot and the scan.
  const notMarked: string[] = [];
  const missing: IssuanceRecord[] = [];
  const markedOnly: string[] = [];
  const untracked: string[] = [];
  if (snapshot) {
    for (const [userId, { outcome }] of snapshot.winners) {
      if (outcome?.kind === 'REJECTED') f.rejected += 1;
      else if (outcome) f.issuedInRedis += 1;
      if (persisted.has(userId)) {
        if (outcome?.kind !== 'ISSUED') notMarked.push(userId);
      } else if (outcome?.kind === 'ISSUED') {
        markedOnly.push(userId);
      } else if (!outcome && !snapshot.queued.has(userId) && !snapshot.inflight.has(userId) && !snapshot.dead.has(userId)) {
        untracked.push(userId);
      }
    }
    for (const record of persisted.values()) if (!snapshot.winners.has(record.userId)) missing.push(record);
  }

  // Second look, after the scan: what still holds is drift.
  const now = await f.store.readUsers(couponId, [...notMarked, ...missing.map((r) => r.userId), ...markedOnly, ...untracked]);
  const beingAcknowledged = notMarked.filter((userId) => now.get(userId)!.claimedByLiveDrain);
  if (beingAcknowledged.length > 0) {
    await new Promise((resolve) => setTimeout(resolve, LIVE_DRAIN_GRACE_MS));
    for (const [userId, state] of await f.store.readUsers(couponId, beingAcknowledged)) now.set(userId, state);
  }
  let markedFromRejected = 0;
  for (const userId of notMarked) {
    const entry = now.get(userId)!.entry;
    if (!entry || entry.outcome?.kind === 'ISSUED') continue;
    found({ kind: 'PERSISTED_NOT_MARKED', userId, detail: `ticket ${entry.ticket} is in the ledger but ${entry.outcome ? 'REJECTED' : 'pending'} in Redis` });
    f.toMark.set(userId, { kind: 'ISSUED', issuedAt: persisted.get(userId)!.issuedAt });
    if (snapshot?.winners.get(userId)?.outcome?.kind === 'REJECTED') markedFromRejected += 1;
  }
  for (const record of missing) {
    if (now.get(record.userId)!.entry) continue;
    found({ kind: 'PERSISTED_MISSING_FROM_REDIS', userId: record.userId, detail: `ticket ${record.ticket} is in the ledger but Redis has no ticket` });
    f.toRestore.push(record);
  }
  for (const userId of markedOnly) {
    const entry = now.get(userId)!.entry;
    if (entry?.outcome?.kind !== 'ISSUED' || (await deps.ledger.getIssuance(couponId, userId))) continue;
    found({ kind: 'MARKED_NOT_PERSISTED', userId, detail: `ticket ${entry.ticket} is ISSUED in Redis but not in the ledger` });
    f.toUnmark.push(userId);
  }
  for (const userId of untracked) {
    const state: UserState = now.get(userId)!;
    if (!state.entry || state.entry.outcome || state.queued || state.inflight || state.dead) continue;
    found({ kind: 'WINNER_NOT_TRACKED', userId, detail: `ticket ${state.entry.ticket} is neither queued, in flight, dead-lettered nor persisted` });
    f.toRequeue.push(userId);
  }
  f.holding = (snapshot?.winners.size ?? 0) + f.toRestore.length - f.rejected + markedFromRejected;
}

/** Units in transit longer than a transfer takes: reported, and delivered unless dry-running. */
async function findInterruptedTransfers(deps: Deps, couponId: string, dryRun: boolean, found: (difference: Difference, shard: number) => void): Promise<void> {
  for (const [shard, store] of deps.shards.stores.entries()) {
    const live = await store.readCounters(couponId);
    if (!live || live.inTransit === 0) continue;
    for (const transfer of await store.transfersInTransit(couponId)) {
      if (live.now - transfer.at < TRANSFER_COMPLETE_AFTER_MS) continue;
      found({ kind: 'TRANSFER_INTERRUPTED', detail: `${transfer.units} unit(s) given by shard ${shard} to shard ${transfer.toShard} never taken` }, shard);
    }
  }
  if (!dryRun) await completeTransfers(deps, couponId);
}
