/**
 * Interleavings of recovery paths (rebuilds, outages, retries) with live drains and admissions, on real
 * redis-server and DynamoDB Local. Each case once left users stuck or answered wrongly.
 */
import { describe, expect, it, vi } from 'vitest';
import { metrics } from '../lib/metrics.js';
import { createCoupon, getAdminCouponView } from '../lib/coupons/campaigns.js';
import { restoreCouponState } from '../lib/coupons/coupon-state.js';
import { issueCoupon } from '../lib/coupons/issue.js';
import { reconcileCoupon } from '../lib/coupons/reconcile.js';
import { getUserCouponStatus } from '../lib/coupons/user-coupons.js';
import { drainAll, drainCoupon, persistClaim } from '../lib/drain/drain.js';
import type { Ledger } from '../lib/ledger/ledger.js';
import type { Claim } from '../lib/redis/coupon-store.js';
import { forever, testDeps, uniqueCouponId, withLedger, withStore } from './support/deps.js';

type TestDeps = ReturnType<typeof testDeps>;

async function newCoupon(deps: TestDeps, totalQuantity: number) {
  const couponId = uniqueCouponId('hole');
  await createCoupon(deps, { couponId, name: 'holes', totalQuantity, startsAt: undefined, endsAt: undefined });
  return couponId;
}

const claimAll = (deps: TestDeps, couponId: string) => deps.store.claim(couponId, { ...deps.drain, batchSize: 99 });

/** Redis loses everything it held about the coupon (a flush, a failover to an empty replica). */
async function loseRedisState(deps: TestDeps, couponId: string): Promise<void> {
  await deps.redis.del(...Object.values(deps.store.keys(couponId)));
}

/** Every ledger issuance of the coupon: userId -> ticket. */
async function ledgerTickets(deps: TestDeps, couponId: string): Promise<Map<string, number>> {
  const tickets = new Map<string, number>();
  for await (const page of deps.ledger.issuancesOf(couponId)) for (const item of page) tickets.set(item.userId, item.ticket);
  return tickets;
}

/**
 * A drain that claimed a batch before Redis lost the coupon's state writes it while a rebuild scans the
 * ledger: right after the scan's first page. The rebuild goes on as soon as the drain's ledger write has
 * returned (the drain is another Lambda: nobody waits for the rest of its work); both are awaited.
 */
async function rebuildWhileDrainCommits(deps: TestDeps, couponId: string, held: Claim): Promise<void> {
  let written!: () => void;
  const writeReturned = new Promise<void>((resolve) => (written = resolve));
  const drainDeps = withLedger(deps, {
    persistBatch: ((...args) => deps.ledger.persistBatch(...args).finally(written)) as Ledger['persistBatch'],
  });
  let drainWork: Promise<unknown> | undefined;
  const rebuildDeps = withLedger(deps, {
    async *issuancesOf(id: string) {
      for await (const page of deps.ledger.issuancesOf(id)) {
        yield page;
        if (!drainWork) {
          drainWork = persistClaim(drainDeps, couponId, held);
          await writeReturned;
        }
      }
    },
  });
  await restoreCouponState(rebuildDeps, couponId);
  await drainWork;
}

/** After everything is drained: the ledger's winners are exactly Redis' ISSUED winners, with the same tickets. */
async function expectLedgerAndRedisAgree(deps: TestDeps, couponId: string): Promise<Map<string, number>> {
  const inLedger = await ledgerTickets(deps, couponId);
  for (const [userId, ticket] of inLedger) {
    expect(await getUserCouponStatus(deps, couponId, userId), `${userId} is in the ledger`).toMatchObject({ kind: 'FOUND', status: 'ISSUED', ticket });
  }
  const snapshot = (await deps.store.snapshot(couponId))!;
  const issuedInRedis = [...snapshot.winners].filter(([, w]) => w.outcome?.kind === 'ISSUED').map(([userId]) => userId);
  expect(issuedInRedis.sort()).toEqual([...inLedger.keys()].sort());
  return inLedger;
}

const distinct = (values: Iterable<number>) => {
  const list = [...values];
  return new Set(list).size === list.length;
};

