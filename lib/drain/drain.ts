import type { Deps } from '../coupons/deps.js';
import { log } from '../log.js';
import { isTransientLedgerError } from '../ledger/faults.js';
import { MAX_BATCH, type LedgerDecision } from '../ledger/ledger.js';
import type { Claim, ClaimedItem } from '../redis/coupon-store.js';

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
  stoppedBy: 'EMPTY' | 'TIME' | 'FAILURES';
}

/** Consecutive failed batches after which a run gives up and leaves the rest to the next run. */
const MAX_CONSECUTIVE_FAILURES = 3;

/** A drain waits for an expiring lease of another (likely dead) drain at most this long. */
const MAX_LEASE_WAIT_MS = 5_000;

/** How long until the earliest in-flight lease expires, when that is soon enough to wait for. */
function leaseWait(claim: Claim, claimLeaseMs: number): number | undefined {
  if (claim.queuedAfter > 0 || claim.nextLeaseExpiry === undefined) return undefined;
  const redisNow = claim.leaseDeadline - claimLeaseMs;
  const wait = Math.max(0, claim.nextLeaseExpiry - redisNow) + 20;
  return wait <= MAX_LEASE_WAIT_MS ? wait : undefined;
}

const totals = new Map<string, number>();

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
 * @param timeLeftMs how long the invocation still has (Lambda's getRemainingTimeInMillis)
 */
export async function drainCoupon(deps: Deps, couponId: string, timeLeftMs: () => number): Promise<DrainReport> {
  const report = emptyReport(couponId);
  const total = await totalQuantityOf(deps, couponId);
  if (total === undefined) {
    log.error('drain found a coupon without META in the ledger; nothing persisted', { couponId });
    return report;
  }
  // A triggered drain re-indexes its coupon, so the schedule keeps visiting it even if indexing failed
  // when the coupon was loaded.
  await deps.store.indexCoupon(couponId);
  const tuning = { ...deps.drain, batchSize: Math.min(deps.drain.batchSize, MAX_BATCH) };
  const hasTime = () => timeLeftMs() > deps.drain.stopBeforeTimeoutMs;

  let failures = 0;
  let droppedDecided = false;
  let next: Promise<Claim> | undefined = hasTime() ? deps.store.claim(couponId, tuning) : undefined;
  if (!next) report.stoppedBy = 'TIME';
  while (next) {
    const claim = await next;
    next = undefined;
    report.requeued += claim.requeued;
    report.deadLettered += claim.deadLettered;

    if (claim.items.length === 0 && claim.queuedAfter > 0) {
      // The claim popped only entries decided meanwhile (late duplicates), which it drops, and more are
      // queued behind them: claim again now. Each claim pops a batch, so this ends. Stopping here would
      // leave the queue to the drain mark the claim just refreshed.
      droppedDecided = true;
      if (hasTime()) next = deps.store.claim(couponId, tuning);
      else report.stoppedBy = 'TIME';
      continue;
    }
    if (claim.items.length === 0) {
      // Nothing queued. Items in flight whose lease is about to expire belong to a drain that probably
      // died: wait for the lease and take them back now rather than at the next scheduled run.
      const wait = leaseWait(claim, tuning.claimLeaseMs);
      if (wait !== undefined && timeLeftMs() - wait > deps.drain.stopBeforeTimeoutMs) {
        await sleep(wait);
        next = deps.store.claim(couponId, tuning);
      }
      continue;
    }
    report.batches += 1;

    const writing = persistClaim(deps, couponId, total, claim, report);
    // Claim the next batch while this one is written; the lease covers the wait. If the write fails
    // for good (Redis gone while acknowledging), that claim is left to its lease: mark it handled so its
    // own failure cannot crash the invocation.
    if (claim.queuedAfter > 0 && hasTime()) {
      next = deps.store.claim(couponId, tuning);
      next.catch(() => undefined);
    }
    const ok = await writing;
    failures = ok ? 0 : failures + 1;

    if (failures >= MAX_CONSECUTIVE_FAILURES) {
      report.stoppedBy = 'FAILURES';
      // A claim that failed itself holds nothing to give back (its items, if any, return with its lease).
      const prefetched = next && (await next.catch(() => undefined));
      if (prefetched) await releaseUnwritten(deps, couponId, prefetched, prefetched.items, 'drain stopped after repeated ledger failures');
      break;
    }
    if (failures > 0) await sleep(Math.random() * 200 * 2 ** failures);
    if (next) continue;
    if (claim.queuedAfter > 0) {
      report.stoppedBy = 'TIME';
      break;
    }
    if (ok) await markFinished(deps, couponId);
    // The queue looked empty. Linger first: the admissions of the next moments then share one
    // transaction instead of costing one each (and, once the drain has gone, one drain invocation
    // each). The drain mark set by the claim outlives the wait, so they start no other drain. Then one
    // more claim deletes the mark atomically if the queue is still empty, or picks up what arrived.
    if (tuning.lingerMs > 0 && timeLeftMs() - tuning.lingerMs > deps.drain.stopBeforeTimeoutMs) await sleep(tuning.lingerMs);
    if (hasTime()) next = deps.store.claim(couponId, tuning);
    else report.stoppedBy = 'TIME';
  }
  // Written or decided something (or dropped entries already decided): a run whose writes all failed
  // (the ledger down) leaves the rest to the schedule rather than chaining invocations that would only
  // use up the items' attempts.
  const progressed = report.issued + report.redelivered + report.rejected > 0 || droppedDecided;
  if (report.stoppedBy === 'TIME' && progressed) await handOver(deps, couponId);
  return report;
}

/**
 * A run out of time leaves the coupon's drain mark set (its last claim refreshed it), so admissions
 * start no drain until the mark expires: up to DRAIN_TRIGGER_LEASE_MS of waiting during a long drop.
 * It starts its successor instead, which claims at once (or deletes the mark if nothing is left). Only
 * a run that persisted something hands over, so neither a misconfigured time budget nor a ledger that
 * refuses every write can chain invocations.
 */
async function handOver(deps: Deps, couponId: string): Promise<void> {
  try {
    await deps.trigger.start(couponId);
  } catch (error) {
    log.warn('could not start the next drain; the admissions or the schedule will, once the drain mark expires', { couponId, error });
  }
}

export function emptyReport(couponId: string): DrainReport {
  return { couponId, batches: 0, issued: 0, redelivered: 0, rejected: 0, released: 0, deadLettered: 0, requeued: 0, stoppedBy: 'EMPTY' };
}

/**
 * Write one claim to the ledger and acknowledge it; give back whatever could not be written: what a
 * drain does with each batch it claims. True when every item was decided.
 */
export async function persistClaim(
  deps: Deps,
  couponId: string,
  total: number,
  claim: Claim,
  report: DrainReport = emptyReport(couponId),
): Promise<boolean> {
  let written: Isolated;
  try {
    written = await persistIsolating(deps, couponId, total, claim.items);
  } catch (error) {
    // A transient fault that outlived the SDK's retries: the whole batch goes back for another attempt.
    await releaseUnwritten(deps, couponId, claim, claim.items, describe(error));
    log.warn('ledger write failed; batch released for another attempt', { couponId, items: claim.items.length, error });
    report.released += claim.items.length;
    return false;
  }
  await deps.store.acknowledge(couponId, written.decisions);
  report.issued += written.newlyIssued;
  let rejected = 0;
  for (const decision of written.decisions.values()) if (decision.kind === 'REJECTED') rejected += 1;
  report.rejected += rejected;
  report.redelivered += written.decisions.size - rejected - written.newlyIssued;
  if (written.capExceeded) {
    log.error('the ledger cap refused items Redis had admitted: Redis lost or drifted from the ledger', { couponId, rejected });
  }
  const failedByCause = new Map<string, string[]>();
  for (const { userId, error } of written.failed) failedByCause.set(error, [...(failedByCause.get(error) ?? []), userId]);
  for (const [cause, userIds] of failedByCause) {
    const items = claim.items.filter((i) => userIds.includes(i.userId));
    await releaseUnwritten(deps, couponId, claim, items, cause);
    log.warn('the ledger did not write these items; released for another attempt', { couponId, userIds, cause });
    report.released += items.length;
  }
  return written.failed.length === 0;
}

interface Isolated {
  decisions: Map<string, LedgerDecision>;
  newlyIssued: number;
  capExceeded: boolean;
  /** Items left unwritten: refused by the ledger, or hit by a transient fault while a batch was split. */
  failed: { userId: string; error: string }[];
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
  total: number,
  items: readonly ClaimedItem[],
  split: { transientFault?: string } = {},
): Promise<Isolated> {
  // A transient fault met elsewhere in this split: the ledger is struggling, so what is left of the
  // split is not tried (each try could cost the SDK's whole retry cycle) and goes back to the queue.
  if (split.transientFault !== undefined) return unwritten(items, split.transientFault);
  try {
    const result = await deps.ledger.persistBatch(couponId, total, items);
    return { ...result, failed: [] };
  } catch (error) {
    if (isTransientLedgerError(error)) throw error;
    if (items.length === 1) return unwritten(items, describe(error));
    const middle = Math.ceil(items.length / 2);
    const half = (part: readonly ClaimedItem[]) =>
      persistIsolating(deps, couponId, total, part, split).catch((halfError: unknown) => {
        if (!isTransientLedgerError(halfError)) throw halfError;
        split.transientFault = describe(halfError);
        return unwritten(part, split.transientFault);
      });
    const first = await half(items.slice(0, middle));
    const second = await half(items.slice(middle));
    return {
      decisions: new Map([...first.decisions, ...second.decisions]),
      newlyIssued: first.newlyIssued + second.newlyIssued,
      capExceeded: first.capExceeded || second.capExceeded,
      failed: [...first.failed, ...second.failed],
    };
  }
}

const unwritten = (items: readonly ClaimedItem[], error: string): Isolated => ({
  decisions: new Map(),
  newlyIssued: 0,
  capExceeded: false,
  failed: items.map((item) => ({ userId: item.userId, error })),
});

async function releaseUnwritten(deps: Deps, couponId: string, claim: Claim, items: readonly ClaimedItem[], reason: string): Promise<void> {
  if (items.length === 0) return;
  const userIds = items.map((item) => item.userId);
  const released = await deps.store.release(couponId, claim, userIds, deps.drain.maxAttempts, reason);
  if (released.deadLettered > 0) {
    log.error('items dead-lettered after too many attempts', { couponId, count: released.deadLettered, cause: reason });
  }
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

async function totalQuantityOf(deps: Deps, couponId: string): Promise<number | undefined> {
  // totalQuantity never changes once a coupon exists, so it is read once per container.
  let total = totals.get(couponId);
  if (total === undefined) {
    total = (await deps.ledger.getCoupon(couponId, true))?.totalQuantity;
    if (total !== undefined) totals.set(couponId, total);
  }
  return total;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The scheduled run: drain every coupon that has state in Redis, a few at a time, sharing the
 * invocation's time. This is also what recovers items whose drain died: their leases have expired by
 * the next run and its claims put them back in line.
 */
export async function drainAll(deps: Deps, timeLeftMs: () => number, parallelism = 4): Promise<DrainReport[]> {
  const couponIds = await deps.store.listCoupons();
  const reports: DrainReport[] = [];
  let cursor = 0;
  const worker = async () => {
    while (cursor < couponIds.length && timeLeftMs() > deps.drain.stopBeforeTimeoutMs) {
      const couponId = couponIds[cursor++]!;
      try {
        reports.push(await drainCoupon(deps, couponId, timeLeftMs));
        await forgetIfSettled(deps, couponId);
      } catch (error) {
        log.error('drain of a coupon failed; the next run retries it', { couponId, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, couponIds.length) }, worker));
  return reports;
}

/** A coupon that is finished or ended, with nothing queued, in flight or dead, needs no more runs. */
async function forgetIfSettled(deps: Deps, couponId: string): Promise<void> {
  const live = await deps.store.readCounters(couponId);
  if (!live) {
    await deps.store.forgetCoupon(couponId);
    return;
  }
  if (live.queued + live.inflight + live.deadLettered > 0) return;
  const soldOutAndPersisted = live.remaining <= 0 && (await finishedInLedger(deps, couponId));
  const ended = live.endsAt > 0 && live.now >= live.endsAt;
  if (soldOutAndPersisted || ended) await deps.store.forgetCoupon(couponId);
}
