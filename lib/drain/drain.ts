import { restoreCouponState } from '../coupons/coupon-state.js';
import { completeTransfers } from '../coupons/rebalance.js';
import type { Deps } from '../coupons/deps.js';
import { isTransientAwsFault, LedgerThrottledError } from '../ledger/faults.js';
import { MAX_BATCH, type LedgerDecision } from '../ledger/ledger.js';
import { log } from '../log.js';
import { count, milliseconds } from '../metrics.js';
import { encodePersistLag } from '../redis/codec.js';
import type { Claim, ClaimedItem, DrainBatchStats, ReleaseReason } from '../redis/coupon-store.js';

export interface DrainReport {
  readonly couponId: string;
  batches: number;
  /** Newly written to the ledger by this run. */
  issued: number;
  /** Claimed items found already persisted (a redelivery), acknowledged without counting again. */
  redelivered: number;
  /** Refused by the ledger's cap. */
  rejected: number;
  /** Given back after a failed write, for another attempt. */
  released: number;
  deadLettered: number;
  /** Expired claims of earlier drains put back in the queue. */
  requeued: number;
  /** Claimed before the coupon's state was rebuilt, refused by the ledger, given back to the rebuilt state. */
  stale: number;
  /** Batches the ledger throttled; each made the drain slow down. */
  throttled: number;
  /** EMPTY: nothing left; TIME: out of time; BACKOFF: the ledger keeps failing, retried after the back-off. */
  stoppedBy: 'EMPTY' | 'TIME' | 'BACKOFF';
}

/**
 * What became of one claim: every item decided, some refused (they used an attempt), a transient
 * failure, or throttled by the ledger (a partition over its capacity).
 */
export type ClaimOutcome = 'DECIDED' | 'REFUSED' | 'TRANSIENT' | 'THROTTLED';

/**
 * Throttling backs the coupon off from this (doubling while it lasts), shorter than other faults' back-off:
 * a throttled partition refills within a second.
 */
const THROTTLED_BACKOFF_MS = 100;

/** A drain waits for an expiring lease of another (likely dead) drain at most this long. */
const MAX_LEASE_WAIT_MS = 5_000;

/** How long until the earliest in-flight lease expires, when that is soon enough to wait for. */
function leaseWait(claim: Claim, claimLeaseMs: number): number | undefined {
  if (claim.queuedAfter > 0 || claim.nextLeaseExpiry === undefined) return undefined;
  const wait = Math.max(0, claim.nextLeaseExpiry - redisNow(claim, claimLeaseMs)) + 20;
  return wait <= MAX_LEASE_WAIT_MS ? wait : undefined;
}

/** Redis' clock when the claim was made (its lease deadline less the lease). */
const redisNow = (claim: Claim, claimLeaseMs: number) => claim.leaseDeadline - claimLeaseMs;

export function emptyReport(couponId: string): DrainReport {
  return {
    couponId,
    batches: 0,
    issued: 0,
    redelivered: 0,
    rejected: 0,
    released: 0,
    deadLettered: 0,
    requeued: 0,
    stale: 0,
    throttled: 0,
    stoppedBy: 'EMPTY',
  };
}

/**
 * Persist a coupon's queue into the ledger until it is empty or the invocation is about to time out.
 *
 * Each round claims a batch (claim.lua: queue -> in-flight with a lease), writes it in one ledger
 * transaction and only then acknowledges it (ack.lua). The next batch is claimed while the current one
 * is written. A crash anywhere leaves the batch in flight; its lease expires and a later claim puts it
 * back in the queue, so nothing accepted is lost, and the ledger's conditional puts make the redelivery
 * harmless. Several drains may run on one coupon at once: claims never overlap, and the ledger guards
 * both the per-user item and the coupon's counter.
 *
 * While the ledger fails for reasons that may pass, the coupon backs off (release.lua): every drain of it
 * waits, doubling the wait with each failure, instead of retrying at once; no item uses an attempt, so
 * an outage of any length dead-letters nobody, and the first write that succeeds ends the back-off.
 * Throttling paces the drain: a throttled batch backs the coupon off briefly and halves the batch size
 * (and with it the write units one transaction puts on a partition); each written batch grows it back.
 *
 * @param timeLeftMs how long the invocation still has (Lambda's getRemainingTimeInMillis)
 * @param shard the shard (Upstash database) whose queue to drain
 */
