import { UnavailableError } from '../errors.js';
import { log } from '../log.js';
import type { Admission, AdmitReply, CouponStore } from '../redis/coupon-store.js';
import type { Deps } from './deps.js';
import { refillShard } from './rebalance.js';

/** What issuing needs: no ledger (the admission path reads it only through its restorer). */
export type IssueDeps = Pick<Deps, 'shards' | 'cache' | 'limiter' | 'trigger' | 'drain' | 'restorer' | 'tally'>;

/**
 * A request whose shard ran out refills it (or waits for another request's refill) for at most this
 * long, then is answered 503 (retry) rather than SOLD_OUT while other shards may have units. Refills take
 * a few milliseconds when the shards answer; this bounds a request whose shards answer slowly, or that
 * keeps losing the refilled units to others (lib/budgets.ts).
 */
export const REFILL_BUDGET_MS = 500;

/** A refill under way elsewhere (BUSY): its units are there in a moment; waited for at most this long. */
export const REFILL_BUSY_WAIT_MAX_MS = 50;

export type IssueOutcome =
  | { readonly kind: 'ACCEPTED'; readonly ticket: number }
  | {
      readonly kind: 'ALREADY_ACCEPTED';
      readonly ticket: number;
      readonly status: 'PENDING' | 'ISSUED';
      readonly issuedAt: number | undefined;
    }
  | { readonly kind: 'COUPON_NOT_FOUND' }
  | { readonly kind: 'NOT_OPEN'; readonly startsAt: number }
  | { readonly kind: 'ENDED' }
  | { readonly kind: 'SOLD_OUT' }
  | { readonly kind: 'RATE_LIMITED' };

/**
 * Issue a coupon to a user: the first-come-first-served decision.
 *
 * Input: a valid couponId and userId, and the client's IP for the per-IP rate limit.
 * Output: the final answer, as a typed outcome.
 * Steps:
 * 1. An answer that cannot change anything is given from what this container learned (deps.cache):
 *    NOT_OPEN long before the opening, ENDED after the end, SOLD_OUT to someone who never won a coupon
 *    that sold out, COUPON_NOT_FOUND for a coupon the ledger just said it does not know. No Redis call.
 * 2. A request over its rate limit is answered RATE_LIMITED, also without Redis (deps.limiter).
 * 3. One EVALSHA (admit.lua) decides everything else atomically and, for a winner, queues the
 *    persistence; its reply teaches the container the coupon's facts and its clock's offset to Redis'.
 * 4. If Redis has no state for the coupon but the ledger has the coupon, the state is restored from the
 *    ledger and the request decided again (Redis lost its data, or a create did not finish loading it).
 * 5. With several shards, a user's shard may run out while others have units: it is refilled from them
 *    (rebalance.ts) and the request decided again; only when no shard has a unit is the answer SOLD_OUT.
 *    Refills that cannot finish within REFILL_BUDGET_MS answer 503 (retry), never a SOLD_OUT that may
 *    be wrong.
 * 6. Once the coupon is sold out, the container reads who holds an entry on the user's shard, once per
 *    change.
 * 7. A winner whose admission found no drain running starts one; a failure there is logged, not
 *    surfaced: the item is safely queued and the scheduled drain persists it.
 * Every answer is counted (deps.tally): a metric, and at most once a second per coupon the container's
 * totals for the live page, written alongside the request's own Redis call.
 */
export async function issueCoupon(deps: IssueDeps, couponId: string, userId: string, clientIp?: string): Promise<IssueOutcome> {
  const reporting = deps.tally.flushDue(couponId, deps.shards.at(0));
  try {
    const local = answerLocally(deps, couponId, userId, clientIp);
    if (local) {
      deps.tally.record(couponId, local.kind, true, deps.cache.knows(couponId));
      return local;
    }
    const outcome = await decide(deps, couponId, userId);
    deps.tally.record(couponId, outcome.kind, false, deps.cache.knows(couponId));
    return outcome;
  } catch (fault) {
    deps.tally.record(couponId, 'UNAVAILABLE', false, deps.cache.knows(couponId));
    throw fault;
  } finally {
    await reporting;
  }
}

/** The answers given without Redis: what the container learned (deps.cache), and the rate limits. */
function answerLocally(deps: IssueDeps, couponId: string, userId: string, clientIp: string | undefined): IssueOutcome | undefined {
  const local = deps.cache.answer(couponId, userId, deps.shards.indexOf(userId));
  if (local) return local;
  if (!deps.limiter.allow(couponId, userId, clientIp)) return { kind: 'RATE_LIMITED' };
  return undefined;
}

