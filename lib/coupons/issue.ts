import { log } from '../log.js';
import type { AdmitReply } from '../redis/coupon-store.js';
import { restoreCouponState } from './coupon-state.js';
import type { Deps } from './deps.js';

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
 * Coupons the ledger does not know, remembered briefly per container so that a flood of requests for a
 * made-up coupon costs one ledger read per container and interval, not one per request.
 */
const unknownCoupons = new Map<string, number>();
const UNKNOWN_COUPON_TTL_MS = 5_000;

/**
 * Issue a coupon to a user: the first-come-first-served decision.
 *
 * Input: a valid couponId and userId, and the client's IP for the per-IP rate limit.
 * Output: the final answer, as a typed outcome.
 * Steps:
 * 1. One EVALSHA (admit.lua) decides everything atomically and, for a winner, queues the persistence.
 * 2. If Redis has no state for the coupon but the ledger has the coupon, the state is restored from the
 *    ledger and the request decided again (Redis lost its data, or a create did not finish loading it).
 * 3. A winner whose admission found no drain running starts one; a failure there is logged, not
 *    surfaced: the item is safely queued and the scheduled drain persists it.
 */
export async function issueCoupon(deps: Deps, couponId: string, userId: string, clientIp?: string): Promise<IssueOutcome> {
  const options = {
    triggerLeaseMs: deps.drain.triggerLeaseMs,
    clientIp,
    userPerSecond: deps.rateLimit.userPerSecond,
    ipPerSecond: deps.rateLimit.ipPerSecond,
  };
  let reply = await deps.store.admit(couponId, userId, options);
  if (reply.kind === 'COUPON_NOT_FOUND' && (await restoredNow(deps, couponId))) {
    reply = await deps.store.admit(couponId, userId, options);
  }
  if (reply.kind === 'ACCEPTED' && reply.startDrain) {
    await deps.trigger.start(couponId).catch((error: unknown) => {
      log.warn('could not start a drain; the schedule will persist the queue', { couponId, error });
    });
  }
  return toOutcome(reply);
}

/** True when the coupon exists in the ledger and its Redis state is (now) loaded. */
export async function restoredNow(deps: Deps, couponId: string): Promise<boolean> {
  const knownMissingUntil = unknownCoupons.get(couponId);
  if (knownMissingUntil !== undefined && knownMissingUntil > Date.now()) return false;
  const result = await restoreCouponState(deps, couponId);
  if (result.kind === 'NOT_FOUND') {
    if (unknownCoupons.size > 10_000) unknownCoupons.clear();
    unknownCoupons.set(couponId, Date.now() + UNKNOWN_COUPON_TTL_MS);
    return false;
  }
  unknownCoupons.delete(couponId);
  return true;
}

/** Forget a cached "unknown coupon" (the coupon was just created here). */
export function forgetUnknownCoupon(couponId: string): void {
  unknownCoupons.delete(couponId);
}

function toOutcome(reply: AdmitReply): IssueOutcome {
  if (reply.kind === 'ACCEPTED') return { kind: 'ACCEPTED', ticket: reply.ticket };
  return reply;
}
