import { InvalidInputError } from '../errors.js';
import type { Deps } from './deps.js';
import { restoredNow } from './issue.js';

export type UserCouponStatus =
  | {
      readonly kind: 'FOUND';
      readonly status: 'PENDING' | 'ISSUED' | 'REJECTED';
      readonly ticket: number;
      readonly issuedAt: number | undefined;
    }
  | { readonly kind: 'NOT_REQUESTED' }
  | { readonly kind: 'COUPON_NOT_FOUND' };

/** Where a user stands on one coupon, from Redis (restored from the ledger if Redis lost it). */
export async function getUserCouponStatus(deps: Deps, couponId: string, userId: string): Promise<UserCouponStatus> {
  const { index: shard, store } = deps.shards.forUser(userId);
  if (deps.cache.answer(couponId, userId, shard)?.kind === 'COUPON_NOT_FOUND') return { kind: 'COUPON_NOT_FOUND' };
  let standing = await store.readUser(couponId, userId);
  if (standing.kind === 'NO_STATE') {
    if (!(await restoredNow(deps, couponId, shard))) return { kind: 'COUPON_NOT_FOUND' };
    standing = await store.readUser(couponId, userId);
  }
  if (standing.kind !== 'WON') return { kind: 'NOT_REQUESTED' };
  const outcome = standing.outcome;
  if (!outcome) return { kind: 'FOUND', status: 'PENDING', ticket: standing.ticket, issuedAt: undefined };
  if (outcome.kind === 'REJECTED') return { kind: 'FOUND', status: 'REJECTED', ticket: standing.ticket, issuedAt: undefined };
  return { kind: 'FOUND', status: 'ISSUED', ticket: standing.ticket, issuedAt: outcome.issuedAt };
}

export interface IssuedCoupon {
  readonly couponId: string;
  readonly ticket: number;
  readonly issuedAt: string;
}

export const USER_COUPONS_PAGE = 100;

/** A user's issued coupons, from the ledger's user index (GSI1), a page at a time. */
export async function listUserCoupons(
  deps: Deps,
  userId: string,
  options: { limit?: number; cursor?: string } = {},
): Promise<{ items: IssuedCoupon[]; cursor: string | undefined }> {
  const limit = options.limit ?? USER_COUPONS_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > USER_COUPONS_PAGE) {
    throw new InvalidInputError(`limit must be an integer from 1 to ${USER_COUPONS_PAGE}`);
  }
  const page = await deps.ledger.issuancesOfUser(userId, limit, options.cursor);
  return {
    items: page.items.map((i) => ({ couponId: i.couponId, ticket: i.ticket, issuedAt: new Date(i.issuedAt).toISOString() })),
    cursor: page.cursor,
  };
}
