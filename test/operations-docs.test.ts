import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../localstack/processes.js';

/** docs/operations.md cannot drift from the code: every metric, alarm and log line it names exists, and the reverse. */
const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'operations.md'), 'utf8');
const mentions = (name: string) => doc.includes(`\`${name}\``);

const sources = (dir: string): string[] =>
  readdirSync(join(PROJECT_ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(dir, file));
const code = [...sources('lib'), ...sources('functions')].map((file) => ({ file, text: readFileSync(join(PROJECT_ROOT, file), 'utf8') }));
const metricsModule = code.find(({ file }) => file === join('lib', 'metrics.ts'))!.text;

/** The names lib/metrics.ts declares (its MetricName type). */
const declared = [.../export type MetricName =([^;]+);/.exec(metricsModule)![1]!.matchAll(/'(\w+)'/g)].map((m) => m[1]!);
/** The names some code passes to count() or milliseconds(), directly or through a table of names. */
const emitted = declared.filter((name) => code.some(({ file, text }) => file !== join('lib', 'metrics.ts') && text.includes(`'${name}'`)));

describe('docs/operations.md', () => {
  it("describes every metric the handlers emit, Powertools' ColdStart, and the declared ones no code emits", () => {
    // Direct call sites name metrics the type declares (what the regex finds is emitted).
    const called = code.flatMap(({ text }) => [...text.matchAll(/\b(?:count|milliseconds)\('(\w+)'/g)].map((m) => m[1]!));
    expect(called.length).toBeGreaterThan(5);
    for (const name of called) expect(emitted).toContain(name);
    expect(emitted.length).toBeGreaterThanOrEqual(17);
    expect(metricsModule).toContain('captureColdStartMetric()');
    for (const name of [...emitted, 'ColdStart']) expect(mentions(name), `metric ${name}`).toBe(true);
    for (const name of declared.filter((n) => !emitted.includes(n))) {
      expect(mentions(name), `declared metric ${name}`).toBe(true);
      expect(doc).toMatch(new RegExp(`\`${name}\`[^\\n]*no code emits them`));
    }
  });

  it('describes every alarm of deploy/observability.cjs: its logical id and its name', async () => {
    const observability = createRequire(import.meta.url)('../deploy/observability.cjs') as (input: {
      resolveVariable: (name: string) => Promise<string>;
    }) => Promise<{ Resources: Record<string, { Type: string; Properties: { AlarmName: string } }> }>;
    const values: Record<string, string> = { 'self:service': 'fcfs-coupons', 'sls:stage': 'prod' };
    const { Resources } = await observability({ resolveVariable: async (name) => values[name] ?? '' });
    const alarms = Object.entries(Resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm');
    expect(alarms.length).toBeGreaterThanOrEqual(10);
    for (const [id, alarm] of alarms) {
      expect(mentions(id), `alarm ${id}`).toBe(true);
      expect(mentions(alarm.Properties.AlarmName.replace('fcfs-coupons-prod-', '')), `alarm name ${alarm.Properties.AlarmName}`).toBe(true);
    }
    expect(mentions('DropDashboard')).toBe(true);
    // The alarms' descriptions send the reader here.
    for (const [, alarm] of alarms) expect(JSON.stringify(alarm)).toContain('docs/operations.md#alarms');
    expect(doc).toContain('\n## Alarms\n');
  });

  it('quotes only log messages the code writes', () => {
    const rows = doc.split('\n').filter((line) => /^\| (DEBUG|INFO|WARN|ERROR) \|/.test(line));
    expect(rows.length).toBeGreaterThan(10);
    const all = code.map(({ text }) => text).join('\n');
    for (const row of rows) {
      for (const [, message] of row.split('|')[2]!.matchAll(/`([^`]+)`/g)) expect(all, `log message "${message}"`).toContain(`'${message}'`);
    }
  });
});
