import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoupon } from '../lib/coupons/campaigns.js';
import { listDeadLetters, requeueDeadLetters } from '../lib/coupons/dead-letters.js';
import { restoreCouponState } from '../lib/coupons/coupon-state.js';
import { issueCoupon } from '../lib/coupons/issue.js';
import { reconcileCoupon } from '../lib/coupons/reconcile.js';
import { getUserCouponStatus } from '../lib/coupons/user-coupons.js';
import { drainCoupon, persistClaim } from '../lib/drain/drain.js';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { CouponStore, REPAIR_CHUNK, scripts } from '../lib/redis/coupon-store.js';
import { ownRedis, scenarioDeps } from './faults/scenarios.js';
import { defaultAdmission, defaultDrain, forever, services, testDeps, uniqueCouponId, withLedger, withStore } from './support/deps.js';
import { setOutcome, setRemaining } from './support/redis-state.js';

type TestDeps = ReturnType<typeof testDeps>;

async function ledgerUsers(deps: TestDeps, couponId: string): Promise<string[]> {
  const users: string[] = [];
  for await (const page of deps.ledger.issuancesOf(couponId)) users.push(...page.map((i) => i.userId));
  return users.sort();
}

async function newCoupon(deps: TestDeps, totalQuantity: number) {
  const couponId = uniqueCouponId('rec');
  await createCoupon(deps, { couponId, name: 'recovery', totalQuantity, startsAt: undefined, endsAt: undefined });
  return couponId;
}

/** A coupon whose one winner Redis marks ISSUED though the ledger has no item for it (MARKED_NOT_PERSISTED). */
async function couponWithIssuedMarkOnly(deps: TestDeps, userId: string): Promise<string> {
  const couponId = await newCoupon(deps, 5);
  await issueCoupon(deps, couponId, userId);
  const k = deps.store.keys(couponId);
  await deps.redis.zrem(k.queue, userId);
  await setOutcome(deps, couponId, userId, { kind: 'ISSUED', issuedAt: Date.now() });
  return couponId;
}

describe('Redis flushed in the middle of a campaign (own redis-server)', () => {
  let own: Awaited<ReturnType<typeof ownRedis>>;
  let deps: TestDeps;

  beforeAll(async () => {
    own = await ownRedis(services());
    // 100 admissions in flight at once on a shared two-core machine: its client waits 20 s, not
    // production's 2 s, and for a rebuild under way 10 s, not 1.5 s (this test checks what the flush
    // leaves, not latency; a loaded CI run once timed out).
    deps = scenarioDeps(own.services, 'flush', { drain: defaultDrain, admission: { ...defaultAdmission, rebuildWaitMs: 10_000 } }, { redisTimeoutMs: 20_000 });
  });
  afterAll(() => own.close());

  it('never oversells, keeps answering, and the batch a drain held across the flush is given back to the rebuilt state', async () => {
    const couponId = await newCoupon(deps, 100);
    for (let i = 0; i < 60; i++) await issueCoupon(deps, couponId, `early${i}`);
    await drainCoupon(deps, couponId, forever);
    // 20 more winners; a drain has claimed them and is writing them when Redis is flushed.
    for (let i = 0; i < 20; i++) await issueCoupon(deps, couponId, `mid${i}`);
    const claim = await deps.store.claim(couponId, { ...deps.drain, batchSize: 99 });
    expect(claim.items).toHaveLength(20);

    await deps.redis.flushall();

    // The burst goes on: the first request finds the state missing and it is rebuilt from the ledger
    // (60 persisted, so 40 left), every request gets a final answer.
    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => issueCoupon(deps, couponId, `late${i}`)));
    expect(outcomes.filter((o) => o.kind === 'ACCEPTED')).toHaveLength(40);
    expect(outcomes.filter((o) => o.kind === 'SOLD_OUT')).toHaveLength(60);

    // The interrupted drain finishes its write: the ledger refuses it (claimed before the rebuild), and
    // its 20 winners go back to the rebuilt state, which has no unit left for them: they are rejected,
    // as winners whose admission Redis lost are. Nothing of theirs reached the ledger.
    expect(await persistClaim(deps, couponId, claim)).toBe('DECIDED');
    const report = await drainCoupon(deps, couponId, forever);
    expect(report).toMatchObject({ issued: 40, rejected: 0 });

    const coupon = await deps.ledger.getCoupon(couponId, true);
    expect(coupon).toMatchObject({ issuedCount: 100, status: 'FINISHED' });
    const users = await ledgerUsers(deps, couponId);
    expect(users).toHaveLength(100);
    expect(new Set(users).size).toBe(100);
    expect(users.filter((u) => u.startsWith('mid'))).toEqual([]);
    expect(await getUserCouponStatus(deps, couponId, 'mid0')).toMatchObject({ status: 'REJECTED' });
    expect(await issueCoupon(deps, couponId, 'mid0')).toEqual({ kind: 'SOLD_OUT' });

    // Redis and the ledger agree: reconcile finds nothing.
    expect((await reconcileCoupon(deps, couponId, { dryRun: true }))?.summary).toEqual({});
  });

  it('reconcile restores a coupon whose Redis state is gone', async () => {
    const couponId = await newCoupon(deps, 5);
    await issueCoupon(deps, couponId, 'u1');
    await drainCoupon(deps, couponId, forever);
    await deps.redis.flushall();
    const report = await reconcileCoupon(deps, couponId, { dryRun: false });
    expect(report?.summary).toEqual({ REDIS_STATE_MISSING: 1 });
    expect(report?.redis).toMatchObject({ winners: 1, remaining: 4, issued: 1 });
  });
});