export async function drainCoupon(deps: Deps, couponId: string, timeLeftMs: () => number, shard = 0): Promise<DrainReport> {
  const report = emptyReport(couponId);
  const store = deps.shards.at(shard);
  // A triggered drain re-indexes its coupon, so the schedule keeps visiting it even if indexing failed
  // when the coupon was loaded.
  await store.indexCoupon(couponId);
  const largestBatch = Math.min(deps.drain.batchSize, MAX_BATCH);
  const tuning = { ...deps.drain, batchSize: largestBatch };
  const hasTime = (ms = 0) => timeLeftMs() - ms > deps.drain.stopBeforeTimeoutMs;

  let droppedDecided = false;
  let next: Promise<Claim> | undefined = hasTime() ? store.claim(couponId, tuning) : undefined;
  if (!next) report.stoppedBy = 'TIME';
  while (next) {
    const claim = await next;
    next = undefined;
    report.requeued += claim.requeued;
    // No state in Redis: nothing can be claimed until it is restored (by the next request, or the schedule).
    if (!claim.hasState) break;

    if (claim.backoffUntil !== undefined) {
      // The ledger failed lately: wait for the back-off if the invocation has time, else leave the
      // coupon to whoever comes after it (the drain mark outlives the back-off, so admissions start none).
      const wait = Math.max(0, claim.backoffUntil - redisNow(claim, tuning.claimLeaseMs)) + 10;
      if (!hasTime(wait)) {
        report.stoppedBy = 'BACKOFF';
        break;
      }
      await sleep(wait);
      next = store.claim(couponId, tuning);
      continue;
    }
    if (claim.items.length === 0 && claim.queuedAfter > 0) {
      // The claim popped only entries decided meanwhile (late duplicates), which it drops, and more are
      // queued behind them: claim again now. Each claim pops a batch, so this ends. Stopping here would
      // leave the queue to the drain mark the claim just refreshed.
      droppedDecided = true;
      if (hasTime()) next = store.claim(couponId, tuning);
      else report.stoppedBy = 'TIME';
      continue;
    }
    if (claim.items.length === 0) {
      // Nothing queued. Items in flight whose lease is about to expire belong to a drain that probably
      // died: wait for the lease and take them back now rather than at the next scheduled run.
      const wait = leaseWait(claim, tuning.claimLeaseMs);
      if (wait !== undefined && hasTime(wait)) {
        await sleep(wait);
        next = store.claim(couponId, tuning);
      }
      continue;
    }
    report.batches += 1;

    const writing = persistClaim(deps, couponId, claim, report);
    // Claim the next batch while this one is written; the lease covers the wait. If the write fails
    // for good (Redis gone while acknowledging), that claim is left to its lease: mark it handled so its
    // own failure cannot crash the invocation.
    if (claim.queuedAfter > 0 && hasTime()) {
      next = store.claim(couponId, tuning);
      next.catch(() => undefined);
    }
    const outcome = await writing;
    if (outcome === 'THROTTLED') tuning.batchSize = Math.max(1, Math.ceil(tuning.batchSize / 2));
    else if (outcome === 'DECIDED') tuning.batchSize = Math.min(largestBatch, tuning.batchSize + Math.ceil(largestBatch / 8));

    if (outcome === 'TRANSIENT' || outcome === 'THROTTLED') {
      // The coupon now backs off: the batch claimed ahead goes back untried, and the next claim reports
      // how long to wait.
      const prefetched = next && (await next.catch(() => undefined));
      if (prefetched) await releaseUnwritten(deps, couponId, prefetched, prefetched.items, { kind: 'UNTRIED' });
      next = hasTime() ? store.claim(couponId, tuning) : undefined;
      if (!next) report.stoppedBy = 'TIME';
      continue;
    }
    if (next) continue;
    if (claim.queuedAfter > 0) {
      report.stoppedBy = 'TIME';
      break;
    }
    if (outcome === 'DECIDED') await markFinished(deps, couponId);
    // The queue looked empty. Linger first: the admissions of the next moments then share one
    // transaction instead of costing one each (and, once the drain has gone, one drain invocation
    // each). The drain mark set by the claim outlives the wait, so they start no other drain. Then one
    // more claim deletes the mark atomically if the queue is still empty, or picks up what arrived.
    if (tuning.lingerMs > 0 && hasTime(tuning.lingerMs)) await sleep(tuning.lingerMs);
    if (hasTime()) next = store.claim(couponId, tuning);
    else report.stoppedBy = 'TIME';
  }
  // Written or decided something (or dropped entries already decided): a run whose writes all failed
  // (the ledger down) leaves the rest to the back-off and the schedule rather than chaining invocations.
  const progressed = report.issued + report.redelivered + report.rejected > 0 || droppedDecided;
  if (report.stoppedBy === 'TIME' && progressed) await handOver(deps, couponId, shard);
  return report;
}

