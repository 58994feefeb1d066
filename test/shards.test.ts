/**
 * One coupon spread over three Upstash databases (three real redis-servers, each behind its own gateway):
 * routing, stock split and rebalanced without ever creating a unit, interrupted transfers completed,
 * one shard losing its state, and sold out exactly with every shard's outcome checked against the ledger.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { metrics } from '../lib/metrics.js';
import { createCoupon, getAdminCouponView } from '../lib/coupons/campaigns.js';
import { restoreCouponState } from '../lib/coupons/coupon-state.js';
import { issueCoupon, type IssueOutcome } from '../lib/coupons/issue.js';
import { completeTransfers, refillShard } from '../lib/coupons/rebalance.js';
import { reconcileCoupon } from '../lib/coupons/reconcile.js';
import { getUserCouponStatus } from '../lib/coupons/user-coupons.js';
import { drainAll } from '../lib/drain/drain.js';
import { UnavailableError } from '../lib/errors.js';
import { createSdkRedis } from '../localstack/upstash-sdk.js';
import { initialShare, shardOf } from '../lib/redis/shards.js';
import { ownRedis, scenarioDeps, settle, type ScenarioDeps } from './faults/scenarios.js';
import { defaultAdmission, defaultDrain, services, uniqueCouponId } from './support/deps.js';

const SHARDS = 3;
let databases: Awaited<ReturnType<typeof ownRedis>>[] = [];

beforeAll(async () => {
  databases = await Promise.all(Array.from({ length: SHARDS }, () => ownRedis(services())));
}, 120_000);
afterAll(() => Promise.all(databases.map((db) => db.close())));

/** Deps over the three databases; each call is a new container (its own cache) of one deployment. */
const PREFIX = `sh${Math.random().toString(36).slice(2, 8)}`;
function deps(): ScenarioDeps {
  return scenarioDeps(
    services(),
    PREFIX,
    { drain: { ...defaultDrain, lingerMs: 0 }, admission: defaultAdmission },
    {
      databases: databases.map((db) => ({ url: db.services.gatewayUrl, token: db.services.gatewayToken })),
      redisTimeoutMs: 20_000,
    },
  );
}

async function coupon(d: ScenarioDeps, totalQuantity: number): Promise<string> {
  const couponId = uniqueCouponId('shard');
  await createCoupon(d, { couponId, name: 'sharded', totalQuantity, startsAt: undefined, endsAt: undefined });
  return couponId;
}

/** Users whose shard is `shard`, named prefix0, prefix1, ... (skipping the others). */
function usersOf(shard: number, count: number, prefix = `s${shard}u`): string[] {
  const users: string[] = [];
  for (let i = 0; users.length < count; i++) if (shardOf(`${prefix}${i}`, SHARDS) === shard) users.push(`${prefix}${i}`);
  return users;
}

async function remainingByShard(d: ScenarioDeps, couponId: string): Promise<number[]> {
  return Promise.all(d.shards.stores.map(async (store) => (await store.readCounters(couponId))!.remaining));
}

/** After settling: every shard's winners are exactly the ledger's issuances of its users, tickets included. */
async function expectShardsAgreeWithLedger(d: ScenarioDeps, couponId: string): Promise<Map<string, number>> {
  const inLedger = new Map<string, number>();
  for await (const page of d.ledger.issuancesOf(couponId)) for (const item of page) inLedger.set(item.userId, item.ticket);
  for (const [shard, store] of d.shards.stores.entries()) {
    const snapshot = (await store.snapshot(couponId))!;
    const issued = [...snapshot.winners].filter(([, w]) => w.outcome?.kind === 'ISSUED').map(([u, w]) => [u, w.ticket] as const);
    const expected = [...inLedger].filter(([u]) => shardOf(u, SHARDS) === shard);
    expect(new Map(issued), `shard ${shard}`).toEqual(new Map(expected));
  }
  expect(new Set(inLedger.values()).size, 'tickets held twice').toBe(inLedger.size);
  return inLedger;
}

describe('routing', () => {
  it('sends a user to the same shard every time, and spreads users over all shards', () => {
    expect(shardOf('alice', 3)).toBe(shardOf('alice', 3));
    const counts = [0, 0, 0];
    for (let i = 0; i < 3_000; i++) counts[shardOf(`user-${i}`, 3)]! += 1;
    for (const count of counts) expect(count).toBeGreaterThan(850);
    expect([0, 1, 2].map((i) => initialShare(10, 3, i))).toEqual([4, 3, 3]);
  });
});

