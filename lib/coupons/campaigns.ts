import { InvalidInputError } from '../errors.js';
import { newCouponRecord, type CouponRecord } from '../ledger/model.js';
import { initialShare } from '../redis/shards.js';
import type { LiveCounters } from '../redis/coupon-store.js';
import { restoreAllShards } from './coupon-state.js';
import type { Deps } from './deps.js';
import { parseId } from './ids.js';

export const MAX_QUANTITY = 10_000_000;
const MAX_NAME_LENGTH = 200;
const NEW_COUPON_FIELDS = new Set(['couponId', 'name', 'totalQuantity', 'startsAt', 'endsAt']);

export interface NewCoupon {
  readonly couponId: string;
  readonly name: string;
  readonly totalQuantity: number;
  /** Epoch ms; defaults to now. */
  readonly startsAt: number | undefined;
  /** Epoch ms; undefined = open until sold out. */
  readonly endsAt: number | undefined;
}

/**
 * SCHEDULED before startsAt; OPEN while units are left; SOLD_OUT when none is left but not all are
 * persisted yet; FINISHED when the ledger holds every unit; ENDED after endsAt with units unclaimed.
 */
export type CouponStatus = 'SCHEDULED' | 'OPEN' | 'SOLD_OUT' | 'FINISHED' | 'ENDED';

export interface CouponView {
  readonly couponId: string;
  readonly name: string;
  readonly totalQuantity: number;
  readonly remaining: number;
  readonly status: CouponStatus;
  readonly startsAt: string;
  readonly endsAt: string | null;
}

export interface AdminCouponView extends CouponView {
  /** Accepted, waiting for a drain. */
  readonly queued: number;
  /** Claimed by a drain, not yet acknowledged. */
  readonly inflight: number;
  /** Persisted, from the ledger's counter. */
  readonly issued: number;
  /** Given up after too many attempts; see the logs for the cause. */
  readonly deadLettered: number;
}

export type CreateCouponOutcome = { readonly kind: 'CREATED'; readonly coupon: AdminCouponView } | { readonly kind: 'COUPON_EXISTS' };

/** Validate an operator's request to create a coupon. Throws InvalidInputError naming the first problem. */
export function parseNewCoupon(body: unknown): NewCoupon {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('the body must be a JSON object');
  }
  const unknown = Object.keys(body).filter((key) => !NEW_COUPON_FIELDS.has(key));
  if (unknown.length > 0) throw new InvalidInputError(`unknown field(s): ${unknown.slice(0, 5).join(', ')}`);
  const input = body as Record<string, unknown>;
  const couponId = parseId('couponId', input.couponId);
  const name = input.name;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters in a name is the point.
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new InvalidInputError(`name must be a non-empty string of at most ${MAX_NAME_LENGTH} printable characters`);
  }
  const totalQuantity = input.totalQuantity;
  if (typeof totalQuantity !== 'number' || !Number.isInteger(totalQuantity) || totalQuantity < 1 || totalQuantity > MAX_QUANTITY) {
    throw new InvalidInputError(`totalQuantity must be an integer from 1 to ${MAX_QUANTITY}`);
  }
  const startsAt = optionalTime('startsAt', input.startsAt);
  const endsAt = optionalTime('endsAt', input.endsAt);
  if (endsAt !== undefined && endsAt <= Math.max(startsAt ?? 0, Date.now())) {
    throw new InvalidInputError('endsAt must be later than startsAt and than now');
  }
  return { couponId, name, totalQuantity, startsAt, endsAt };
}

/**
 * Create a coupon: META in the ledger first (conditional, so an existing couponId changes nothing), then
 * its Redis state. If loading Redis fails after META was written, the coupon still exists: the first
 * admission or view restores its state from the ledger, and so does a retry of the create.
 *
 * A retry of the very request that created the coupon (the SDK retrying a write that had committed, an
 * operator retrying after a timeout) is answered CREATED, as the first attempt would have been: META
 * keeps the request's definition, and an identical one is the same create. A different definition under
 * an existing id is COUPON_EXISTS.
 */
export async function createCoupon(deps: Deps, input: NewCoupon): Promise<CreateCouponOutcome> {
  const now = Date.now();
  const definition = couponDefinition(input);
  const shards = deps.shards.count;
  const record: CouponRecord = newCouponRecord({
    couponId: input.couponId,
    name: input.name,
    totalQuantity: input.totalQuantity,
    startsAt: input.startsAt ?? now,
    endsAt: input.endsAt,
    createdAt: now,
    definition,
    partitions: deps.ledger.newCouponPartitions,
    shards,
  });
  const created = await deps.ledger.createCoupon(record);
  if (created.kind === 'CREATED') {
    // A coupon this call created has never had a state, so no claim of it can exist: loaded as new, its
    // units split evenly over the shards.
    for (let shard = 0; shard < shards; shard++) {
      await deps.shards.at(shard).loadCoupon(input.couponId, {
        total: record.totalQuantity,
        remaining: initialShare(record.totalQuantity, shards, shard),
        seq: 0,
        startsAt: record.startsAt,
        endsAt: record.endsAt ?? 0,
        epoch: 0,
        shard,
        shards,
      });
    }
  } else if ((await deps.ledger.getCoupon(input.couponId, true))?.definition === definition) {
    await restoreAllShards(deps, input.couponId);
  } else {
    return created;
  }
  deps.cache.forget(input.couponId);
  const coupon = await getAdminCouponView(deps, input.couponId);
  if (!coupon) throw new Error(`coupon ${input.couponId} vanished right after it was created`);
  return { kind: 'CREATED', coupon };
}