/**
 * A run out of time leaves the coupon's drain mark set (its last claim refreshed it), so admissions
 * start no drain until the mark expires: up to DRAIN_TRIGGER_LEASE_MS of waiting during a long drop.
 * It starts its successor instead, which claims at once (or deletes the mark if nothing is left). Only
 * a run that persisted something hands over, so neither a misconfigured time budget nor a ledger that
 * refuses every write can chain invocations.
 */
async function handOver(deps: Deps, couponId: string, shard: number): Promise<void> {
  try {
    await deps.trigger.start(couponId, shard);
  } catch (error) {
    log.warn('could not start the next drain; the admissions or the schedule will, once the drain mark expires', { couponId, shard, error });
  }
}

/**
 * Write one claim to the ledger and acknowledge it; give back whatever could not be written: what a
 * drain does with each batch it claims.
 */
export async function persistClaim(deps: Deps, couponId: string, claim: Claim, report: DrainReport = emptyReport(couponId)): Promise<ClaimOutcome> {
  let written: Isolated;
  try {
    written = await persistIsolating(deps, couponId, claim, claim.items);
  } catch (error) {
    // A transient fault that outlived the SDK's retries, or throttling: nothing of the batch was written.
    // It goes back without using an attempt, and the coupon backs off.
    const throttled = error instanceof LedgerThrottledError;
    await Promise.all([
      releaseUnwritten(deps, couponId, claim, claim.items, transient(deps, error, throttled ? THROTTLED_BACKOFF_MS : deps.drain.backoffBaseMs)),
      throttled && recordBatch(deps, couponId, claim.shard, { ...NOTHING, throttled: 1 }),
    ]);
    if (throttled) report.throttled += 1;
    else {
      count('LedgerFailures', claim.items.length);
      log.warn('ledger write failed; batch released, the coupon backs off', { couponId, items: claim.items.length, error });
    }
    report.released += claim.items.length;
    return throttled ? 'THROTTLED' : 'TRANSIENT';
  }
  let rejected = 0;
  for (const decision of written.decisions.values()) if (decision.kind === 'REJECTED') rejected += 1;
  const redelivered = written.decisions.size - rejected - written.newlyIssued;
  // The live page's totals are written alongside the acknowledgement, not after it.
  await Promise.all([
    deps.shards.at(claim.shard).acknowledge(couponId, written.decisions),
    recordBatch(deps, couponId, claim.shard, {
      ...NOTHING,
      issued: written.newlyIssued,
      redelivered,
      rejected,
      lag: persistLag(claim.items, written.decisions),
    }),
  ]);
  report.issued += written.newlyIssued;
  report.rejected += rejected;
  report.redelivered += redelivered;
  if (written.capExceeded) {
    log.error('the ledger cap refused items Redis had admitted: Redis lost or drifted from the ledger', { couponId, rejected });
  }
  if (written.stale.length > 0) {
    await giveBackStale(deps, couponId, claim, written.stale, written.ledgerEpoch);
    report.stale += written.stale.length;
    await recordBatch(deps, couponId, claim.shard, { ...NOTHING, stale: written.stale.length });
  }
  const failedByCause = new Map<string, { items: ClaimedItem[]; transient: boolean }>();
  for (const { item, error, transient: isTransient } of written.failed) {
    const group = failedByCause.get(error) ?? { items: [], transient: isTransient };
    group.items.push(item);
    failedByCause.set(error, group);
  }
  for (const [cause, group] of failedByCause) {
    const reason: ReleaseReason = group.transient
      ? { kind: 'TRANSIENT', error: cause, backoffBaseMs: deps.drain.backoffBaseMs, backoffMaxMs: deps.drain.backoffMaxMs }
      : { kind: 'REFUSED', error: cause, maxAttempts: deps.drain.maxAttempts };
    if (group.transient) count('LedgerFailures', group.items.length);
    const released = await releaseUnwritten(deps, couponId, claim, group.items, reason);
    log.warn('the ledger did not write these items; released for another attempt', { couponId, userIds: group.items.map((i) => i.userId), cause });
    report.released += group.items.length;
    report.deadLettered += released.deadLettered;
    if (released.deadLettered > 0) await recordBatch(deps, couponId, claim.shard, { ...NOTHING, deadLettered: released.deadLettered });
  }
  if (written.failed.some((f) => f.transient)) return 'TRANSIENT';
  return written.failed.length > 0 ? 'REFUSED' : 'DECIDED';
}

