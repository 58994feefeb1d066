/**
 * `npm run chaos [-- --quick]`: the fault scenarios of test/faults.test.ts at a larger scale, on services
 * this run starts itself; prints one table and exits non-zero if anything was lost, duplicated or oversold.
 */
import { parseCommandLine } from '../../localstack/command-line.js';
import { startServices } from '../support/services.js';
import {
  aofRestartScenario,
  drainKilledScenario,
  dynamoFaultsScenario,
  flushWhileCommittingScenario,
  ledgerOutageScenario,
  redisDownScenario,
  threeDrainsScenario,
  type ScenarioResult,
} from './scenarios.js';

const values = parseCommandLine({ name: 'chaos', usage: 'npm run chaos [-- --quick]', refusedExitCode: 2 }, { quick: { type: 'boolean', default: false } });
const k = values.quick ? 0.2 : 1;
const scale = (requests: number, users: number, units: number) => ({
  requests: Math.round(requests * k),
  users: Math.round(users * k),
  units: Math.round(units * k),
});

const { services, stop } = await startServices('chaos');
const results: ScenarioResult[] = [];
const runs: [string, () => Promise<ScenarioResult>][] = [
  ['drain SIGKILLed repeatedly', () => drainKilledScenario(services, scale(100_000, 40_000, 20_000), { workers: 3 })],
  ['DynamoDB faults', () => dynamoFaultsScenario(services, { ...scale(20_000, 15_000, 10_000), faultRate: 0.2, poison: 5 })],
  ['Redis down mid-burst', () => redisDownScenario(services, scale(20_000, 15_000, 10_000))],
  ['Redis SIGKILL + AOF restart', () => aofRestartScenario(services, scale(20_000, 15_000, 10_000))],
  ['three drains at once', () => threeDrainsScenario(services, scale(30_000, 20_000, 15_000))],
  // Every ledger call fails for 90 s (18 s with --quick) while a 10,000-request drop is drained.
  ['ledger outage during a drop', () => ledgerOutageScenario(services, scale(10_000, 8_000, 5_000), { outageMs: 90_000 * k, backoffMaxMs: 30_000 })],
  ['Redis flushed while a drain commits', () => flushWhileCommittingScenario(services, scale(20_000, 15_000, 6_000))],
];
try {
  for (const [name, run] of runs) {
    const started = Date.now();
    process.stderr.write(`running: ${name}... `);
    const result = await run();
    process.stderr.write(`${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    results.push(result);
  }
} finally {
  await stop();
}

const columns: [string, (r: ScenarioResult) => string | number][] = [
  ['scenario', (r) => r.scenario],
  ['requests', (r) => r.requests],
  ['accepted', (r) => r.accepted],
  ['issued', (r) => r.issued],
  ['dead-lettered', (r) => r.deadLettered],
  ['lost', (r) => r.lost],
  ['duplicates', (r) => r.duplicates],
  ['oversold', (r) => r.oversold],
  ['notes', (r) => [...r.violations.map((v) => `VIOLATED: ${v}`), r.notes].join('; ')],
];
console.log(`| ${columns.map(([c]) => c).join(' | ')} |`);
console.log(`|${columns.map(([,], i) => (i === 0 || i === columns.length - 1 ? '---' : '---:')).join('|')}|`);
for (const r of results) console.log(`| ${columns.map(([, f]) => String(f(r))).join(' | ')} |`);
const broken = results.filter((r) => r.lost + r.duplicates + r.oversold + r.phantom > 0 || r.violations.length > 0);
if (broken.length > 0) {
  console.error(`\nFAILED: ${broken.map((r) => r.scenario).join(', ')}: lost, duplicated, oversold or a promise of the scenario broken.`);
  process.exit(1);
}
console.log(`\nAll ${results.length} scenarios: 0 lost, 0 duplicates, 0 oversold, every scenario's own promises held.`);
process.exit(0);
