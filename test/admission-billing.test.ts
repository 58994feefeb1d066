/**
 * What each answer costs in Upstash's billed commands (the EVALSHA and every call inside it), counted by a
 * gateway of this file's own, and which answers a container gives without Redis at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoupon } from '../lib/coupons/campaigns.js';
import { issueCoupon } from '../lib/coupons/issue.js';
import { drainCoupon } from '../lib/drain/drain.js';
import { freePort } from '../localstack/processes.js';
import { startGateway, type Gateway } from '../localstack/upstash-gateway.js';
import { scenarioDeps } from './faults/scenarios.js';
import { defaultAdmission, defaultDrain, forever, services, sleep, uniqueCouponId } from './support/deps.js';
import { setRemaining } from './support/redis-state.js';
import { CouponCache } from '../lib/coupons/coupon-cache.js';
import { DecisionTally } from '../lib/coupons/decision-tally.js';
import { LiveViews, readLiveView } from '../lib/coupons/live-view.js';

let gateway: Gateway;
beforeAll(async () => {
  gateway = await startGateway({ port: await freePort(), redisPort: services().redisPort, token: 'billing-test' });
  // A database's first call of a script is a NOSCRIPT, then an EVAL: every count below is after it.
  const d = deps();
  const couponId = await coupon(d, 1);
  await d.store.admit(couponId, 'warm-up', open);
  await d.store.readWinners(couponId);
  await drainCoupon(d, couponId, forever);
  await readLiveView(d, couponId);
});
afterAll(() => gateway.close());

/** Deps on the counting gateway; a fresh container (cache) unless one is given. */
function deps(admission: Partial<typeof defaultAdmission> = {}) {
  const settings = { ...defaultAdmission, ...admission };
  return scenarioDeps(
    { ...services(), gatewayUrl: gateway.url, gatewayToken: 'billing-test' },
    `bill${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
    {
      drain: defaultDrain,
      admission: settings,
      cache: new CouponCache(settings),
      // The live page's reports (one HSET per coupon and second) are billed on their own, below.
      tally: new DecisionTally(Number.POSITIVE_INFINITY),
    },
  );
}

/** Billed commands of one call. */
async function billed<T>(call: () => Promise<T>): Promise<{ result: T; commands: number }> {
  gateway.resetBilling();
  const result = await call();
  return { result, commands: gateway.billing().commands };
}

async function coupon(d: ReturnType<typeof deps>, totalQuantity: number, startsAt?: number, endsAt?: number): Promise<string> {
  const couponId = uniqueCouponId('bill');
  await createCoupon(d, { couponId, name: 'billing', totalQuantity, startsAt, endsAt });
  return couponId;
}

const open = { triggerLeaseMs: 10_000 };

describe('admit.lua: billed commands per answer (the EVALSHA and every call inside it)', () => {
  it("a winner: 4 by the container clock, 5 when Redis' clock decides (near startsAt or endsAt)", async () => {
    const d = deps();
    const couponId = await coupon(d, 10);
    expect(await billed(() => d.store.admit(couponId, 'a', { ...open, clock: { kind: 'container', now: Date.now() } }))).toMatchObject({
      result: { reply: { kind: 'ACCEPTED' } },
      commands: 4,
    });
    expect(await billed(() => d.store.admit(couponId, 'b', { ...open, clock: { kind: 'redis' } }))).toMatchObject({
      result: { reply: { kind: 'ACCEPTED' } },
      commands: 5,
    });
  });

  it("a refusal: 2 (a repeat, SOLD_OUT, NOT_OPEN by Redis' clock just before the opening)", async () => {
    const d = deps();
    const couponId = await coupon(d, 1);
    await d.store.admit(couponId, 'winner', open);
    expect(await billed(() => d.store.admit(couponId, 'winner', open))).toMatchObject({ result: { reply: { kind: 'ALREADY_ACCEPTED' } }, commands: 2 });
    expect(await billed(() => d.store.admit(couponId, 'late', open))).toMatchObject({ result: { reply: { kind: 'SOLD_OUT' } }, commands: 2 });
    const startsAt = Date.now() + 60_000;
    const later = await coupon(d, 5, startsAt);
    expect(await billed(() => d.store.admit(later, 'early', { ...open, clock: { kind: 'redis-first', startsAt } }))).toMatchObject({
      result: { reply: { kind: 'NOT_OPEN' } },
      commands: 2,
    });
  });
});

describe('a container answers what cannot change anything without Redis', () => {
  it('long before the opening: NOT_OPEN for 0 commands, once it has learned the coupon (its first request costs 3)', async () => {
    const d = deps();
    const startsAt = Date.now() + 60_000;
    const couponId = await coupon(d, 5, startsAt);
    expect(await billed(() => issueCoupon(d, couponId, 'u1'))).toEqual({ result: { kind: 'NOT_OPEN', startsAt }, commands: 3 });
    for (let i = 0; i < 5; i++) expect(await billed(() => issueCoupon(d, couponId, `u${i}`))).toEqual({ result: { kind: 'NOT_OPEN', startsAt }, commands: 0 });
  });

  it('after the end: ENDED for 0 commands', async () => {
    const d = deps();
    const couponId = await coupon(d, 5, Date.now() - 60_000, Date.now() + 1_500);
    expect((await issueCoupon(d, couponId, 'u1')).kind).toBe('ACCEPTED');
    await sleep(1_600);
    expect(await billed(() => issueCoupon(d, couponId, 'u2'))).toMatchObject({ result: { kind: 'ENDED' } });
    // Within the clock margin after the end, Redis' clock decides; past it, the container does.
    await sleep(defaultAdmission.clockMarginMs);
    expect(await billed(() => issueCoupon(d, couponId, 'u3'))).toEqual({ result: { kind: 'ENDED' }, commands: 0 });
  });

  it('once sold out: SOLD_OUT to anyone who never won, for 0 commands; a winner asking again still gets their exact status from Redis', async () => {
    const d = deps();
    const couponId = await coupon(d, 2);
    for (const user of ['w1', 'w2']) expect((await issueCoupon(d, couponId, user)).kind).toBe('ACCEPTED');
    // The last winner's answer showed no unit left; the next request reads who won, once (3 commands).
    const first = await billed(() => issueCoupon(d, couponId, 'late0'));
    expect(first.result).toEqual({ kind: 'SOLD_OUT' });
    for (let i = 1; i <= 20; i++) expect(await billed(() => issueCoupon(d, couponId, `late${i}`))).toEqual({ result: { kind: 'SOLD_OUT' }, commands: 0 });
    expect(await billed(() => issueCoupon(d, couponId, 'w1'))).toEqual({
      result: { kind: 'ALREADY_ACCEPTED', ticket: 1, status: 'PENDING', issuedAt: undefined },
      commands: 2,
    });
    await drainCoupon(d, couponId, forever);
    expect((await issueCoupon(d, couponId, 'w1')).kind === 'ALREADY_ACCEPTED' && (await issueCoupon(d, couponId, 'w2'))).toMatchObject({ status: 'ISSUED' });
  });

  it('a unit that becomes free again is sold once the container asks Redis again (after SOLD_OUT_RECHECK_MS)', async () => {
    const d = deps({ soldOutRecheckMs: 500 });
    const couponId = await coupon(d, 1);
    expect((await issueCoupon(d, couponId, 'w1')).kind).toBe('ACCEPTED');
    expect(await issueCoupon(d, couponId, 'late1')).toEqual({ kind: 'SOLD_OUT' });
    // Reconcile (or a ledger refusal) frees a unit.
    await setRemaining(d, couponId, 1);
    expect(await billed(() => issueCoupon(d, couponId, 'late2'))).toEqual({ result: { kind: 'SOLD_OUT' }, commands: 0 });
    await sleep(600);
    expect(await issueCoupon(d, couponId, 'late3')).toMatchObject({ kind: 'ACCEPTED' });
    expect(await issueCoupon(d, couponId, 'late4')).toEqual({ kind: 'SOLD_OUT' });
  });
});

describe('the drain: billed commands per batch, not per item', () => {
  /** Queue `winners` winners of a fresh coupon, then bill one drain of it. */
  async function drainBill(winners: number): Promise<{ commands: number; issued: number }> {
    const d = deps();
    const couponId = await coupon(d, winners);
    for (let i = 0; i < winners; i++) await d.store.admit(couponId, `w${i}`, open);
    const { result, commands } = await billed(() => drainCoupon(d, couponId, forever));
    return { commands, issued: result.issued };
  }

  it('claiming and acknowledging 99 items costs what 1 item costs (variadic commands, no call per item)', async () => {
    const one = await drainBill(1);
    const full = await drainBill(defaultDrain.batchSize);
    expect(one.issued).toBe(1);
    expect(full.issued).toBe(defaultDrain.batchSize);
    expect(full.commands).toBe(one.commands);
  });

  it('expired claims go back to the queue for a constant number of commands', async () => {
    const bill = async (items: number) => {
      const d = deps();
      const couponId = await coupon(d, items);
      for (let i = 0; i < items; i++) await d.store.admit(couponId, `w${i}`, open);
      await d.store.claim(couponId, { ...defaultDrain, claimLeaseMs: 1 });
      await sleep(5);
      const { result, commands } = await billed(() => d.store.claim(couponId, { ...defaultDrain, batchSize: 1 }));
      expect(result.requeued).toBe(items);
      return commands;
    };
    expect(await bill(50)).toBe(await bill(1));
  });
});

describe('the live operator page: what watching a drop costs', () => {
  it('a container reports its answers with one HSET per coupon and interval, sent with a request, never one per request', async () => {
    const d = { ...deps(), tally: new DecisionTally(60_000) };
    const couponId = await coupon(d, 5);
    // A container's first request on a coupon asks Redis' clock (5 commands); nothing to report yet.
    expect(await billed(() => issueCoupon(d, couponId, 'w1'))).toMatchObject({ result: { kind: 'ACCEPTED' }, commands: 5 });
    // The next request carries the report (its own 2 commands, and the HSET); the ones after it, none.
    expect(await billed(() => issueCoupon(d, couponId, 'w1'))).toMatchObject({ result: { kind: 'ALREADY_ACCEPTED' }, commands: 3 });
    for (let i = 0; i < 5; i++) expect(await billed(() => issueCoupon(d, couponId, 'w1'))).toMatchObject({ commands: 2 });
    // The report went with the second request: it holds what was answered before it.
    const view = await readLiveView(d, couponId);
    expect(view).toMatchObject({ decisions: { ACCEPTED: 1, ALREADY_ACCEPTED: 0 }, containers: { reported: 1, recent: 1 } });
  });

  it('every viewer of a container shares one reading a second: one EVALSHA per shard, whoever watches', async () => {
    const d = deps();
    const couponId = await coupon(d, 5);
    const views = new LiveViews(d);
    const one = await billed(() => readLiveView(d, couponId));
    const many = await billed(() => Promise.all(Array.from({ length: 20 }, () => views.get(couponId))));
    expect(many.commands).toBe(one.commands);
    expect(new Set(many.result.map((view) => view?.readAt)).size).toBe(1);
    expect(one.commands).toBeLessThanOrEqual(12);
  });
});