const NOTHING: DrainBatchStats = { issued: 0, redelivered: 0, rejected: 0, deadLettered: 0, throttled: 0, stale: 0, lag: '' };

/**
 * Count what a batch did: as metrics (one EMF line per invocation) and in the live page's running totals
 * in Redis. Never fails the drain: both only observe it.
 */
async function recordBatch(deps: Deps, couponId: string, shard: number, stats: DrainBatchStats): Promise<void> {
  if (stats.issued) count('DrainIssued', stats.issued);
  if (stats.redelivered) count('DrainRedelivered', stats.redelivered);
  if (stats.rejected) count('DrainRejected', stats.rejected);
  if (stats.deadLettered) count('DrainDeadLettered', stats.deadLettered);
  if (stats.stale) count('DrainStale', stats.stale);
  if (stats.throttled) count('LedgerThrottles', stats.throttled);
  try {
    await deps.shards.at(shard).recordDrain(couponId, shard, stats);
  } catch (error) {
    log.debug('could not record a batch for the live page', { couponId, shard, error });
  }
}

/**
 * Each written item's lag from its acceptance to its write in the ledger, as a metric (its p99 is
 * alarmed on); for the live page, the batch's p50, p99 and max with the time: "<p50>,<p99>,<max>|<atMs>".
 */
function persistLag(items: readonly ClaimedItem[], decisions: ReadonlyMap<string, LedgerDecision>): string {
  const lags: number[] = [];
  for (const item of items) {
    const decision = decisions.get(item.userId);
    if (decision?.kind === 'ISSUED') lags.push(Math.max(0, decision.issuedAt - item.requestedAt));
  }
  if (lags.length === 0) return '';
  for (const lag of lags) milliseconds('PersistLag', lag);
  lags.sort((a, b) => a - b);
  const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!;
  return encodePersistLag({ p50Ms: at(0.5), p99Ms: at(0.99), maxMs: lags[lags.length - 1]!, at: Date.now() });
}

interface Isolated {
  decisions: Map<string, LedgerDecision>;
  newlyIssued: number;
  capExceeded: boolean;
  /** Claimed before a rebuild: refused by the ledger's epoch guard, nothing written. */
  stale: ClaimedItem[];
  ledgerEpoch: number | undefined;
  /** Items left unwritten: refused by the ledger, or hit by a transient fault while a batch was split. */
  failed: { item: ClaimedItem; error: string; transient: boolean }[];
}

/**
 * Persist a batch; when the ledger refuses it for a reason that retrying will not fix (a poison item,
 * e.g. a ValidationException), split it in halves until the refused items are alone, so one bad item
 * cannot hold back, or drag into dead letters, the good ones claimed with it.
 *
 * A transient fault on the whole batch throws: nothing of it was written. Once split, a half may have
 * committed before the other half meets a transient fault, so that half's items are returned as failed
 * instead: the committed half is acknowledged and only what was not written goes back to the queue.
 */