/**
 * A create request as given, startsAt and endsAt as sent (absent stays absent: a retry of a request
 * without startsAt must match, though "now" has moved on).
 */
function couponDefinition(input: NewCoupon): string {
  return JSON.stringify([input.name, input.totalQuantity, input.startsAt ?? null, input.endsAt ?? null]);
}

export async function getCouponView(deps: Deps, couponId: string): Promise<CouponView | undefined> {
  // The public view may lag the ledger by a moment (an eventually consistent read, half the cost).
  const view = await readCouponView(deps, couponId, false);
  if (!view) return undefined;
  const { queued: _q, inflight: _i, issued: _s, deadLettered: _d, ...publicView } = view;
  return publicView;
}

/**
 * The operator's view reads the ledger strongly consistently: right after a create (DynamoDB may
 * otherwise not return the item yet, and the create would answer 500 for a coupon it made) and while
 * checking a campaign, whose issued count must not lag.
 */
export function getAdminCouponView(deps: Deps, couponId: string): Promise<AdminCouponView | undefined> {
  return readCouponView(deps, couponId, true);
}

async function readCouponView(deps: Deps, couponId: string, consistentRead: boolean): Promise<AdminCouponView | undefined> {
  const [record, liveOrMissing] = await Promise.all([deps.ledger.getCoupon(couponId, consistentRead), readCouponCounters(deps, couponId)]);
  if (!record) return undefined;
  let live = liveOrMissing;
  if (!live) {
    // The deps' restorer: in-process for the admin handlers, the restore function for the public view.
    for (let shard = 0; shard < deps.shards.count; shard++) await deps.restorer.restore(couponId, shard);
    live = await readCouponCounters(deps, couponId);
    if (!live) throw new Error(`coupon ${couponId} has no Redis state after a restore`);
  }
  return {
    couponId,
    name: record.name,
    totalQuantity: record.totalQuantity,
    remaining: live.remaining,
    status: couponStatus(record, live),
    startsAt: new Date(record.startsAt).toISOString(),
    endsAt: record.endsAt === undefined ? null : new Date(record.endsAt).toISOString(),
    queued: live.queued,
    inflight: live.inflight,
    issued: record.issuedCount,
    deadLettered: live.deadLettered,
  };
}

/**
 * A coupon's live counters summed over its shards (units in transit between shards count as remaining:
 * they are for sale again in a moment); undefined when any shard has no state.
 */
export async function readCouponCounters(deps: Deps, couponId: string): Promise<LiveCounters | undefined> {
  const shards = await Promise.all(deps.shards.stores.map((store) => store.readCounters(couponId)));
  if (shards.some((live) => !live)) return undefined;
  const all = shards as LiveCounters[];
  const sum = (pick: (live: LiveCounters) => number) => all.reduce((total, live) => total + pick(live), 0);
  return {
    ...all[0]!,
    remaining: sum((l) => l.remaining + l.inTransit),
    seq: sum((l) => l.seq),
    queued: sum((l) => l.queued),
    inflight: sum((l) => l.inflight),
    deadLettered: sum((l) => l.deadLettered),
    inTransit: sum((l) => l.inTransit),
    shard: 0,
    shards: all.length,
  };
}

export function couponStatus(record: CouponRecord, live: LiveCounters): CouponStatus {
  if (record.issuedCount >= record.totalQuantity) return 'FINISHED';
  if (live.now < record.startsAt) return 'SCHEDULED';
  if (record.endsAt !== undefined && live.now >= record.endsAt) return 'ENDED';
  if (live.remaining <= 0) return 'SOLD_OUT';
  return 'OPEN';
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

function optionalTime(field: string, raw: unknown): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' || !isCalendarTime(raw)) {
    throw new InvalidInputError(`${field} must be an ISO-8601 time with a time zone, e.g. 2026-11-24T10:00:00Z`);
  }
  return Date.parse(raw);
}

/** ISO_TIME, with every field in range: Date.parse alone would roll 2026-02-30 over to March 2 and take 24:00. */
function isCalendarTime(raw: string): boolean {
  const parts = ISO_TIME.exec(raw);
  if (!parts) return false;
  const fields = parts.slice(1).map((part) => Number(part ?? 0));
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, offsetHours = 0, offsetMinutes = 0] = fields;
  // Days per month from the leap year 2000 (Date.UTC maps years below 100 to 19xx), less February 29.
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeapYear(year) ? 1 : 0);
  const dateValid = month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth;
  return dateValid && hour <= 23 && minute <= 59 && second <= 59 && offsetHours <= 23 && offsetMinutes <= 59;
}

const isLeapYear = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