describe('restoring a coupon from the ledger', () => {
  it('refuses a batch claimed before the loss that a drain writes while the ledger is being scanned: the rebuilt remaining is exact', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 10);
    await issueCoupon(deps, couponId, 'u1');
    await drainCoupon(deps, couponId, forever);
    await deps.redis.del(deps.store.keys(couponId).state);
    // A drain that claimed u2 and u3 before Redis lost its state writes them during the scan.
    let written: Awaited<ReturnType<typeof deps.ledger.persistBatch>> | undefined;
    const committing = withLedger(deps, {
      async *issuancesOf(id: string) {
        for await (const page of deps.ledger.issuancesOf(id)) {
          yield page;
          written = await deps.ledger.persistBatch(id, 10, [
            { userId: 'u2', ticket: 2, requestedAt: 2 },
            { userId: 'u3', ticket: 3, requestedAt: 3 },
          ]);
        }
      },
    });
    expect(await restoreCouponState(committing, couponId)).toMatchObject({ kind: 'RESTORED', winners: 1 });
    expect(written).toMatchObject({ newlyIssued: 0, stale: [{ userId: 'u2' }, { userId: 'u3' }], ledgerEpoch: 1 });
    // 10 units less the 1 the ledger holds.
    expect((await deps.store.readCounters(couponId))?.remaining).toBe(9);
    expect(await deps.ledger.getCoupon(couponId, true)).toMatchObject({ issuedCount: 1, epoch: 1 });
  });
});