async function persistIsolating(
  deps: Deps,
  couponId: string,
  claim: Claim,
  items: readonly ClaimedItem[],
  split: { transientFault?: string } = {},
): Promise<Isolated> {
  // A transient fault met elsewhere in this split: the ledger is struggling, so what is left of the
  // split is not tried (each try could cost the SDK's whole retry cycle) and goes back to the queue.
  if (split.transientFault !== undefined) return unwritten(items, split.transientFault, true);
  try {
    const result = await deps.ledger.persistBatch(couponId, claim.total, items, claim.epoch, claim.shard);
    const staleUsers = new Set(result.stale.map((item) => item.userId));
    return { ...result, stale: items.filter((item) => staleUsers.has(item.userId)), failed: [] };
  } catch (error) {
    if (isTransientLedgerFault(error)) throw error;
    if (items.length === 1) return unwritten(items, describe(error), false);
    const middle = Math.ceil(items.length / 2);
    const half = (part: readonly ClaimedItem[]) =>
      persistIsolating(deps, couponId, claim, part, split).catch((halfError: unknown) => {
        if (!isTransientLedgerFault(halfError)) throw halfError;
        split.transientFault = describe(halfError);
        return unwritten(part, split.transientFault, true);
      });
    const first = await half(items.slice(0, middle));
    const second = await half(items.slice(middle));
    return {
      decisions: new Map([...first.decisions, ...second.decisions]),
      newlyIssued: first.newlyIssued + second.newlyIssued,
      capExceeded: first.capExceeded || second.capExceeded,
      stale: [...first.stale, ...second.stale],
      ledgerEpoch: first.ledgerEpoch ?? second.ledgerEpoch,
      failed: [...first.failed, ...second.failed],
    };
  }
}

const unwritten = (items: readonly ClaimedItem[], error: string, transient: boolean): Isolated => ({
  decisions: new Map(),
  newlyIssued: 0,
  capExceeded: false,
  stale: [],
  ledgerEpoch: undefined,
  failed: items.map((item) => ({ item, error, transient })),
});

/**
 * Faults that may pass: raised by the AWS SDK or its network layer (throttling, a 5xx, no connection,
 * a timeout, a transaction that kept conflicting), or a throttled batch. Anything else, our own errors
 * included, is treated as the ledger refusing the items: the batch is split and each refused item uses
 * an attempt.
 */
const isTransientLedgerFault = isTransientAwsFault;

function transient(deps: Deps, error: unknown, backoffBaseMs: number): ReleaseReason {
  return { kind: 'TRANSIENT', error: describe(error), backoffBaseMs, backoffMaxMs: deps.drain.backoffMaxMs };
}

async function releaseUnwritten(
  deps: Deps,
  couponId: string,
  claim: Claim,
  items: readonly ClaimedItem[],
  reason: ReleaseReason,
): Promise<{ deadLettered: number }> {
  const userIds = items.map((item) => item.userId);
  const released = await deps.shards.at(claim.shard).release(couponId, claim, userIds, reason);
  if (released.deadLettered > 0 && reason.kind === 'REFUSED') {
    log.error('items dead-lettered after too many attempts', { couponId, count: released.deadLettered, cause: reason.error });
  }
  return released;
}

/**
 * The ledger refused a batch as claimed before the coupon's state was rebuilt (or while it is): nothing
 * of it was written. Its winners go back to Redis (readmit-stale.lua): to the queue if the state is
 * still the one they were claimed from, else admitted again in the rebuilt state while units are left.
 * A state still missing is restored first (or waited for, if another caller is restoring it).
 */
