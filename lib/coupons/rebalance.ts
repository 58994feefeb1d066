import { randomUUID } from 'node:crypto';
import { log } from '../log.js';
import type { CouponStore } from '../redis/coupon-store.js';
import type { Deps } from './deps.js';
import { count } from '../metrics.js';

/**
 * REFILLED: units moved into the shard; EXHAUSTED: no other shard had any; BUSY: another caller is
 * refilling this shard right now.
 */
export type RefillOutcome = 'REFILLED' | 'EXHAUSTED' | 'BUSY';

/** One caller refills a shard at a time; the mark outlives a refill that dies half-way. */
const REFILL_MARK_MS = 2_000;

/**
 * A transfer older than this whose giver has not settled it was interrupted (the giver died between
 * giving and taking): reconcile and the scheduled drain complete it.
 */
export const TRANSFER_COMPLETE_AFTER_MS = 10_000;

/**
 * Refill a shard that ran out from the shard with the most units left: half of that shard's units move
 * (so that both keep selling, and a coupon rebalances in a few moves), through give-units.lua on the
 * giver (units leave its remaining and are recorded in transit under a transfer id), take-units.lua on
 * the recipient (idempotent by the id) and settle-transfer.lua on the giver (the record goes). A unit is
 * in transit for the few milliseconds between the first two steps, in no shard's remaining: briefly
 * unavailable, never doubled. A refill interrupted there leaves its record on the giver, and
 * completeTransfers finishes it later.
 *
 * Called by an admission that found its shard without a unit while the coupon as a whole may have some:
 * the request waits for the refill (one read per other shard and a few writes) and is decided again.
 */
export async function refillShard(deps: Pick<Deps, 'shards'>, couponId: string, to: number, until = Number.POSITIVE_INFINITY): Promise<RefillOutcome> {
  const recipient = deps.shards.at(to);
  if (Date.now() >= until || !(await recipient.markRefilling(couponId, REFILL_MARK_MS))) return 'BUSY';
  try {
    const others = deps.shards.stores.map((store, index) => ({ store, index })).filter(({ index }) => index !== to);
    const left = await Promise.all(others.map(async (shard) => ({ ...shard, remaining: (await shard.store.readRemaining(couponId)) ?? 0 })));
    const givers = left.filter((s) => s.remaining > 0).sort((a, b) => b.remaining - a.remaining);
    return await tryGivers(recipient, couponId, to, givers, until);
  } finally {
    await recipient.unmarkRefilling(couponId);
  }
}

/**
 * Redis calls a refill makes after its caller's time is up, at most, one after the other: a transfer
 * begun just before it is finished (give, take, settle), then the mark is removed; a refill begun just
 * before it makes three (mark, reads, unmark), since it then begins no transfer (lib/budgets.ts).
 */
export const REFILL_CALLS_AFTER_DEADLINE = 4;

/**
 * Ask the givers, richest first, until one gives. A giver found empty when asked (others took its units
 * meanwhile) is passed over. Past `until` no transfer is begun: the caller asks again (BUSY) or gives up.
 */
async function tryGivers(
  recipient: CouponStore,
  couponId: string,
  to: number,
  givers: readonly { readonly store: CouponStore; readonly index: number; readonly remaining: number }[],
  until: number,
): Promise<RefillOutcome> {
  for (const giver of givers) {
    if (Date.now() >= until) return 'BUSY';
    const transferId = randomUUID();
    const given = await giver.store.giveUnits(couponId, transferId, Math.ceil(giver.remaining / 2), to);
    if (!given) continue;
    const taken = await recipient.takeUnits(couponId, transferId, given, giver.index);
    if (taken === undefined) {
      // The recipient lost its state meanwhile: the units stay in transit until it is restored and
      // completeTransfers delivers them (its rebuild counted them as the giver's).
      log.warn('a shard lost its state during a refill; units left in transit', { couponId, to, from: giver.index, units: given });
      return 'EXHAUSTED';
    }
    await giver.store.settleTransfer(couponId, transferId);
    count('ShardRefills');
    return 'REFILLED';
  }
  return 'EXHAUSTED';
}

/**
 * Finish the transfers of a coupon whose giver died before settling them: the recipient takes the units
 * (a no-op if it already had) and the giver's record goes. A recipient without state is left for later:
 * its rebuild counted those units as the giver's. Returns the units delivered now.
 */
export async function completeTransfers(deps: Pick<Deps, 'shards'>, couponId: string, olderThanMs = TRANSFER_COMPLETE_AFTER_MS): Promise<number> {
  let delivered = 0;
  for (const [from, giver] of deps.shards.stores.entries()) {
    const live = await giver.readCounters(couponId);
    if (!live || live.inTransit === 0) continue;
    for (const transfer of await giver.transfersInTransit(couponId)) {
      if (live.now - transfer.at < olderThanMs) continue;
      const taken = await deps.shards.at(transfer.toShard).takeUnits(couponId, transfer.transferId, transfer.units, from);
      if (taken === undefined) continue;
      await giver.settleTransfer(couponId, transfer.transferId);
      delivered += taken;
      log.warn('completed an interrupted transfer of units between shards', { couponId, from, to: transfer.toShard, units: transfer.units, taken });
    }
  }
  return delivered;
}