describe('reconcile finds and repairs each kind of drift', () => {
  it('requeues a winner no structure tracks, and the drain persists it', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 5);
    await issueCoupon(deps, couponId, 'lost');
    await deps.redis.zrem(deps.store.keys(couponId).queue, 'lost');
    expect((await reconcileCoupon(deps, couponId, { dryRun: true }))?.summary).toEqual({ WINNER_NOT_TRACKED: 1 });
    await reconcileCoupon(deps, couponId, { dryRun: false });
    await drainCoupon(deps, couponId, forever);
    expect(await ledgerUsers(deps, couponId)).toEqual(['lost']);
  });

  it('marks ISSUED a winner the ledger holds but Redis shows pending', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 5);
    await issueCoupon(deps, couponId, 'u1');
    const claim = await deps.store.claim(couponId, { ...deps.drain, batchSize: 99 });
    await deps.ledger.persistBatch(couponId, 5, claim.items);
    expect((await reconcileCoupon(deps, couponId, { dryRun: false }))?.summary).toEqual({ PERSISTED_NOT_MARKED: 1 });
    expect(await getUserCouponStatus(deps, couponId, 'u1')).toMatchObject({ status: 'ISSUED' });
    expect((await reconcileCoupon(deps, couponId, { dryRun: true }))?.redis).toMatchObject({ inflight: 0, issued: 1 });
  });

  it('requeues a winner Redis marks ISSUED without a ledger item', async () => {
    const deps = testDeps();
    const couponId = await couponWithIssuedMarkOnly(deps, 'u1');
    expect((await reconcileCoupon(deps, couponId, { dryRun: false }))?.summary).toEqual({ MARKED_NOT_PERSISTED: 1 });
    await drainCoupon(deps, couponId, forever);
    expect(await ledgerUsers(deps, couponId)).toEqual(['u1']);
  });

  it('indexes the coupon in the same step as it requeues: a coupon the schedule had forgotten is visited again', async () => {
    const deps = testDeps();
    const couponId = await couponWithIssuedMarkOnly(deps, 'u1');
    const k = deps.store.keys(couponId);
    expect(await deps.store.forgetCoupon(couponId, 'SETTLED')).toBe(true); // as if sold out and settled
    expect((await reconcileCoupon(deps, couponId, { dryRun: false }))?.summary).toEqual({ MARKED_NOT_PERSISTED: 1 });
    expect(await deps.redis.zscore(k.queue, 'u1')).not.toBeNull();
    expect(await deps.store.listCoupons()).toContain(couponId);
    // And the index keeps it while work is queued: the schedule's removal checks in the same step.
    expect(await deps.store.forgetCoupon(couponId, 'SETTLED')).toBe(false);
  });

  it('repairs a drift larger than one script call can carry, in calls of at most REPAIR_CHUNK users', async () => {
    const deps = testDeps();
    const winners = REPAIR_CHUNK * 2 + 1;
    const couponId = await newCoupon(deps, winners);
    const users = Array.from({ length: winners }, (_, i) => `w${i}`);
    for (let i = 0; i < winners; i += 100) await Promise.all(users.slice(i, i + 100).map((u) => issueCoupon(deps, couponId, u)));
    // Every winner persisted, none acknowledged: the whole coupon is PERSISTED_NOT_MARKED.
    for (;;) {
      const claim = await deps.store.claim(couponId, { ...deps.drain, batchSize: 99 });
      if (claim.items.length === 0) break;
      await deps.ledger.persistBatch(couponId, winners, claim.items);
    }
    const usersPerCall: number[] = [];
    const recording = Object.assign(Object.create(deps.redis), {
      evalsha: (sha: string, keys: string[], args: (string | number)[]) => {
        if (sha === scripts.ack.sha1) usersPerCall.push(args.length / 2);
        return deps.redis.evalsha(sha, keys, args);
      },
    });
    const report = await reconcileCoupon(withStore(deps, new CouponStore(recording, deps.store.keyPrefix)), couponId, { dryRun: false });
    expect(report?.summary).toEqual({ PERSISTED_NOT_MARKED: winners });
    expect(usersPerCall).toEqual([REPAIR_CHUNK, REPAIR_CHUNK, 1]);
    const settled = await reconcileCoupon(deps, couponId, { dryRun: true });
    expect(settled?.summary).toEqual({});
    expect(settled).toMatchObject({ redis: { inflight: 0, issued: winners } });
  });

  it("corrects remaining units and the ledger's counter when they drift", async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 10);
    await issueCoupon(deps, couponId, 'u1');
    await drainCoupon(deps, couponId, forever);
    await setRemaining(deps, couponId, 7);
    await createDynamo({ region: 'us-east-1', endpoint: services().dynamodbEndpoint }).send(
      new UpdateItemCommand({
        TableName: services().tableName,
        Key: { PK: { S: `COUPON#${couponId}` }, SK: { S: 'META' } },
        UpdateExpression: 'SET issuedCount = :n',
        ExpressionAttributeValues: { ':n': { N: '4' } },
      }),
    );
    const report = await reconcileCoupon(deps, couponId, { dryRun: false });
    expect(report?.summary).toEqual({ REMAINING_DRIFT: 1, COUNTER_DRIFT: 1 });
    expect((await deps.store.readCounters(couponId))?.remaining).toBe(9);
    expect((await deps.ledger.getCoupon(couponId, true))?.issuedCount).toBe(1);
  });

  it('does not report as drift an admission that lands while it reads the winners: it asks to run again and sets nothing', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 10);
    await issueCoupon(deps, couponId, 'u1');
    await issueCoupon(deps, couponId, 'u2');
    // remaining is read (9: before u2's admission, as it would be under load), then the winners (u1, u2).
    let reads = 0;
    const store = Object.assign(Object.create(deps.store), {
      async readCounters(id: string) {
        const counters = await deps.store.readCounters(id);
        return counters && ++reads === 1 ? { ...counters, remaining: counters.remaining + 1 } : counters;
      },
    });
    const report = await reconcileCoupon(withStore(deps, store), couponId, { dryRun: false });
    expect(report?.summary).toEqual({});
    expect(report).toMatchObject({ retry: true, repaired: false });
    expect((await deps.store.readCounters(couponId))?.remaining).toBe(8);
    // Settled, the same coupon reconciles clean.
    const settled = await reconcileCoupon(deps, couponId, { dryRun: false });
    expect(settled?.summary).toEqual({});
    expect(settled?.retry).toBe(false);
  });

  it('lists dead letters with their last error, and requeues them with a fresh attempt count', async () => {
    const deps = testDeps({ drain: { maxAttempts: 1 } });
    const couponId = await newCoupon(deps, 5);
    await issueCoupon(deps, couponId, 'd1');
    await issueCoupon(deps, couponId, 'd2');
    const failing = withLedger(deps, { persistBatch: async () => Promise.reject(new Error('ValidationException: boom')) });
    await drainCoupon(failing, couponId, forever);
    const letters = await listDeadLetters(deps, couponId);
    expect(letters).toEqual([
      { userId: 'd1', ticket: 1, attempts: 1, lastError: 'Error: ValidationException: boom' },
      { userId: 'd2', ticket: 2, attempts: 1, lastError: 'Error: ValidationException: boom' },
    ]);
    expect(await requeueDeadLetters(deps, couponId, ['d2'])).toBe(1);
    expect(await requeueDeadLetters(deps, couponId, [])).toBe(1);
    expect(await listDeadLetters(deps, couponId)).toEqual([]);
    await drainCoupon(deps, couponId, forever);
    expect(await ledgerUsers(deps, couponId)).toEqual(['d1', 'd2']);
  });

  it('answers "no such coupon" (undefined), not an empty list, for dead letters of a coupon the ledger does not hold', async () => {
    const deps = testDeps();
    const couponId = uniqueCouponId('nosuch');
    expect(await listDeadLetters(deps, couponId)).toBeUndefined();
    expect(await requeueDeadLetters(deps, couponId, [])).toBeUndefined();
  });

  it('leaves dead letters to the operator: a reconcile that finds nothing else to requeue does not requeue them', async () => {
    const deps = testDeps({ drain: { maxAttempts: 1 } });
    const couponId = await newCoupon(deps, 5);
    await issueCoupon(deps, couponId, 'd1');
    const failing = withLedger(deps, { persistBatch: async () => Promise.reject(new Error('ValidationException: boom')) });
    await drainCoupon(failing, couponId, forever);
    const report = await reconcileCoupon(deps, couponId, { dryRun: false });
    expect(report?.summary).toEqual({});
    expect(report?.redis).toMatchObject({ queued: 0, deadLettered: 1 });
    expect(await listDeadLetters(deps, couponId)).toMatchObject([{ userId: 'd1' }]);
  });
});