async function giveBackStale(deps: Deps, couponId: string, claim: Claim, items: readonly ClaimedItem[], ledgerEpoch: number | undefined): Promise<void> {
  const store = deps.shards.at(claim.shard);
  const epoch = ledgerEpoch ?? (await deps.ledger.getCoupon(couponId, true))?.epochs[claim.shard] ?? claim.epoch;
  let result = await store.readmitStale(couponId, claim, items, epoch);
  // A drain can wait for a rebuild under way longer than a request would.
  for (let tries = 0; result.kind === 'NO_STATE' && tries < 2; tries++) {
    await restoreCouponState(deps, couponId, { shard: claim.shard, waitMs: 10_000 });
    result = await store.readmitStale(couponId, claim, items, epoch);
  }
  if (result.kind === 'NO_STATE') {
    throw new Error(`coupon ${couponId} has no state to give back ${items.length} stale item(s) to`);
  }
  log.warn('a batch claimed before the coupon was rebuilt was refused by the ledger and given back', {
    couponId,
    shard: claim.shard,
    ...result,
    claimEpoch: claim.epoch,
    ledgerEpoch: epoch,
  });
}

/** True when this call marked the coupon FINISHED. */
async function markFinished(deps: Deps, couponId: string): Promise<boolean> {
  const marked = await deps.ledger.markFinishedIfComplete(couponId);
  if (marked) log.info('coupon finished: every unit persisted', { couponId });
  return marked;
}

/**
 * Whether the ledger has the coupon FINISHED. A drain marks it when it writes the last units, but they
 * may have been acknowledged by reconcile instead, or the drain may have died or failed right before
 * marking it: marked here, the coupon is not visited forever. Tried only when every unit is persisted.
 */
async function finishedInLedger(deps: Deps, couponId: string): Promise<boolean> {
  const record = await deps.ledger.getCoupon(couponId, true);
  if (!record) return false;
  if (record.status === 'FINISHED') return true;
  return record.issuedCount >= record.totalQuantity && markFinished(deps, couponId);
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The scheduled run: drain every coupon that has state in Redis, in every shard, a few at a time,
 * sharing the invocation's time. This is also what recovers items whose drain died (their leases have
 * expired by the next run and its claims put them back in line) and completes transfers of units between
 * shards whose giver died half-way.
 */
export async function drainAll(deps: Deps, timeLeftMs: () => number, parallelism = 4): Promise<DrainReport[]> {
  const work: { couponId: string; shard: number }[] = [];
  for (const [shard, store] of deps.shards.stores.entries()) for (const couponId of await store.listCoupons()) work.push({ couponId, shard });
  const reports: DrainReport[] = [];
  let cursor = 0;
  const worker = async () => {
    while (cursor < work.length && timeLeftMs() > deps.drain.stopBeforeTimeoutMs) {
      const { couponId, shard } = work[cursor++]!;
      try {
        if (shard === 0 && deps.shards.count > 1) await completeTransfers(deps, couponId);
        reports.push(await drainCoupon(deps, couponId, timeLeftMs, shard));
        await forgetIfSettled(deps, couponId, shard);
      } catch (error) {
        log.error('drain of a coupon failed; the next run retries it', { couponId, shard, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, work.length) }, worker));
  return reports;
}

/**
 * A coupon that is finished or ended, with nothing queued, in flight or dead, needs no more runs. A coupon
 * whose Redis state is missing is restored from the ledger here, unless the ledger has it finished,
 * ended or gone: the schedule must keep visiting a live coupon (its queue may fill again once restored).
 * Forgetting is checked again in the same step as the removal (forget-coupon.lua): a restore or a
 * requeue landing between this check and the removal keeps the coupon in the index.
 */
async function forgetIfSettled(deps: Deps, couponId: string, shard: number): Promise<void> {
  const store = deps.shards.at(shard);
  const live = await store.readCounters(couponId);
  if (!live) {
    const coupon = await deps.ledger.getCoupon(couponId, true);
    const over = !coupon || coupon.status === 'FINISHED' || (coupon.endsAt !== undefined && Date.now() >= coupon.endsAt);
    if (over) await store.forgetCoupon(couponId, 'STATELESS');
    else await restoreCouponState(deps, couponId, { shard });
    return;
  }
  if (live.queued + live.inflight + live.deadLettered + live.inTransit > 0) return;
  const soldOutAndPersisted = live.remaining <= 0 && (await finishedInLedger(deps, couponId));
  const ended = live.endsAt > 0 && live.now >= live.endsAt;
  if (soldOutAndPersisted || ended) await store.forgetCoupon(couponId, 'SETTLED');
}
