/**
 * The ledger spreads a coupon's issuances over partition key values, and under DynamoDB's per-partition
 * write capacity (emulated by the quota proxy in front of DynamoDB Local) the drain slows down rather
 * than failing anyone.
 */
import { QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoupon } from '../lib/coupons/campaigns.js';
import { issueCoupon } from '../lib/coupons/issue.js';
import { drainCoupon } from '../lib/drain/drain.js';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { Ledger } from '../lib/ledger/ledger.js';
import { couponPk, issuancePartition, issuancePk, issuancePks } from '../lib/ledger/model.js';
import { startDynamoQuotaProxy, type DynamoQuotaProxy } from '../localstack/dynamodb-quota-proxy.js';
import { forever, services, testDeps, uniqueCouponId } from './support/deps.js';

type TestDeps = ReturnType<typeof testDeps>;

async function coupon(deps: TestDeps, totalQuantity: number): Promise<string> {
  const couponId = uniqueCouponId('part');
  await createCoupon(deps, { couponId, name: 'partitions', totalQuantity, startsAt: undefined, endsAt: undefined });
  return couponId;
}

/** deps whose ledger creates coupons with `partitions` issuance partitions and talks to `endpoint`. */
function withPartitions(partitions: number, endpoint = services().dynamodbEndpoint): TestDeps {
  const deps = testDeps();
  return { ...deps, ledger: new Ledger(createDynamo({ region: 'us-east-1', endpoint }), services().tableName, partitions) };
}

async function usersUnder(pk: string): Promise<string[]> {
  const reply = await createDynamo({ region: 'us-east-1', endpoint: services().dynamodbEndpoint }).send(
    new QueryCommand({
      TableName: services().tableName,
      KeyConditionExpression: 'PK = :pk',
      ExpressionAttributeValues: { ':pk': { S: pk } },
      ConsistentRead: true,
    }),
  );
  return (reply.Items ?? []).map((item) => item.userId?.S ?? '').filter(Boolean);
}

