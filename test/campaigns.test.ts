import { describe, expect, it } from 'vitest';
import { createCoupon, getAdminCouponView, getCouponView, MAX_QUANTITY, parseNewCoupon } from '../lib/coupons/campaigns.js';
import { issueCoupon } from '../lib/coupons/issue.js';
import { listUserCoupons } from '../lib/coupons/user-coupons.js';
import { drainCoupon } from '../lib/drain/drain.js';
import { InvalidInputError } from '../lib/errors.js';
import { forever, testDeps, uniqueCouponId, withLedger } from './support/deps.js';

describe('creating a coupon', () => {
  const valid = { couponId: 'c1', name: 'Half price', totalQuantity: 10 };

  it.each([
    ['not an object', [1, 2]],
    ['an unknown field', { ...valid, price: 1 }],
    ['a prototype-pollution key', JSON.parse('{"couponId":"c1","name":"n","totalQuantity":1,"__proto__":{"x":1}}')],
    ['a bad id', { ...valid, couponId: 'no spaces' }],
    ['an id of 65 characters', { ...valid, couponId: 'x'.repeat(65) }],
    ['an empty name', { ...valid, name: ' ' }],
    ['a fractional quantity', { ...valid, totalQuantity: 1.5 }],
    ['a quantity of 0', { ...valid, totalQuantity: 0 }],
    ['a quantity above the maximum', { ...valid, totalQuantity: MAX_QUANTITY + 1 }],
    ['a quantity given as a string', { ...valid, totalQuantity: '10' }],
    ['a start that is not ISO-8601', { ...valid, startsAt: 'tomorrow' }],
    ['an end before the start', { ...valid, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' }],
    ['an end equal to the start', { ...valid, startsAt: '2030-01-01T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' }],
    ['an end already past, after a past start', { ...valid, startsAt: '2020-01-01T00:00:00Z', endsAt: '2020-01-02T00:00:00Z' }],
    ['a day that does not exist (Date.parse rolls it over)', { ...valid, startsAt: '2030-02-30T10:00:00Z' }],
    ['hour 24', { ...valid, startsAt: '2030-01-01T24:00:00Z' }],
    ['month 13', { ...valid, startsAt: '2030-13-01T10:00:00Z' }],
    ['a time zone offset of 24 hours', { ...valid, startsAt: '2030-01-01T10:00:00+24:00' }],
  ])('rejects %s with a clear message', (_label, body) => {
    expect(() => parseNewCoupon(body)).toThrow(InvalidInputError);
  });

  it('accepts a leap day, a past start with a future end, and seconds with milliseconds', () => {
    expect(parseNewCoupon({ ...valid, startsAt: '2028-02-29T10:00:00.250Z' }).startsAt).toBe(Date.parse('2028-02-29T10:00:00.250Z'));
    expect(parseNewCoupon({ ...valid, startsAt: '2020-01-01T00:00Z', endsAt: '2099-12-31T23:59:59+09:00' }).endsAt).toBe(Date.parse('2099-12-31T14:59:59Z'));
  });

  it('accepts a full, valid request', () => {
    expect(parseNewCoupon({ ...valid, startsAt: '2030-01-01T10:00:00+09:00', endsAt: '2030-01-01T02:00:00Z' })).toEqual({
      ...valid,
      startsAt: Date.parse('2030-01-01T01:00:00Z'),
      endsAt: Date.parse('2030-01-01T02:00:00Z'),
    });
  });

  it('writes META, loads Redis, and a repeat is COUPON_EXISTS and changes nothing', async () => {
    const deps = testDeps();
    const couponId = uniqueCouponId();
    const created = await createCoupon(deps, { couponId, name: 'first', totalQuantity: 3, startsAt: undefined, endsAt: undefined });
    expect(created).toMatchObject({ kind: 'CREATED', coupon: { couponId, name: 'first', totalQuantity: 3, remaining: 3, status: 'OPEN', issued: 0 } });
    await issueCoupon(deps, couponId, 'u1');
    const repeat = await createCoupon(deps, { couponId, name: 'second', totalQuantity: 99, startsAt: undefined, endsAt: undefined });
    expect(repeat).toEqual({ kind: 'COUPON_EXISTS' });
    expect(await getCouponView(deps, couponId)).toMatchObject({ name: 'first', totalQuantity: 3, remaining: 2 });
  });

  it("answers a create with the new coupon where DynamoDB's eventually consistent reads do not see it yet", async () => {
    const deps = testDeps();
    const couponId = uniqueCouponId('fresh');
    // As a real table may answer right after the write: only a strongly consistent read sees the item.
    const lagging = withLedger(deps, {
      getCoupon: (id: string, consistent = false) => (consistent ? deps.ledger.getCoupon(id, true) : Promise.resolve(undefined)),
    });
    const outcome = await createCoupon(lagging, { couponId, name: 'fresh', totalQuantity: 3, startsAt: undefined, endsAt: undefined });
    expect(outcome).toMatchObject({ kind: 'CREATED', coupon: { couponId, totalQuantity: 3, remaining: 3 } });
    expect(await getAdminCouponView(lagging, couponId)).toMatchObject({ couponId, issued: 0 });
  });

  it('shows SCHEDULED before the start, SOLD_OUT while units await persistence, FINISHED once persisted', async () => {
    const deps = testDeps();
    const later = uniqueCouponId();
    await createCoupon(deps, { couponId: later, name: 'later', totalQuantity: 1, startsAt: Date.now() + 3_600_000, endsAt: undefined });
    expect((await getCouponView(deps, later))?.status).toBe('SCHEDULED');

    const couponId = uniqueCouponId();
    await createCoupon(deps, { couponId, name: 'now', totalQuantity: 1, startsAt: undefined, endsAt: undefined });
    await issueCoupon(deps, couponId, 'u1');
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ status: 'SOLD_OUT', remaining: 0, queued: 1, issued: 0 });
    await drainCoupon(deps, couponId, forever);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ status: 'FINISHED', queued: 0, issued: 1 });
  });

  it("lists a user's issued coupons from the ledger's user index", async () => {
    const deps = testDeps();
    const user = `user-${Date.now()}`;
    const coupons = [uniqueCouponId('a'), uniqueCouponId('b')];
    for (const couponId of coupons) {
      await createCoupon(deps, { couponId, name: couponId, totalQuantity: 5, startsAt: undefined, endsAt: undefined });
      await issueCoupon(deps, couponId, user);
      await drainCoupon(deps, couponId, forever);
    }
    const page = await listUserCoupons(deps, user);
    expect(page.items.map((i) => i.couponId).sort()).toEqual([...coupons].sort());
    expect(page.items.every((i) => i.ticket === 1 && !Number.isNaN(Date.parse(i.issuedAt)))).toBe(true);
    const first = await listUserCoupons(deps, user, { limit: 1 });
    expect(first.items).toHaveLength(1);
    const second = await listUserCoupons(deps, user, { limit: 1, cursor: first.cursor });
    expect(second.items[0]?.couponId).not.toBe(first.items[0]?.couponId);
    await expect(listUserCoupons(deps, 'someone-else', { cursor: first.cursor })).rejects.toThrow(InvalidInputError);
  });

  it("restores a coupon's Redis state from the ledger when Redis has lost it", async () => {
    const deps = testDeps();
    const couponId = uniqueCouponId();
    await createCoupon(deps, { couponId, name: 'n', totalQuantity: 3, startsAt: undefined, endsAt: undefined });
    await issueCoupon(deps, couponId, 'u1');
    await drainCoupon(deps, couponId, forever);
    await deps.redis.del(...Object.values(deps.store.keys(couponId)));

    expect(await issueCoupon(deps, couponId, 'u1')).toMatchObject({ kind: 'ALREADY_ACCEPTED', status: 'ISSUED', ticket: 1 });
    expect(await issueCoupon(deps, couponId, 'u2')).toEqual({ kind: 'ACCEPTED', ticket: 2 });
    expect((await getCouponView(deps, couponId))?.remaining).toBe(1);
  });
});
