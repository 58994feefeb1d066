import { describe, expect, it } from 'vitest';
import {
  aofRestartScenario,
  drainKilledScenario,
  dynamoFaultsScenario,
  flushWhileCommittingScenario,
  ledgerOutageScenario,
  redisDownScenario,
  threeDrainsScenario,
  type ScenarioResult,
} from './faults/scenarios.js';
import { services } from './support/deps.js';

/** Faults on real processes, scaled to keep the suite within minutes; `npm run chaos` runs them larger. */
describe('under faults: nothing lost, nothing issued twice, nothing oversold', () => {
  const expectClean = (result: ScenarioResult) => {
    expect(result, [...result.violations, result.notes].join('; ')).toMatchObject({ lost: 0, duplicates: 0, oversold: 0, phantom: 0, violations: [] });
  };

  it('SIGKILL of the drain processes, repeatedly, during a burst of 20,000 requests', async () => {
    const result = await drainKilledScenario(services(), { requests: 20_000, users: 8_000, units: 5_000 });
    expectClean(result);
    expect(result).toMatchObject({ accepted: 5_000, issued: 5_000, deadLettered: 0 });
    expect(Number(result.notes.split(' ')[0])).toBeGreaterThan(3);
  }, 180_000);

  it('DynamoDB throttling, 500s, dropped connections and latency on 20 % of calls; poison items end in dead letters, nothing else does', async () => {
    const result = await dynamoFaultsScenario(services(), { requests: 3_000, users: 2_000, units: 1_500, faultRate: 0.2, poison: 3 });
    expectClean(result);
    expect(result).toMatchObject({ accepted: 1_500, issued: 1_497, deadLettered: 3 });
    expect(result.notes).toMatch(/innocent dead letters 0$/);
  }, 180_000);

  it('Redis down mid-burst: clean refusals, nothing half-applied, the drain resumes by itself', async () => {
    const result = await redisDownScenario(services(), { requests: 2_000, users: 1_500, units: 1_000 });
    expectClean(result);
    expect(result.notes).toMatch(/^200 of 200 requests during the outage refused \(503\), 0 half-applied$/);
    expect(result.issued).toBe(result.accepted);
  }, 180_000);

  it('Redis SIGKILLed and restarted from its append-only file keeps every acknowledged admission', async () => {
    const result = await aofRestartScenario(services(), { requests: 3_000, users: 2_000, units: 1_000 });
    expectClean(result);
    expect(result).toMatchObject({ accepted: 1_000, issued: 1_000, notes: '0 acknowledged admissions missing after restart' });
  }, 180_000);

  it('the ledger down for 6 s during a drop, spanning several drain runs: no dead letter, every winner ISSUED with no operator action', async () => {
    const result = await ledgerOutageScenario(services(), { requests: 3_000, users: 2_000, units: 1_000 }, { outageMs: 6_000, backoffMaxMs: 2_000 });
    expectClean(result);
    expect(result).toMatchObject({ accepted: 1_000, issued: 1_000, deadLettered: 0 });
    expect(Number(result.notes.split(' ')[0])).toBeGreaterThan(0);
  }, 180_000);

  it('Redis flushed while drains commit: every persisted winner ISSUED with its ticket, no ticket twice, sold out exactly', async () => {
    const result = await flushWhileCommittingScenario(services(), { requests: 6_000, users: 4_000, units: 1_500 });
    expectClean(result);
    expect(result.issued).toBe(1_500);
  }, 180_000);

  it('three drain processes at once on one coupon: no double counting, no oversell', async () => {
    const result = await threeDrainsScenario(services(), { requests: 4_000, users: 3_000, units: 2_000 });
    expectClean(result);
    expect(result).toMatchObject({ accepted: 2_000, issued: 2_000 });
  }, 180_000);
});