describe('issuance partitions', () => {
  it('a stable hash of the user id picks the partition', () => {
    expect(issuancePartition('alice', 16)).toBe(issuancePartition('alice', 16));
    const used = new Set(Array.from({ length: 2_000 }, (_, i) => issuancePartition(`user-${i}`, 16)));
    expect(used.size).toBe(16);
    expect(issuancePks('c', 1)).toEqual([couponPk('c')]);
    expect(issuancePk('c', 'alice', 1)).toBe('COUPON#c');
    expect(issuancePks('c', 16)[3]).toBe('COUPON#c#P03');
  });

  it("spreads a new coupon's issuances over its partitions, and reads them all back (rebuild, reconcile, one user)", async () => {
    const deps = withPartitions(8);
    const couponId = await coupon(deps, 200);
    expect(await deps.ledger.getCoupon(couponId, true)).toMatchObject({ partitions: 8 });
    for (let i = 0; i < 200; i++) await issueCoupon(deps, couponId, `u${i}`);
    await drainCoupon(deps, couponId, forever);

    const perPartition = await Promise.all(issuancePks(couponId, 8).map(usersUnder));
    expect(perPartition.every((users) => users.length > 0 && users.length < 60)).toBe(true);
    for (const [p, users] of perPartition.entries()) for (const user of users) expect(issuancePartition(user, 8)).toBe(p);
    expect(await usersUnder(couponPk(couponId))).toEqual([]);

    const all: string[] = [];
    for await (const page of deps.ledger.issuancesOf(couponId)) all.push(...page.map((i) => i.userId));
    expect(all.sort()).toEqual(Array.from({ length: 200 }, (_, i) => `u${i}`).sort());
    expect(await deps.ledger.getIssuance(couponId, 'u7')).toMatchObject({ userId: 'u7' });
    expect(await deps.ledger.getCoupon(couponId, true)).toMatchObject({ issuedCount: 200, status: 'FINISHED' });
  });

  it('keeps a coupon created with one partition (as before partitions existed) under PK=COUPON#<id>', async () => {
    const deps = withPartitions(1);
    const couponId = await coupon(deps, 10);
    for (let i = 0; i < 10; i++) await issueCoupon(deps, couponId, `u${i}`);
    await drainCoupon(deps, couponId, forever);
    expect((await usersUnder(couponPk(couponId))).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `u${i}`).sort());
    expect(await deps.ledger.getIssuance(couponId, 'u3')).toMatchObject({ userId: 'u3' });
  });

  it("a FINISHED mark the META item's partition throttles is left for a later drain, not thrown", async () => {
    const deps = withPartitions(1);
    const couponId = await coupon(deps, 1);
    await issueCoupon(deps, couponId, 'only');
    await drainCoupon(deps, couponId, forever);
    // The drain marked it; make it unmarked again, then mark it through a partition with no capacity left.
    await createDynamo({ region: 'us-east-1', endpoint: services().dynamodbEndpoint }).send(
      new UpdateItemCommand({
        TableName: services().tableName,
        Key: { PK: { S: couponPk(couponId) }, SK: { S: 'META' } },
        UpdateExpression: 'SET #s = :active',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':active': { S: 'ACTIVE' } },
      }),
    );
    // One write unit a second and a frozen clock: the first write spends the partition's second.
    const tight = await startDynamoQuotaProxy({
      target: services().dynamodbEndpoint,
      limits: { writeUnitsPerSecond: 1, readUnitsPerSecond: 3_000 },
      clock: () => 0,
    });
    try {
      const throttled = new Ledger(createDynamo({ region: 'us-east-1', endpoint: tight.url, maxAttempts: 1 }), services().tableName);
      expect(await throttled.correctIssuedCount(couponId, 1, 1)).toBe(true);
      await expect(throttled.markFinishedIfComplete(couponId)).resolves.toBe(false);
      expect(tight.stats().throttledRequests).toBeGreaterThanOrEqual(1);
    } finally {
      await tight.close();
    }
    expect(await deps.ledger.getCoupon(couponId, true)).toMatchObject({ status: 'ACTIVE' });
    await expect(deps.ledger.markFinishedIfComplete(couponId)).resolves.toBe(true);
  });
});

describe("under DynamoDB's per-partition write capacity (emulated)", () => {
  let proxy: DynamoQuotaProxy;

  beforeAll(async () => {
    // 300 write units a second per partition key value: 150 transactional issuances a second.
    proxy = await startDynamoQuotaProxy({ target: services().dynamodbEndpoint, limits: { writeUnitsPerSecond: 300, readUnitsPerSecond: 3_000 } });
  });
  afterAll(() => proxy.close());

  it('a throttled drain slows down (smaller batches, a short back-off) and persists every winner, dead-lettering nobody', async () => {
    const deps = withPartitions(1, proxy.url);
    const couponId = await coupon(deps, 400);
    for (let i = 0; i < 400; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => issueCoupon(deps, couponId, `u${i + j}`)));
    proxy.reset();
    const report = await drainCoupon(deps, couponId, forever);
    expect(report).toMatchObject({ issued: 400, deadLettered: 0 });
    expect(report.throttled).toBeGreaterThan(0);
    expect(proxy.stats().throttledRequests).toBeGreaterThan(0);
    expect(await deps.ledger.getCoupon(couponId, true)).toMatchObject({ issuedCount: 400, status: 'FINISHED' });
  });

  it('spread over 16 partitions, the same drop is never throttled', async () => {
    const deps = withPartitions(16, proxy.url);
    const couponId = await coupon(deps, 400);
    for (let i = 0; i < 400; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => issueCoupon(deps, couponId, `u${i + j}`)));
    proxy.reset();
    const report = await drainCoupon(deps, couponId, forever);
    expect(report).toMatchObject({ issued: 400, deadLettered: 0, throttled: 0 });
  });
});
