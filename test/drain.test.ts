import { describe, expect, it } from 'vitest';
import { createCoupon, getAdminCouponView } from '../lib/coupons/campaigns.js';
import { issueCoupon } from '../lib/coupons/issue.js';
import { reconcileCoupon } from '../lib/coupons/reconcile.js';
import { getUserCouponStatus } from '../lib/coupons/user-coupons.js';
import { drainAll, drainCoupon } from '../lib/drain/drain.js';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { LedgerRefusedError } from '../lib/ledger/faults.js';
import { Ledger } from '../lib/ledger/ledger.js';
import { forever, services, sleep, testDeps, uniqueCouponId, withLedger } from './support/deps.js';
import { setOutcome, setRemaining } from './support/redis-state.js';

type TestDeps = ReturnType<typeof testDeps>;

async function newCoupon(deps: TestDeps, totalQuantity: number, label = 'drain') {
  const couponId = uniqueCouponId(label);
  await createCoupon(deps, { couponId, name: label, totalQuantity, startsAt: undefined, endsAt: undefined });
  return couponId;
}

const refused = () => new LedgerRefusedError('an item the ledger cannot store');
const unavailable = () => Object.assign(new Error('service unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });

/** The ledger failing its n-th persistBatch call with faultOf(n); undefined lets the real write through. */
function scriptedLedger(deps: TestDeps, faultOf: (call: number) => Error | undefined) {
  let calls = 0;
  const persistBatch: Ledger['persistBatch'] = (...args) => {
    const fault = faultOf(++calls);
    return fault ? Promise.reject(fault) : deps.ledger.persistBatch(...args);
  };
  return { deps: withLedger(deps, { persistBatch }), calls: () => calls };
}

async function ledgerUsers(deps: TestDeps, couponId: string): Promise<string[]> {
  const users: string[] = [];
  for await (const page of deps.ledger.issuancesOf(couponId)) users.push(...page.map((i) => i.userId));
  return users.sort();
}

describe('the drain: claim, write, acknowledge', () => {
  it('persists every winner once, in ticket order, and marks the coupon FINISHED when all units are persisted', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 250);
    for (let i = 0; i < 250; i++) await issueCoupon(deps, couponId, `u${i}`);
    const report = await drainCoupon(deps, couponId, forever);
    expect(report).toMatchObject({ issued: 250, redelivered: 0, rejected: 0, batches: 3, stoppedBy: 'EMPTY' });
    const issuances = [];
    for await (const page of deps.ledger.issuancesOf(couponId)) issuances.push(...page);
    expect(issuances.map((i) => i.ticket).sort((a, b) => a - b)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    const coupon = await deps.ledger.getCoupon(couponId, true);
    expect(coupon).toMatchObject({ issuedCount: 250, status: 'FINISHED' });
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ status: 'FINISHED', queued: 0, inflight: 0, issued: 250 });
  });

  it("lingers when a claim empties the queue: the next moments' admissions are persisted by the same run, in one transaction", async () => {
    const deps = testDeps({ drain: { lingerMs: 2_000 } });
    const couponId = await newCoupon(deps, 10);
    await issueCoupon(deps, couponId, 'u0');
    const running = drainCoupon(deps, couponId, forever);
    // Once u0 is written, the run lingers 2 s; without the linger it would claim again and be over within
    // milliseconds. The admissions come 300 ms into the linger, leaving a loaded machine 1.7 s for them
    // (a fixed sleep from the start, and a 400 ms linger, once proved too short in CI).
    while ((await getAdminCouponView(deps, couponId))?.issued !== 1) await sleep(20);
    await sleep(300);
    await Promise.all([1, 2, 3, 4, 5].map((i) => issueCoupon(deps, couponId, `u${i}`)));
    expect(await running).toMatchObject({ issued: 6, batches: 2, stoppedBy: 'EMPTY' });
    expect(await ledgerUsers(deps, couponId)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5']);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ queued: 0, inflight: 0, issued: 6 });
  });

  it('a claim that is never acknowledged is redelivered after its lease and persisted exactly once', async () => {
    const deps = testDeps({ drain: { claimLeaseMs: 300 } });
    const couponId = await newCoupon(deps, 10);
    for (let i = 0; i < 5; i++) await issueCoupon(deps, couponId, `u${i}`);

    // A drain claims the batch and dies before writing it.
    const lost = await deps.store.claim(couponId, { ...deps.drain, batchSize: 99 });
    expect(lost.items).toHaveLength(5);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ queued: 0, inflight: 5 });

    // The next drain finds nothing queued, waits for the dead claim's lease and takes the items back.
    const report = await drainCoupon(deps, couponId, forever);
    expect(report).toMatchObject({ requeued: 5, issued: 5, redelivered: 0 });
    expect(await ledgerUsers(deps, couponId)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4']);
    expect((await deps.ledger.getCoupon(couponId, true))?.issuedCount).toBe(5);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ queued: 0, inflight: 0, issued: 5 });
  });

  it('does not wait for a lease that is far from expiring: the item stays in flight for a later run', async () => {
    const deps = testDeps({ drain: { claimLeaseMs: 60_000 } });
    const couponId = await newCoupon(deps, 10);
    await issueCoupon(deps, couponId, 'u0');
    await deps.store.claim(couponId, { ...deps.drain, batchSize: 99 });
    expect(await drainCoupon(deps, couponId, forever)).toMatchObject({ issued: 0, requeued: 0 });
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ queued: 0, inflight: 1 });
  });

  it('a redelivery of an already persisted item is acknowledged without being counted twice', async () => {
    const deps = testDeps({ drain: { claimLeaseMs: 300 } });
    const couponId = await newCoupon(deps, 10);
    for (let i = 0; i < 4; i++) await issueCoupon(deps, couponId, `u${i}`);

    // A drain writes the batch to the ledger and dies before acknowledging it in Redis.
    const claim = await deps.store.claim(couponId, { ...deps.drain, batchSize: 99 });
    await deps.ledger.persistBatch(couponId, 10, claim.items);
    await sleep(400);

    const report = await drainCoupon(deps, couponId, forever);
    expect(report).toMatchObject({ requeued: 4, issued: 0, redelivered: 4 });
    expect((await deps.ledger.getCoupon(couponId, true))?.issuedCount).toBe(4);
    expect(await ledgerUsers(deps, couponId)).toEqual(['u0', 'u1', 'u2', 'u3']);
    expect(await getUserCouponStatus(deps, couponId, 'u0')).toMatchObject({ status: 'ISSUED' });
  });

  it('an item the ledger calls "already there" but does not hold is written on a later try, never acknowledged unwritten', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 10);
    await issueCoupon(deps, couponId, 'u0');
    // The first transaction is refused as if u0's item existed, though the ledger has no such item.
    const dynamo = createDynamo({ region: 'us-east-1', endpoint: services().dynamodbEndpoint });
    let refusals = 0;
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'TransactWriteItemsCommand' || refusals > 0) return next(args);
        refusals += 1;
        throw new TransactionCanceledException({
          message: 'Transaction cancelled',
          $metadata: { httpStatusCode: 400 },
          CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'None' }],
        });
      },
      { step: 'initialize' },
    );
    const report = await drainCoupon({ ...deps, ledger: new Ledger(dynamo, deps.ledger.tableName) }, couponId, forever);
    expect(refusals).toBe(1);
    expect(report).toMatchObject({ released: 1, issued: 1, redelivered: 0 });
    expect(await ledgerUsers(deps, couponId)).toEqual(['u0']);
    expect(await getUserCouponStatus(deps, couponId, 'u0')).toMatchObject({ status: 'ISSUED' });
  });

  it('a batch mixing redeliveries and new items counts each item once', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 10);
    const first = await deps.ledger.persistBatch(couponId, 10, [{ userId: 'a', ticket: 1, requestedAt: 1 }]);
    expect(first.newlyIssued).toBe(1);
    const mixed = await deps.ledger.persistBatch(couponId, 10, [
      { userId: 'a', ticket: 1, requestedAt: 1 },
      { userId: 'b', ticket: 2, requestedAt: 2 },
    ]);
    expect(mixed.newlyIssued).toBe(1);
    expect(mixed.decisions.get('a')).toEqual(first.decisions.get('a'));
    expect((await deps.ledger.getCoupon(couponId, true))?.issuedCount).toBe(2);
  });

  it('the ledger cap holds when Redis over-admits: only totalQuantity are persisted, the rest are REJECTED', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 5);
    // Redis drifts: it believes 20 units are left (as after losing state and being rebuilt wrongly).
    await setRemaining(deps, couponId, 20);
    for (let i = 0; i < 12; i++) expect((await issueCoupon(deps, couponId, `u${String(i).padStart(2, '0')}`)).kind).toBe('ACCEPTED');

    const report = await drainCoupon(deps, couponId, forever);
    expect(report).toMatchObject({ issued: 5, rejected: 7 });
    const coupon = await deps.ledger.getCoupon(couponId, true);
    expect(coupon).toMatchObject({ issuedCount: 5, status: 'FINISHED' });
    // The lowest tickets win; the ledger, not Redis, has the last word.
    expect(await ledgerUsers(deps, couponId)).toEqual(['u00', 'u01', 'u02', 'u03', 'u04']);
    expect(await getUserCouponStatus(deps, couponId, 'u07')).toMatchObject({ kind: 'FOUND', status: 'REJECTED' });
    expect(await issueCoupon(deps, couponId, 'u07')).toEqual({ kind: 'SOLD_OUT' });
  });

  it('an item whose writes keep failing is dead-lettered after maxAttempts, with its error kept', async () => {
    const deps = testDeps({ drain: { maxAttempts: 2 } });
    const couponId = await newCoupon(deps, 10);
    await issueCoupon(deps, couponId, 'poison');
    const failing = withLedger(deps, { persistBatch: async () => Promise.reject(new Error('boom')) });
    await drainCoupon(failing, couponId, forever);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ queued: 0, inflight: 0, deadLettered: 1 });
    expect(await deps.redis.hget(deps.store.keys(couponId).errors, 'poison')).toBe('Error: boom');
  });

  it('a claim that pops only entries decided meanwhile claims again, instead of leaving the rest of the queue', async () => {
    const deps = testDeps({ drain: { batchSize: 2 } });
    const couponId = await newCoupon(deps, 10);
    for (const user of ['u0', 'u1', 'u2', 'u3']) await issueCoupon(deps, couponId, user);
    // u0..u2 are decided while still queued (as a late duplicate is): the first claim pops u0 and u1
    // and drops both, leaving u2 and u3 queued.
    for (const user of ['u0', 'u1', 'u2']) await setOutcome(deps, couponId, user, { kind: 'REJECTED' });
    const report = await drainCoupon(deps, couponId, forever);
    expect(report).toMatchObject({ issued: 1, stoppedBy: 'EMPTY' });
    expect(await ledgerUsers(deps, couponId)).toEqual(['u3']);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ queued: 0, inflight: 0 });
  });

  it('out of time after a claim that popped only decided entries, it hands over: the rest is not left to the drain mark', async () => {
    const started: string[] = [];
    const trigger = { start: async (couponId: string) => void started.push(couponId) };
    const deps = testDeps({ drain: { batchSize: 2, stopBeforeTimeoutMs: 1_000 }, trigger });
    const couponId = await newCoupon(deps, 10);
    for (const user of ['u0', 'u1', 'u2']) await issueCoupon(deps, couponId, user);
    for (const user of ['u0', 'u1']) await setOutcome(deps, couponId, user, { kind: 'REJECTED' });
    started.length = 0; // the first admission's own start of a drain
    let calls = 0;
    // Time for the first claim only.
    const report = await drainCoupon(deps, couponId, () => (++calls <= 1 ? 60_000 : 500));
    expect(report).toMatchObject({ stoppedBy: 'TIME', issued: 0 });
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ queued: 1 });
    expect(started).toEqual([couponId]);
  });

  it('a split batch whose second half meets a transient fault acknowledges the committed half and releases only the rest', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 10);
    for (const user of ['u0', 'u1', 'u2', 'u3']) await issueCoupon(deps, couponId, user);
    // The whole batch is refused (a poison item, say), so the drain splits it: the first half commits,
    // the second half meets a 503. Every later write goes through.
    const ledger = scriptedLedger(deps, (call) => (call === 1 ? refused() : call === 3 ? unavailable() : undefined));
    const report = await drainCoupon(ledger.deps, couponId, forever);
    // Released: only u2 and u3. Had the committed u0 and u1 gone back too, their retry would count them
    // as redelivered and use up one of their attempts.
    expect(report).toMatchObject({ issued: 4, redelivered: 0, released: 2 });
    expect(await ledgerUsers(deps, couponId)).toEqual(['u0', 'u1', 'u2', 'u3']);
    expect(await getAdminCouponView(deps, couponId)).toMatchObject({ queued: 0, inflight: 0, deadLettered: 0, issued: 4 });
  });

  it('once a split meets a transient fault, the rest of the split is not tried but released', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 10);
    for (const user of ['u0', 'u1', 'u2', 'u3']) await issueCoupon(deps, couponId, user);
    // Refused whole, refused again as [u0, u1], then [u0] meets a 503: [u1] and [u2, u3] are not tried.
    const ledger = scriptedLedger(deps, (call) => (call <= 2 ? refused() : call === 3 ? unavailable() : undefined));
    const report = await drainCoupon(ledger.deps, couponId, forever);
    // Three failed calls, then one transaction for all four once released.
    expect(ledger.calls()).toBe(4);
    expect(report).toMatchObject({ issued: 4, released: 4, redelivered: 0 });
    expect(await ledgerUsers(deps, couponId)).toEqual(['u0', 'u1', 'u2', 'u3']);
  });

  it('stops claiming when the invocation is about to time out, leaving the rest queued, and hands over to a new drain', async () => {
    const started: string[] = [];
    const trigger = { start: async (couponId: string) => void started.push(couponId) };
    const deps = testDeps({ drain: { batchSize: 10, stopBeforeTimeoutMs: 1_000 }, trigger });
    const couponId = await newCoupon(deps, 100);
    for (let i = 0; i < 50; i++) await issueCoupon(deps, couponId, `u${i}`);
    started.length = 0; // the first admission's own start of a drain
    let calls = 0;
    // Plenty of time for two claims, then the invocation is "almost over".
    const report = await drainCoupon(deps, couponId, () => (++calls <= 2 ? 60_000 : 500));
    expect(report.stoppedBy).toBe('TIME');
    const view = await getAdminCouponView(deps, couponId);
    expect(view?.issued).toBe(report.issued);
    expect(view!.queued + view!.issued).toBe(50);
    expect(view?.inflight).toBe(0);
    // Its drain mark is still set, so no admission would start a drain: it starts the next one itself.
    expect(started).toEqual([couponId]);

    // A run with no time to write anything hands over to no one (no chain of empty invocations).
    expect(await drainCoupon(deps, couponId, () => 500)).toMatchObject({ stoppedBy: 'TIME', batches: 0 });
    expect(started).toHaveLength(1);
  });

  it('three drains at once on one coupon never double-process nor oversell', async () => {
    const deps = testDeps({ drain: { batchSize: 25 } });
    const couponId = await newCoupon(deps, 300);
    await Promise.all(Array.from({ length: 400 }, (_, i) => issueCoupon(deps, couponId, `u${i}`)));
    const reports = await Promise.all([0, 1, 2].map(() => drainCoupon(deps, couponId, forever)));
    expect(reports.reduce((sum, r) => sum + r.issued, 0)).toBe(300);
    expect(reports.reduce((sum, r) => sum + r.redelivered, 0)).toBe(0);
    const users = await ledgerUsers(deps, couponId);
    expect(users).toHaveLength(300);
    expect(new Set(users).size).toBe(300);
    expect((await deps.ledger.getCoupon(couponId, true))?.issuedCount).toBe(300);
  });

  it('the scheduled run drains every indexed coupon and forgets the settled ones', async () => {
    const deps = testDeps();
    const a = await newCoupon(deps, 3, 'sched-a');
    const b = await newCoupon(deps, 3, 'sched-b');
    for (const couponId of [a, b]) for (let i = 0; i < 3; i++) await issueCoupon(deps, couponId, `u${i}`);
    const reports = await drainAll(deps, forever);
    expect(reports.map((r) => r.issued)).toEqual([3, 3]);
    expect(await deps.store.listCoupons()).toEqual([]);
  });

  it('the scheduled run marks FINISHED and forgets a sold-out coupon whose last units no drain acknowledged (reconcile did)', async () => {
    const deps = testDeps();
    const couponId = await newCoupon(deps, 2, 'sched-reconciled');
    for (const userId of ['u1', 'u2']) await issueCoupon(deps, couponId, userId);
    // A drain wrote both and died before acknowledging them; reconcile acknowledged them afterwards.
    const claim = await deps.store.claim(couponId, { ...deps.drain, batchSize: 99 });
    await deps.ledger.persistBatch(couponId, 2, claim.items);
    expect((await reconcileCoupon(deps, couponId, { dryRun: false }))?.summary).toEqual({ PERSISTED_NOT_MARKED: 2 });
    expect((await deps.ledger.getCoupon(couponId, true))?.status).toBe('ACTIVE');
    await drainAll(deps, forever);
    expect((await deps.ledger.getCoupon(couponId, true))?.status).toBe('FINISHED');
    expect(await deps.store.listCoupons()).not.toContain(couponId);
  });
});

describe("the ledger's DynamoDB client", () => {
  it("has no SDK logger middleware (it filtered every batch's input and output for a no-op logger), and keeps the rest", () => {
    const names = createDynamo({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1' }).middlewareStack.identify();
    expect(names.filter((name) => name.startsWith('loggerMiddleware'))).toEqual([]);
    expect(names.some((name) => name.startsWith('retryMiddleware'))).toBe(true);
  });
});