async function decide(deps: IssueDeps, couponId: string, userId: string): Promise<IssueOutcome> {
  const { index: shard, store } = deps.shards.forUser(userId);
  let admission = await admit(deps, store, shard, couponId, userId);
  if (admission.reply.kind === 'COUPON_NOT_FOUND' && (await restoredNow(deps, couponId, shard))) {
    admission = await admit(deps, store, shard, couponId, userId);
  }
  const refillsUntil = Date.now() + REFILL_BUDGET_MS;
  while (shardRanOut(deps, couponId, admission) && Date.now() < refillsUntil) {
    const refill = await refillShard(deps, couponId, shard, refillsUntil);
    if (refill === 'EXHAUSTED') {
      deps.cache.markExhausted(couponId);
      break;
    }
    // BUSY: another request is refilling this shard; its units are there in a moment.
    if (refill === 'BUSY') await new Promise((resolve) => setTimeout(resolve, REFILL_BUSY_WAIT_MAX_MS / 2 + (Math.random() * REFILL_BUSY_WAIT_MAX_MS) / 2));
    admission = await admit(deps, store, shard, couponId, userId);
  }
  // Still out after REFILL_BUDGET_MS while other shards may have units (each refill was busy elsewhere,
  // or the units it brought were taken first): SOLD_OUT could be a wrong final answer; the client retries.
  if (shardRanOut(deps, couponId, admission)) throw new UnavailableError(`shard ${shard} of coupon ${couponId} is being refilled`, 1);
  const reply = admission.reply;
  if (deps.cache.needsWinners(couponId, shard)) await learnWinners(deps, store, shard, couponId);
  if (reply.kind === 'ACCEPTED' && reply.startDrain) {
    await deps.trigger.start(couponId, shard).catch((error: unknown) => {
      log.warn('could not start a drain; the schedule will persist the queue', { couponId, shard, error });
    });
  }
  return toOutcome(reply);
}

/** SOLD_OUT because this shard had no unit left, while other shards may have some. */
function shardRanOut(deps: IssueDeps, couponId: string, admission: Admission): boolean {
  return deps.shards.count > 1 && admission.reply.kind === 'SOLD_OUT' && (admission.seen?.remaining ?? 1) <= 0 && !deps.cache.isExhausted(couponId);
}

async function admit(deps: IssueDeps, store: CouponStore, shard: number, couponId: string, userId: string): Promise<Admission> {
  const sentAt = Date.now();
  const admission = await store.admit(couponId, userId, { triggerLeaseMs: deps.drain.triggerLeaseMs, clock: deps.cache.clockFor(couponId) });
  const receivedAt = Date.now();
  deps.tally.redisLatency(receivedAt - sentAt);
  deps.cache.learn(couponId, admission, sentAt, receivedAt, shard, deps.shards.count);
  return admission;
}

/** Who holds an entry on the shard of a sold-out coupon: everyone else is answered SOLD_OUT by the container. */
async function learnWinners(deps: IssueDeps, store: CouponStore, shard: number, couponId: string): Promise<void> {
  try {
    const winners = await store.readWinners(couponId);
    if (winners) deps.cache.setWinners(couponId, winners.seq, winners.users, shard);
  } catch (error) {
    // Only an optimisation: until it is read, the container keeps asking Redis, which answers the same.
    log.warn('could not read the winners of a sold-out coupon; Redis keeps answering', { couponId, error });
  }
}

/**
 * True when the coupon exists in the ledger and its Redis state is (now) loaded. A coupon the ledger
 * does not know is remembered by the container for a few seconds, so that a flood of requests for a
 * made-up coupon costs one ledger read per container and interval, not one per request.
 */
export async function restoredNow(deps: Pick<Deps, 'restorer' | 'cache'>, couponId: string, shard: number): Promise<boolean> {
  const result = await deps.restorer.restore(couponId, shard);
  if (result.kind === 'NOT_FOUND') {
    deps.cache.markUnknown(couponId);
    return false;
  }
  return true;
}

function toOutcome(reply: AdmitReply): IssueOutcome {
  if (reply.kind === 'ACCEPTED') return { kind: 'ACCEPTED', ticket: reply.ticket };
  return reply;
}