describe('a rebuild racing a committing drain', () => {
  it("restores that drain's winners with their tickets: they read ISSUED, asking again is ALREADY_ACCEPTED, every free unit sells and the coupon finishes", async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 5);
    await issueCoupon(deps, couponId, 'u1');
    await drainCoupon(deps, couponId, forever);
    await issueCoupon(deps, couponId, 'u2');
    await issueCoupon(deps, couponId, 'u3');
    const held = await claimAll(deps, couponId);
    expect(held.items.map((i) => i.userId)).toEqual(['u2', 'u3']);

    await loseRedisState(deps, couponId);
    await rebuildWhileDrainCommits(deps, couponId, held);
    await drainCoupon(deps, couponId, forever);

    for (const userId of ['u2', 'u3']) {
      expect(await getUserCouponStatus(deps, couponId, userId)).toMatchObject({ kind: 'FOUND', status: 'ISSUED' });
      expect(await issueCoupon(deps, couponId, userId)).toMatchObject({ kind: 'ALREADY_ACCEPTED', status: 'ISSUED' });
    }
    // Three of five units are taken: exactly two newcomers win, then it is sold out.
    const newcomers = [];
    for (const userId of ['n1', 'n2', 'n3', 'n4']) newcomers.push((await issueCoupon(deps, couponId, userId)).kind);
    expect(newcomers).toEqual(['ACCEPTED', 'ACCEPTED', 'SOLD_OUT', 'SOLD_OUT']);
    await drainCoupon(deps, couponId, forever);

    const tickets = await expectLedgerAndRedisAgree(deps, couponId);
    expect([...tickets.keys()].sort()).toEqual(['n1', 'n2', 'u1', 'u2', 'u3']);
    expect(distinct(tickets.values())).toBe(true);
    expect(await deps.ledger.getCoupon(couponId, true)).toMatchObject({ issuedCount: 5, status: 'FINISHED' });
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ status: 'FINISHED', remaining: 0, queued: 0, inflight: 0 });
  });
});

describe('tickets after a rebuild', () => {
  it('are never given to two users, even when a batch claimed before the loss is written after the rebuild', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 5);
    await issueCoupon(deps, couponId, 'u1');
    await drainCoupon(deps, couponId, forever);
    await issueCoupon(deps, couponId, 'u2');
    await issueCoupon(deps, couponId, 'u3');
    const held = await claimAll(deps, couponId);

    await loseRedisState(deps, couponId);
    // Newcomers arrive after the loss: the first one rebuilds the state from the ledger.
    expect((await issueCoupon(deps, couponId, 'n1')).kind).toBe('ACCEPTED');
    expect((await issueCoupon(deps, couponId, 'n2')).kind).toBe('ACCEPTED');
    // Only now does the drain that held u2 and u3 write them.
    await persistClaim(deps, couponId, held);
    await drainCoupon(deps, couponId, forever);

    const tickets = await expectLedgerAndRedisAgree(deps, couponId);
    expect(distinct(tickets.values())).toBe(true);
    const snapshot = (await deps.store.snapshot(couponId))!;
    expect(distinct([...snapshot.winners.values()].map((w) => w.ticket))).toBe(true);
  });
});

describe('a ledger outage that outlasts several drain runs', () => {
  const outage = () => Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });

  it('costs no item an attempt, dead-letters nobody, and everything is persisted once the ledger is back', async () => {
    const deps = testDeps({ drain: { maxAttempts: 2, backoffBaseMs: 50, backoffMaxMs: 200 } });
    const couponId = await newCoupon(deps, 20);
    for (let i = 0; i < 10; i++) await issueCoupon(deps, couponId, `u${i}`);
    const recorded = vi.spyOn(metrics, 'addMetric');
    let down = true;
    let failedCalls = 0;
    const flaky = withLedger(deps, {
      persistBatch: ((...args) => {
        if (!down) return deps.ledger.persistBatch(...args);
        failedCalls += 1;
        return Promise.reject(outage());
      }) as Ledger['persistBatch'],
    });
    // Five runs during the outage, each with a few seconds of its own (as scheduled runs would be).
    for (let run = 0; run < 5; run++) {
      const until = Date.now() + 1_500;
      await drainCoupon(flaky, couponId, () => until - Date.now());
    }
    expect(failedCalls).toBeGreaterThan(2);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ deadLettered: 0, queued: 10, inflight: 0 });
    // Operators see the outage as LedgerFailures: every failed write of the 10 winners, none as dead letters.
    expect(recorded.mock.calls.filter(([name]) => name === 'LedgerFailures').reduce((sum, [, , value]) => sum + Number(value), 0)).toBe(10 * failedCalls);
    expect(recorded.mock.calls.filter(([name]) => name === 'DrainDeadLettered')).toEqual([]);
    recorded.mockRestore();

    down = false;
    await drainCoupon(flaky, couponId, forever);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ deadLettered: 0, queued: 0, inflight: 0, issued: 10 });
    for (let i = 0; i < 10; i++) expect(await getUserCouponStatus(deps, couponId, `u${i}`)).toMatchObject({ status: 'ISSUED' });
  });

  it('backs off: a drain started while another backs off from a failed write makes no ledger call', async () => {
    const deps = testDeps({ drain: { backoffBaseMs: 10_000, backoffMaxMs: 10_000 } });
    const couponId = await newCoupon(deps, 20);
    for (let i = 0; i < 3; i++) await issueCoupon(deps, couponId, `u${i}`);
    let calls = 0;
    const down = withLedger(deps, {
      persistBatch: (() => {
        calls += 1;
        return Promise.reject(outage());
      }) as Ledger['persistBatch'],
    });
    // The first run fails once, and has too little time left to wait out the back-off.
    const until = Date.now() + 3_000;
    await drainCoupon(down, couponId, () => until - Date.now());
    expect(calls).toBe(1);
    // Admissions keep starting drains meanwhile: they wait for the back-off instead of retrying at once.
    for (let run = 0; run < 3; run++) await drainCoupon(down, couponId, () => 2_000);
    expect(calls).toBe(1);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ deadLettered: 0, queued: 3 });
  });
});