describe('one coupon over three shards', () => {
  it('splits the units when the coupon is created, and interleaves tickets so that no two shards give the same', async () => {
    const d = deps();
    const couponId = await coupon(d, 10);
    expect(await remainingByShard(d, couponId)).toEqual([4, 3, 3]);
    const tickets: number[] = [];
    for (let shard = 0; shard < SHARDS; shard++) {
      for (const user of usersOf(shard, 2)) {
        const outcome = await issueCoupon(d, couponId, user);
        if (outcome.kind === 'ACCEPTED') tickets.push(outcome.ticket);
      }
    }
    expect(tickets.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await getAdminCouponView(d, couponId)).toMatchObject({ remaining: 4, queued: 6 });
  });

  it('refills a shard that runs out from the others, so that the coupon sells out exactly, and never answers SOLD_OUT while a unit is left', async () => {
    const d = deps();
    const couponId = await coupon(d, 9);
    const recorded = vi.spyOn(metrics, 'addMetric');
    // Every user on shard 0: its 3 units, then units pulled from shards 1 and 2.
    const outcomes: IssueOutcome[] = [];
    for (const user of usersOf(0, 12)) outcomes.push(await issueCoupon(d, couponId, user));
    expect(outcomes.map((o) => o.kind)).toEqual([...Array(9).fill('ACCEPTED'), 'SOLD_OUT', 'SOLD_OUT', 'SOLD_OUT']);
    // Each transfer into shard 0 is counted once for the operators (half of the richest shard each time).
    expect(recorded.mock.calls.filter(([name]) => name === 'ShardRefills').length).toBeGreaterThanOrEqual(2);
    recorded.mockRestore();
    expect(await remainingByShard(d, couponId)).toEqual([0, 0, 0]);
    await settle(d, couponId);
    await drainAll(d, () => 60_000);
    expect((await expectShardsAgreeWithLedger(d, couponId)).size).toBe(9);
    expect(await d.ledger.getCoupon(couponId, true)).toMatchObject({ issuedCount: 9, status: 'FINISHED' });
  });

  it('two shards running out at once while the third has units: both are refilled, no unit is created, the coupon sells out exactly', async () => {
    const d = deps();
    const couponId = await coupon(d, 30);
    // Shards 0 and 1 each sell their 10 and keep being asked, concurrently, by users of their own.
    const users = [...usersOf(0, 25), ...usersOf(1, 25)];
    const containers = [deps(), deps(), deps(), deps()];
    const outcomes = await Promise.all(users.map((user, i) => issueCoupon(containers[i % containers.length]!, couponId, user)));
    const accepted = outcomes.filter((o) => o.kind === 'ACCEPTED').length;
    expect(accepted).toBe(30);
    expect(await remainingByShard(d, couponId)).toEqual([0, 0, 0]);
    const view = await getAdminCouponView(d, couponId);
    expect(view).toMatchObject({ remaining: 0, queued: 30 });
    await settle(d, couponId);
    expect((await expectShardsAgreeWithLedger(d, couponId)).size).toBe(30);
  });

  it('a transfer interrupted by a crash (given, never taken) leaves its units in transit, unsold, until reconcile delivers them', async () => {
    const d = deps();
    const couponId = await coupon(d, 6);
    // A refill of shard 0 dies right after shard 2 gave it 2 units.
    expect(await d.shards.at(2).giveUnits(couponId, 'crashed-transfer', 2, 0)).toBe(2);
    expect(await remainingByShard(d, couponId)).toEqual([2, 2, 0]);
    expect(await getAdminCouponView(d, couponId)).toMatchObject({ remaining: 6 });
    // Not yet old enough to be taken for interrupted: a live refill may still take it.
    expect(await completeTransfers(d, couponId)).toBe(0);
    const dry = await reconcileCoupon(d, couponId, { dryRun: true });
    expect(dry?.summary).toEqual({});
    // Ten seconds on, it is: reconcile reports and delivers it, once.
    expect(await completeTransfers(d, couponId, 0)).toBe(2);
    expect(await remainingByShard(d, couponId)).toEqual([4, 2, 0]);
    expect(await d.shards.at(0).takeUnits(couponId, 'crashed-transfer', 2, 2)).toBe(0);
    expect(await remainingByShard(d, couponId)).toEqual([4, 2, 0]);
    // Everything sells, exactly.
    for (const user of usersOf(0, 6)) expect((await issueCoupon(d, couponId, user)).kind).toBe('ACCEPTED');
    expect((await issueCoupon(d, couponId, usersOf(1, 1, 'late')[0]!)).kind).toBe('SOLD_OUT');
    await settle(d, couponId);
    expect((await expectShardsAgreeWithLedger(d, couponId)).size).toBe(6);
  });

  it('a refill waits for no one when every shard is out: SOLD_OUT, and the container answers later ones by itself', async () => {
    const d = deps();
    const couponId = await coupon(d, 3);
    for (let shard = 0; shard < SHARDS; shard++) expect((await issueCoupon(d, couponId, usersOf(shard, 1)[0]!)).kind).toBe('ACCEPTED');
    expect(await refillShard(d, couponId, 0)).toBe('EXHAUSTED');
    expect(await issueCoupon(d, couponId, usersOf(0, 2)[1]!)).toEqual({ kind: 'SOLD_OUT' });
  });

  it('one shard losing its state is rebuilt with its own winners and the units no other shard holds; the coupon still sells out exactly', async () => {
    const d = deps();
    const couponId = await coupon(d, 12);
    const early = [...usersOf(0, 2), ...usersOf(1, 2), ...usersOf(2, 2)];
    for (const user of early) expect((await issueCoupon(d, couponId, user)).kind).toBe('ACCEPTED');
    await settle(d, couponId);
    // Shard 1 loses everything (a failover to an empty replica); the others keep theirs.
    const shard1 = createSdkRedis({ url: databases[1]!.services.gatewayUrl, token: databases[1]!.services.gatewayToken, retries: 0 });
    await shard1.del(...Object.values(d.shards.at(1).keys(couponId)));
    expect(await restoreCouponState(d, couponId, { shard: 1 })).toMatchObject({ kind: 'RESTORED', winners: 2 });
    // Shards 0 and 2 hold 2 units each; 12 - 6 persisted - 4 = 2 for shard 1.
    expect(await remainingByShard(d, couponId)).toEqual([2, 2, 2]);
    for (const user of usersOf(1, 2)) expect(await getUserCouponStatus(d, couponId, user)).toMatchObject({ kind: 'FOUND', status: 'ISSUED' });
    const late = [...usersOf(0, 4, 'late0-'), ...usersOf(1, 4, 'late1-'), ...usersOf(2, 4, 'late2-')];
    const outcomes = [];
    for (const user of late) outcomes.push((await issueCoupon(d, couponId, user)).kind);
    expect(outcomes.filter((k) => k === 'ACCEPTED')).toHaveLength(6);
    await settle(d, couponId);
    await drainAll(d, () => 60_000);
    expect((await expectShardsAgreeWithLedger(d, couponId)).size).toBe(12);
    expect(await d.ledger.getCoupon(couponId, true)).toMatchObject({ issuedCount: 12, status: 'FINISHED' });
    const report = await reconcileCoupon(d, couponId, { dryRun: true });
    expect(report?.summary).toEqual({});
  });

  it('a concurrent burst over three shards sells out exactly: every winner once, in the ledger and in its shard', async () => {
    const containers = Array.from({ length: 6 }, () => deps());
    const couponId = await coupon(containers[0]!, 200);
    const users = Array.from({ length: 1_200 }, (_, i) => `b${(i * 7_919) % 800}`);
    let next = 0;
    const winners = new Set<string>();
    await Promise.all(
      Array.from({ length: 60 }, async (_, worker) => {
        while (next < users.length) {
          const user = users[next++]!;
          await new Promise((resolve) => setImmediate(resolve));
          const outcome = await issueRetrying(containers[worker % containers.length]!, couponId, user);
          if (outcome.kind === 'ACCEPTED') {
            expect(winners.has(user), `${user} accepted twice`).toBe(false);
            winners.add(user);
          }
        }
      }),
    );
    expect(winners.size).toBe(200);
    await settle(containers[0]!, couponId);
    const inLedger = await expectShardsAgreeWithLedger(containers[0]!, couponId);
    expect([...inLedger.keys()].sort()).toEqual([...winners].sort());
  }, 120_000);
});

/**
 * A client that retries a 503 (UnavailableError), as the API tells it to: a request whose shard ran out
 * on a loaded machine may not finish its refills within REFILL_BUDGET_MS, and is answered so rather
 * than SOLD_OUT.
 */
async function issueRetrying(deps: Parameters<typeof issueCoupon>[0], couponId: string, userId: string): Promise<Awaited<ReturnType<typeof issueCoupon>>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await issueCoupon(deps, couponId, userId);
    } catch (error) {
      if (!(error instanceof UnavailableError) || attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
