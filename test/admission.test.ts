import { describe, expect, it } from 'vitest';
import { createCoupon } from '../lib/coupons/campaigns.js';
import { issueCoupon } from '../lib/coupons/issue.js';
import { drainCoupon } from '../lib/drain/drain.js';
import { forever, sleep, testDeps, uniqueCouponId } from './support/deps.js';

const deps = testDeps();
const { store } = deps;
const hour = 3_600_000;
const open = { triggerLeaseMs: 10_000 };
/** admit.lua's answer, decided by Redis' clock (as for a container that knows nothing of the coupon yet). */
const admit = async (...args: Parameters<typeof store.admit>) => (await store.admit(...args)).reply;

async function loadState(couponId: string, state: Partial<{ total: number; remaining: number; startsAt: number; endsAt: number }>) {
  const total = state.total ?? 10;
  await store.loadCoupon(couponId, {
    total,
    remaining: state.remaining ?? total,
    seq: 0,
    startsAt: state.startsAt ?? Date.now() - hour,
    endsAt: state.endsAt ?? 0,
    epoch: 0,
    shard: 0,
    shards: 1,
  });
}

describe('admit.lua: every outcome of an issue request', () => {
  it('answers COUPON_NOT_FOUND when the coupon has no state', async () => {
    expect(await admit(uniqueCouponId(), 'u1', open)).toEqual({ kind: 'COUPON_NOT_FOUND' });
  });

  it('answers NOT_OPEN with the start time before startsAt, and takes nothing', async () => {
    const couponId = uniqueCouponId();
    const startsAt = Date.now() + hour;
    await loadState(couponId, { startsAt });
    expect(await admit(couponId, 'u1', open)).toEqual({ kind: 'NOT_OPEN', startsAt });
    expect((await store.readCounters(couponId))?.remaining).toBe(10);
    expect((await store.readCounters(couponId))?.queued).toBe(0);
  });

  it('answers ENDED after endsAt, and takes nothing', async () => {
    const couponId = uniqueCouponId();
    await loadState(couponId, { startsAt: Date.now() - 2 * hour, endsAt: Date.now() - hour });
    expect(await admit(couponId, 'u1', open)).toEqual({ kind: 'ENDED' });
    expect((await store.readCounters(couponId))?.remaining).toBe(10);
  });

  it('opens exactly at startsAt by Redis time', async () => {
    const couponId = uniqueCouponId();
    await loadState(couponId, { startsAt: Date.now() + 400 });
    expect((await admit(couponId, 'u1', open)).kind).toBe('NOT_OPEN');
    await sleep(600);
    expect((await admit(couponId, 'u1', open)).kind).toBe('ACCEPTED');
  });

  it('gives tickets 1, 2, 3 in arrival order, queues winners by ticket, and decrements remaining', async () => {
    const couponId = uniqueCouponId();
    await loadState(couponId, { total: 3 });
    const replies = [];
    for (const user of ['a', 'b', 'c']) replies.push(await admit(couponId, user, open));
    expect(replies.map((r) => (r.kind === 'ACCEPTED' ? r.ticket : r.kind))).toEqual([1, 2, 3]);
    const counters = await store.readCounters(couponId);
    expect(counters).toMatchObject({ remaining: 0, seq: 3, queued: 3 });
    expect(await deps.redis.zrange(store.keys(couponId).queue, 0, -1)).toEqual(['a', 'b', 'c']);
  });

  it('answers SOLD_OUT when no unit is left, and a repeat by a winner is still ALREADY_ACCEPTED', async () => {
    const couponId = uniqueCouponId();
    await loadState(couponId, { total: 1 });
    expect((await admit(couponId, 'winner', open)).kind).toBe('ACCEPTED');
    expect(await admit(couponId, 'late', open)).toEqual({ kind: 'SOLD_OUT' });
    expect(await admit(couponId, 'winner', open)).toEqual({
      kind: 'ALREADY_ACCEPTED',
      ticket: 1,
      status: 'PENDING',
      issuedAt: undefined,
    });
    expect((await store.readCounters(couponId))?.remaining).toBe(0);
  });

  it('a double click never takes a second unit nor a second ticket', async () => {
    const couponId = uniqueCouponId();
    await loadState(couponId, { total: 5 });
    const replies = await Promise.all(Array.from({ length: 20 }, () => admit(couponId, 'clicker', open)));
    expect(replies.filter((r) => r.kind === 'ACCEPTED')).toHaveLength(1);
    expect(replies.filter((r) => r.kind === 'ALREADY_ACCEPTED')).toHaveLength(19);
    expect((await store.readCounters(couponId))?.remaining).toBe(4);
  });

  it('asks the first winner to start a drain and no one else while the drain mark lives', async () => {
    const couponId = uniqueCouponId();
    await loadState(couponId, { total: 5 });
    const first = await admit(couponId, 'a', open);
    const second = await admit(couponId, 'b', open);
    expect(first).toMatchObject({ kind: 'ACCEPTED', startDrain: true });
    expect(second).toMatchObject({ kind: 'ACCEPTED', startDrain: false });
  });

  it('a winner persisted by the drain is answered ALREADY_ACCEPTED with status ISSUED', async () => {
    const couponId = uniqueCouponId();
    await createCoupon(deps, { couponId, name: 'n', totalQuantity: 2, startsAt: undefined, endsAt: undefined });
    expect(await issueCoupon(deps, couponId, 'u1')).toEqual({ kind: 'ACCEPTED', ticket: 1 });
    await drainCoupon(deps, couponId, forever);
    const repeat = await issueCoupon(deps, couponId, 'u1');
    expect(repeat).toMatchObject({ kind: 'ALREADY_ACCEPTED', ticket: 1, status: 'ISSUED' });
    expect(repeat.kind === 'ALREADY_ACCEPTED' && repeat.issuedAt).toBeGreaterThan(0);
  });

  it('starts a drain through the trigger when an admission finds none running', async () => {
    const started: string[] = [];
    const triggered = testDeps({ trigger: { start: async (id) => void started.push(id) } });
    const couponId = uniqueCouponId();
    await createCoupon(triggered, { couponId, name: 'n', totalQuantity: 5, startsAt: undefined, endsAt: undefined });
    await issueCoupon(triggered, couponId, 'u1');
    await issueCoupon(triggered, couponId, 'u2');
    expect(started).toEqual([couponId]);
  });
});