describe('the schedule and a coupon being restored', () => {
  it('a scheduled run that finds no state while a restore indexes and loads the coupon does not forget it', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 5);
    await issueCoupon(deps, couponId, 'u1');
    await drainCoupon(deps, couponId, forever);
    await loseRedisState(deps, couponId);
    // The scheduled run has found no state for the coupon; before it acts on that, a request restores
    // the coupon (indexes it and loads its state).
    const schedulerStore = Object.assign(Object.create(deps.store), {
      async forgetCoupon(id: string, why: 'SETTLED' | 'STATELESS') {
        await restoreCouponState(deps, id);
        return deps.store.forgetCoupon(id, why);
      },
    });
    await drainAll(withStore(deps, schedulerStore), forever);
    expect(await deps.store.readCounters(couponId)).toMatchObject({ remaining: 4 });
    expect(await deps.store.listCoupons()).toContain(couponId);
  });
});

describe('reconcile while a drop runs', () => {
  it('reports nothing on a healthy coupon whose drains commit between its Redis snapshot and its ledger scan', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 10);
    for (const userId of ['a', 'b']) await issueCoupon(deps, couponId, userId);
    let acknowledging: Promise<unknown> | undefined;
    const store = Object.assign(Object.create(deps.store), {
      async snapshot(id: string) {
        const snapshot = await deps.store.snapshot(id);
        // Right after the snapshot: a drain writes a and b and acknowledges them a moment later (a
        // drain's ack follows its write by milliseconds; here 200), and a newcomer c is admitted and
        // persisted from start to end.
        const claim = await claimAll(deps, couponId);
        const written = await deps.ledger.persistBatch(couponId, 10, claim.items, claim.epoch);
        acknowledging = new Promise((resolve) => setTimeout(resolve, 200)).then(() => deps.store.acknowledge(couponId, written.decisions));
        await issueCoupon(deps, couponId, 'c');
        await drainCoupon(deps, couponId, forever);
        return snapshot;
      },
    });
    const report = await reconcileCoupon(withStore(deps, store), couponId, { dryRun: true });
    await acknowledging;
    expect(report?.summary).toEqual({});
    expect(report?.retry).toBe(false);
    const settled = await reconcileCoupon(deps, couponId, { dryRun: true });
    expect(settled?.summary).toEqual({});
    expect(settled).toMatchObject({ retry: false, redis: { winners: 3, issued: 3 } });
  });
});

describe('a retried create', () => {
  const definition = (couponId: string) => ({ couponId, name: 'retried', totalQuantity: 7, startsAt: undefined, endsAt: undefined });

  it('answers CREATED with the coupon to a retry of an identical create, and loads Redis if the first attempt did not', async () => {
    const deps = testDeps();
    const couponId = uniqueCouponId('retry');
    // The first attempt writes the ledger's META and fails before Redis is loaded.
    const failingStore = Object.assign(Object.create(deps.store), {
      loadCoupon: async () => Promise.reject(new Error('Redis unavailable')),
    });
    await expect(createCoupon(withStore(deps, failingStore), definition(couponId))).rejects.toThrow('Redis unavailable');
    expect(await deps.store.readCounters(couponId)).toBeUndefined();

    const retried = await createCoupon(deps, definition(couponId));
    expect(retried).toMatchObject({ kind: 'CREATED', coupon: { couponId, name: 'retried', totalQuantity: 7, remaining: 7 } });
    expect(await deps.store.readCounters(couponId)).toMatchObject({ total: 7, remaining: 7 });
    // A second retry, once everything is loaded, is answered the same.
    expect(await createCoupon(deps, definition(couponId))).toMatchObject({ kind: 'CREATED', coupon: { couponId } });
  });

  it('keeps answering COUPON_EXISTS to a different definition under an existing id', async () => {
    const deps = testDeps();
    const couponId = uniqueCouponId('retry');
    await createCoupon(deps, definition(couponId));
    expect(await createCoupon(deps, { ...definition(couponId), totalQuantity: 8 })).toEqual({ kind: 'COUPON_EXISTS' });
    expect(await createCoupon(deps, { ...definition(couponId), name: 'other' })).toEqual({ kind: 'COUPON_EXISTS' });
    expect(await createCoupon(deps, { ...definition(couponId), endsAt: Date.now() + 3_600_000 })).toEqual({ kind: 'COUPON_EXISTS' });
  });
});
