import { InvalidInputError } from '../errors.js';
import type { DeadLetter } from '../redis/coupon-store.js';
import type { Deps } from './deps.js';
import { parseId } from './ids.js';

export const DEAD_LETTER_PAGE = 100;

/**
 * Dead-lettered winners of a coupon, in ticket order, with attempts and last error. Undefined when the
 * ledger has no such coupon (a typo must not read as "nothing dead-lettered").
 */
export async function listDeadLetters(deps: Deps, couponId: string, offset = 0, limit = DEAD_LETTER_PAGE): Promise<DeadLetter[] | undefined> {
  if (!Number.isInteger(offset) || offset < 0) throw new InvalidInputError('offset must be a non-negative integer');
  if (!Number.isInteger(limit) || limit < 1 || limit > DEAD_LETTER_PAGE) {
    throw new InvalidInputError(`limit must be an integer from 1 to ${DEAD_LETTER_PAGE}`);
  }
  if (!(await deps.ledger.getCoupon(couponId))) return undefined;
  if (deps.shards.count === 1) return deps.shards.at(0).deadLetters(couponId, offset, limit);
  // Merged in ticket order over the shards: each gives its first offset + limit, and the page is cut from those.
  const pages = await Promise.all(deps.shards.stores.map((store) => store.deadLetters(couponId, 0, offset + limit)));
  return pages
    .flat()
    .sort((a, b) => a.ticket - b.ticket)
    .slice(offset, offset + limit);
}

/** Parse an operator's requeue request: `{}` (every dead letter) or `{"userIds": [...]}` (at most 1,000). */
export function parseRequeueRequest(body: unknown): string[] {
  if (body === undefined) return [];
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInputError('the body must be a JSON object');
  const unknown = Object.keys(body).filter((key) => key !== 'userIds');
  if (unknown.length > 0) throw new InvalidInputError(`unknown field(s): ${unknown.slice(0, 5).join(', ')}`);
  const userIds = (body as { userIds?: unknown }).userIds;
  if (userIds === undefined) return [];
  if (!Array.isArray(userIds) || userIds.length === 0 || userIds.length > 1_000) {
    throw new InvalidInputError('userIds must be a non-empty array of at most 1,000 user ids');
  }
  return userIds.map((id) => parseId('userId', id));
}

/**
 * Put dead-lettered winners back in the queue (all, or the given ones) with a fresh attempt count, and
 * start a drain for them. Returns how many were requeued; undefined when the ledger has no such coupon.
 */
export async function requeueDeadLetters(deps: Deps, couponId: string, userIds: readonly string[]): Promise<number | undefined> {
  if (!(await deps.ledger.getCoupon(couponId))) return undefined;
  let requeued = 0;
  for (const [shard, store] of deps.shards.stores.entries()) {
    const mine = userIds.filter((userId) => deps.shards.indexOf(userId) === shard);
    if (userIds.length > 0 && mine.length === 0) continue;
    const inShard = await store.requeue(couponId, userIds.length > 0 ? mine : 'ALL_DEAD_LETTERS');
    if (inShard > 0) await deps.trigger.start(couponId, shard).catch(() => undefined);
    requeued += inShard;
  }
  return requeued;
}
