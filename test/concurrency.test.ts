import { describe, expect, it } from 'vitest';
import { createCoupon } from '../lib/coupons/campaigns.js';
import { issueCoupon, type IssueOutcome } from '../lib/coupons/issue.js';
import { drainCoupon } from '../lib/drain/drain.js';
import { forever, testDeps, uniqueCouponId } from './support/deps.js';

describe('concurrent admissions through the Upstash REST gateway', () => {
  it('5,000 concurrent admissions (250 in flight at once) from 2,000 users on 500 units give exactly 500 winners, each once', async () => {
    // This test is about atomicity under concurrency, not latency. With the other test worker loading
    // the same two cores, 250 requests in flight through the gateway once took longer than production's
    // 2 s timeout (an UnavailableError in CI), so its client waits longer.
    const deps = testDeps({ redisTimeoutMs: 20_000 });
    const couponId = uniqueCouponId('burst');
    await createCoupon(deps, { couponId, name: 'burst', totalQuantity: 500, startsAt: undefined, endsAt: undefined });

    const users = Array.from({ length: 5_000 }, (_, i) => `user-${(i * 7_919) % 2_000}`);
    // 250 in flight at a time: about as many Lambda containers as a burst would run at once.
    const outcomes: { userId: string; outcome: IssueOutcome }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 250 }, async () => {
        while (next < users.length) {
          const userId = users[next++]!;
          outcomes.push({ userId, outcome: await issueCoupon(deps, couponId, userId) });
        }
      }),
    );

    const winners = outcomes.filter((o) => o.outcome.kind === 'ACCEPTED');
    expect(winners).toHaveLength(500);
    expect(new Set(winners.map((w) => w.userId)).size).toBe(500);
    const tickets = winners.map((w) => (w.outcome.kind === 'ACCEPTED' ? w.outcome.ticket : 0)).sort((a, b) => a - b);
    expect(tickets).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    // Every other answer is a final one: a repeat by a winner, or sold out for everyone else.
    for (const { userId, outcome } of outcomes) {
      if (outcome.kind === 'ACCEPTED') continue;
      const isWinner = winners.some((w) => w.userId === userId);
      expect(outcome.kind).toBe(isWinner ? 'ALREADY_ACCEPTED' : 'SOLD_OUT');
    }
    expect((await deps.store.readCounters(couponId))?.remaining).toBe(0);

    await drainCoupon(deps, couponId, forever);
    const persisted = [];
    for await (const page of deps.ledger.issuancesOf(couponId)) persisted.push(...page);
    expect(persisted.map((p) => p.userId).sort()).toEqual(winners.map((w) => w.userId).sort());
    expect((await deps.ledger.getCoupon(couponId, true))?.issuedCount).toBe(500);
  });
});
