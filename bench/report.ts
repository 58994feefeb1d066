/**
 * The Markdown report of a bench run, with charts drawn by Vega-Lite (rendered to SVG by Vega, then to
 * PNG by resvg): latency percentiles per system, throughput, and how fast each system persisted a burst.
 */
import { Resvg } from '@resvg/resvg-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { dropCharts, dropMarkdown, type DropReportInput } from './drop/report.js';
import type { Ceilings, Run } from './results.js';

interface Results extends DropReportInput {
  machine: Record<string, unknown>;
  mode: string;
  started_at: string;
  duration_s: number;
  redis_commands?: { admissions: number; by_command: Record<string, number>; per_admission: number };
  ceilings?: Partial<Ceilings>;
  drain_only?: { items: number; seconds: number; items_per_s: number };
  runs: Run[];
}

const SYSTEMS = ['fcfs-coupons', 'seed-redis', 'pessimistic-lock', 'dynamodb-sync'];

export function writeReport(results: Results, dir: string, stamp: string): string {
  const charts = {
    latency: `${stamp}-latency.png`,
    throughput: `${stamp}-throughput.png`,
    drain: `${stamp}-drain.png`,
    cpu: `${stamp}-cpu.png`,
    dropChart: `${stamp}-drop.png`,
    scaleOut: `${stamp}-scale-out.png`,
  };
  if (results.runs.length > 0) {
    render(latencySpec(results.runs), join(dir, charts.latency));
    render(throughputSpec(results.runs), join(dir, charts.throughput));
    render(drainSpec(results.runs), join(dir, charts.drain));
    if (results.runs.some((r) => r.cpu)) render(cpuSpec(results.runs), join(dir, charts.cpu));
  }
  const drop = dropCharts(results);
  if (drop) {
    render(drop.drop, join(dir, charts.dropChart));
    if (results.scale_out?.length) render(drop.scaleOut, join(dir, charts.scaleOut));
  }
  const markdown = [
    results.runs.length > 0
      ? reportMarkdown(results, charts)
      : `# fcfs-coupons bench (${results.mode})\n\nRun ${results.started_at}, ${results.duration_s} s.\n`,
    ...dropMarkdown(results, { drop: charts.dropChart, scaleOut: charts.scaleOut }),
  ].join('\n');
  const path = join(dir, `${stamp}.md`);
  writeFileSync(path, markdown);
  writeFileSync(join(dir, 'latest.md'), markdown);
  return path;
}

function render(spec: vegaLite.TopLevelSpec, path: string): void {
  const compiled = vegaLite.compile(spec).spec;
  pending.push(
    new vega.View(vega.parse(compiled), { renderer: 'none' }).toSVG().then((svg) => {
      const png = new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
      writeFileSync(path, png);
    }),
  );
}

const pending: Promise<void>[] = [];
/** Resolves when every chart of the report is written. */
export const chartsWritten = () => Promise.all(pending);

function latencySpec(runs: Run[]): vegaLite.TopLevelSpec {
  const values = runs.flatMap((r) =>
    (['p50_ms', 'p95_ms', 'p99_ms'] as const).map((p) => ({ system: r.system, scenario: r.scenario, percentile: p.replace('_ms', ''), ms: r[p] })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Request latency by system (ms, log scale; lower is better)',
    data: { values },
    facet: { column: { field: 'scenario', type: 'nominal', title: null } },
    spec: {
      width: 190,
      height: 220,
      mark: 'bar',
      encoding: {
        x: { field: 'system', type: 'nominal', sort: SYSTEMS, title: null, axis: { labelAngle: -40 } },
        xOffset: { field: 'percentile', type: 'nominal', sort: ['p50', 'p95', 'p99'] },
        // symlog keeps 0 ms drawable; its default ticks crowd at the top, so the decades are named.
        y: { field: 'ms', type: 'quantitative', scale: { type: 'symlog' }, axis: { values: [0, 1, 10, 100, 1_000, 10_000] }, title: 'ms' },
        color: { field: 'percentile', type: 'nominal', sort: ['p50', 'p95', 'p99'] },
        tooltip: [{ field: 'ms' }],
      },
    },
  } as vegaLite.TopLevelSpec;
}

function throughputSpec(runs: Run[]): vegaLite.TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Throughput by system (requests per second; higher is better)',
    data: { values: runs.map((r) => ({ system: r.system, scenario: r.scenario, rps: r.rps })) },
    facet: { column: { field: 'scenario', type: 'nominal', title: null } },
    spec: {
      width: 160,
      height: 220,
      layer: [
        {
          mark: 'bar',
          encoding: {
            x: { field: 'system', type: 'nominal', sort: SYSTEMS, title: null, axis: { labelAngle: -40 } },
            y: { field: 'rps', type: 'quantitative', title: 'req/s' },
            color: { field: 'system', type: 'nominal', sort: SYSTEMS, legend: null },
          },
        },
        {
          mark: { type: 'text', dy: -6, fontSize: 10 },
          encoding: {
            x: { field: 'system', type: 'nominal', sort: SYSTEMS },
            y: { field: 'rps', type: 'quantitative' },
            text: { field: 'rps', type: 'quantitative' },
          },
        },
      ],
    },
  } as vegaLite.TopLevelSpec;
}

function drainSpec(runs: Run[]): vegaLite.TopLevelSpec {
  const values = runs
    .filter((r) => r.scenario === 'burst' && r.persisted_timeline)
    .flatMap((r) => {
      // Entry i counts what was persisted by the end of step i; the line starts from nothing at 0.
      const step = (r.persisted_timeline_step_ms ?? 1_000) / 1_000;
      return [
        { system: r.system, second: 0, persisted: 0 },
        ...r.persisted_timeline!.map((persisted, i) => ({ system: r.system, second: (i + 1) * step, persisted })),
      ];
    });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Burst: units persisted over time since the first request',
    width: 640,
    height: 260,
    data: { values },
    mark: { type: 'line', point: { size: 12 }, opacity: 0.85 },
    encoding: {
      x: { field: 'second', type: 'quantitative', title: 'seconds since the burst began' },
      y: { field: 'persisted', type: 'quantitative', title: 'units persisted' },
      color: { field: 'system', type: 'nominal', sort: SYSTEMS },
    },
  } as vegaLite.TopLevelSpec;
}

function cpuSpec(runs: Run[]): vegaLite.TopLevelSpec {
  const values = runs.flatMap((r) =>
    Object.entries(r.cpu?.per_request_ms ?? {}).map(([process, ms]) => ({ system: r.system, scenario: r.scenario, process, ms })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'CPU per request until persisted, by process (ms; lower is better)',
    data: { values },
    facet: { column: { field: 'scenario', type: 'nominal', title: null } },
    spec: {
      width: 160,
      height: 220,
      mark: 'bar',
      encoding: {
        x: { field: 'system', type: 'nominal', sort: SYSTEMS, title: null, axis: { labelAngle: -40 } },
        y: { field: 'ms', type: 'quantitative', stack: 'zero', title: 'ms of CPU per request' },
        color: { field: 'process', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 3, labelLimit: 400 } },
        tooltip: [{ field: 'process' }, { field: 'ms' }],
      },
    },
  } as vegaLite.TopLevelSpec;
}

function reportMarkdown(results: Results, charts: Record<string, string>): string {
  const runs = results.runs;
  const get = (system: string, scenario: string) => runs.find((r) => r.system === system && r.scenario === scenario);
  const lines: string[] = [];
  lines.push(`# fcfs-coupons bench (${results.mode})`, '');
  lines.push(`Run ${results.started_at}, ${results.duration_s} s, \`npm run bench${results.mode === 'quick' ? ' -- --quick' : ''}\`.`, '');
  lines.push(
    `Machine: ${Object.entries(results.machine)
      .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join('/') : String(v)}`)
      .join(', ')}.`,
    '',
  );
  lines.push(
    '| system | scenario | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | unexpected | errors | issued / expected | lag p50 / p99 ms | all persisted after |',
  );
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const lag = r.lag_p99_ms !== undefined && r.lag_p99_ms > 0 ? `${r.lag_p50_ms} / ${r.lag_p99_ms}` : '0 (sync)';
    const after = r.persisted_after_ms !== undefined ? `${(r.persisted_after_ms / 1000).toFixed(1)} s` : '';
    lines.push(
      `| ${r.system} | ${r.scenario} | ${r.requests} | ${r.rps} | ${r.p50_ms} | ${r.p95_ms} | ${r.p99_ms} | ${r.max_ms} | ${r.non2xx_unexpected} | ${r.errors} | ${r.issued} / ${r.expected_issued}${r.invariant_failures.length ? ' BROKEN' : ''} | ${lag} | ${after} |`,
    );
  }
  lines.push('', `![latency](${charts.latency})`, '', `![throughput](${charts.throughput})`, '', `![drain](${charts.drain})`, '');

  const ours = (scenario: string) => get('fcfs-coupons', scenario);
  const ratio = (a?: number, b?: number) => (a && b ? (a / b).toFixed(1) : 'n/a');
  const max = ours('max-throughput');
  const seed = ours('seed-profile');
  const burst = ours('burst');
  const steady = ours('constant-rate');
  const lock = get('pessimistic-lock', 'max-throughput');
  const targets: [string, string, boolean | undefined][] = [
    [
      'max-throughput >= 3,000 req/s, p99 <= 30 ms',
      max
        ? `${max.rps} req/s, p99 ${max.p99_ms} ms${max.cpu ? `; ${max.cpu.per_request_ms_total} ms of CPU per admission until persisted, so ${max.cpu.cores} cores keep up with ${max.cpu.sustainable_rps} req/s` : ''}`
        : 'n/a',
      max && max.rps >= 3_000 && max.p99_ms <= 30,
    ],
    [
      'seed-profile p95 <= 10 ms, p99 <= 20 ms, no unexpected status',
      seed ? `p95 ${seed.p95_ms} ms, p99 ${seed.p99_ms} ms, ${seed.non2xx_unexpected} unexpected` : 'n/a',
      seed && seed.p95_ms <= 10 && seed.p99_ms <= 20 && seed.non2xx_unexpected === 0,
    ],
    [
      '>= 10x the throughput of pessimistic-lock (max-throughput)',
      lock && max ? `${ratio(max.rps, lock.rps)}x` : 'n/a (no PostgreSQL)',
      lock && max ? max.rps >= 10 * lock.rps : undefined,
    ],
    [
      '<= 1/10 of its p99 (max-throughput)',
      lock && max
        ? `${max.p99_ms} vs ${lock.p99_ms} ms (${max.p99_ms <= lock.p99_ms ? `${ratio(lock.p99_ms, max.p99_ms)}x lower` : `${ratio(max.p99_ms, lock.p99_ms)}x higher`})`
        : 'n/a',
      lock && max ? max.p99_ms * 10 <= lock.p99_ms : undefined,
    ],
    ['ahead of seed-redis and dynamodb-sync on throughput and p99 (every scenario)', aheadSummary(runs), aheadOk(runs)],
    [
      'drain >= 3,500 issuances/s into DynamoDB Local',
      results.drain_only
        ? `${results.drain_only.items_per_s}/s alone (${results.drain_only.items} queued issuances in ${results.drain_only.seconds} s); ${burst?.persist_rate_per_s ?? 'n/a'}/s during the burst`
        : 'n/a',
      // Met only if both hold: on its own and while admissions load the same machine.
      results.drain_only && burst?.persist_rate_per_s ? Math.min(results.drain_only.items_per_s, burst.persist_rate_per_s) >= 3_500 : undefined,
    ],
    [
      'accepted-to-persisted p99 <= 2 s (constant-rate)',
      steady?.lag_p99_ms !== undefined ? `${steady.lag_p99_ms} ms` : 'n/a',
      steady?.lag_p99_ms !== undefined ? steady.lag_p99_ms <= 2_000 : undefined,
    ],
    [
      'exactly one Redis command (EVALSHA) per admission',
      results.redis_commands
        ? `${results.redis_commands.per_admission} (${Object.entries(results.redis_commands.by_command)
            .map(([c, n]) => `${c} ${n}`)
            .join(', ')} for ${results.redis_commands.admissions} admissions)`
        : 'n/a',
      results.redis_commands ? results.redis_commands.per_admission === 1 && Object.keys(results.redis_commands.by_command).join() === 'evalsha' : undefined,
    ],
  ];
  lines.push('## Targets', '', '| target | measured | met |', '|---|---|---|');
  for (const [target, measured, met] of targets) lines.push(`| ${target} | ${measured} | ${met === undefined ? '-' : met ? 'yes' : '**no**'} |`);
  lines.push('');
  const http = results.ceilings?.serverless_offline_trivial_handler;
  const httpSeed = results.ceilings?.serverless_offline_trivial_handler_seed_profile;
  const ledger = results.ceilings?.ledger_direct;
  if (http || httpSeed || ledger) {
    const percent = (a: number | undefined, b: number) => (a ? `${Math.round((a / b) * 100)} %` : 'n/a');
    lines.push(
      '## What this machine allowed in this run',
      '',
      'Measured in the same run, after the same warm-up, each next to what it bounds, with nothing else loading the machine:',
      '',
      '| ceiling | measured | fcfs-coupons against it |',
      '|---|---|---|',
    );
    if (httpSeed) {
      lines.push(
        `| a do-nothing handler under the same serverless offline, seed-profile's virtual users (just before that scenario) | ${httpSeed.rps} req/s, p50 ${httpSeed.p50_ms} ms, p95 ${httpSeed.p95_ms} ms, p99 ${httpSeed.p99_ms} ms | seed-profile ${seed ? `p95 ${seed.p95_ms} ms, p99 ${seed.p99_ms} ms` : 'n/a'} |`,
      );
    }
    if (http) {
      lines.push(
        `| a do-nothing handler under the same serverless offline, max-throughput shape (just before that scenario) | ${http.rps} req/s, p50 ${http.p50_ms} ms, p99 ${http.p99_ms} ms | max-throughput ${max ? `${max.rps} req/s = ${percent(max.rps, http.rps)} of it` : 'n/a'}${lock ? `; 10x pessimistic-lock would be ${10 * lock.rps} req/s = ${percent(10 * lock.rps, http.rps)} of it` : ''} |`,
      );
    }
    if (ledger) {
      lines.push(
        `| the ledger's batch write alone (${ledger.batch} items per transaction, one at a time) into DynamoDB Local (just before the drain's measurement) | ${ledger.items_per_s} items/s | the drain alone ${results.drain_only ? `${results.drain_only.items_per_s} items/s = ${percent(results.drain_only.items_per_s, ledger.items_per_s)} of it` : 'n/a'} |`,
      );
    }
    lines.push(
      '',
      'Each ceiling is one short sample on a shared machine, not a bound proven for all designs: a target well above it is out of reach here for anything behind the same serverless offline, or writing the same transaction into DynamoDB Local one at a time.',
      '',
    );
  }
  lines.push(...cpuSection(runs, http, charts.cpu!));
  return lines.join('\n');
}

/**
 * Where each run's CPU went: per request, by process, from the first request until all was persisted.
 * Every process runs on the same cores, so their sum bounds what the machine keeps up with.
 */
function cpuSection(runs: Run[], http: Partial<Ceilings>['serverless_offline_trivial_handler'], chart: string): string[] {
  const measured = runs.filter((r) => r.cpu);
  if (measured.length === 0) return [];
  const cores = measured[0]!.cpu!.cores;
  const lines = [
    '## Where the CPU went',
    '',
    `CPU time of every process a system uses (the load generator, its serverless offline, the Redis gateway, redis-server, the seed design's scheduler, DynamoDB Local's JVM, PostgreSQL), read from /proc from the run's first request until everything it accepted was persisted, per request sent. All of them share this machine's ${cores} cores, so the cores cannot keep up with more than ${cores} ÷ (CPU per request) requests per second of that work for long. A short run can answer faster by leaving persistence for later, and one process can cap it lower: a serverless offline runs its handlers' JavaScript on one thread, so it gets little past 1,000 ÷ (its ms per request), its garbage collector's and I/O threads' share being all it adds beside that thread. Where the load leaves the cores partly idle (seed-profile, constant-rate), what the processes spend anyway (timers, garbage collection, the JIT) is spread over fewer requests, so both figures are lower than what the system could reach. "Cores busy" is the whole machine during the load; "steal" is time the hypervisor gave elsewhere.`,
    '',
    "| system | scenario | CPU ms per request | by process (ms per request) | cores busy during the load (steal) | the cores keep up with | its serverless offline's one thread |",
    '|---|---|---:|---|---:|---:|---:|',
  ];
  for (const r of measured) {
    const cpu = r.cpu!;
    const parts = Object.entries(cpu.per_request_ms)
      .filter(([, ms]) => ms >= 0.005)
      .sort((a, b) => b[1] - a[1])
      .map(([role, ms]) => `${role} ${ms.toFixed(2)}`)
      .join(', ');
    const offline = Object.entries(cpu.per_request_ms).find(([role]) => role.startsWith('serverless offline'))?.[1];
    const unseen = cpu.unseen.length > 0 ? ` (no process found for: ${cpu.unseen.join(', ')})` : '';
    lines.push(
      `| ${r.system} | ${r.scenario} | ${cpu.per_request_ms_total.toFixed(2)} | ${parts}${unseen} | ${cpu.during_load.cores_busy.toFixed(2)} (${cpu.during_load.steal_cores.toFixed(2)}) | ${cpu.sustainable_rps} req/s | ${offline ? `${Math.round(1_000 / offline)} req/s` : 'n/a'} |`,
    );
  }
  lines.push('', `![cpu](${chart})`);
  if (http?.cpu_per_request_ms !== undefined) {
    lines.push(
      '',
      `The do-nothing handler cost ${http.cpu_per_request_ms.toFixed(2)} ms of CPU per request (its serverless offline and the load generator): that much of every request above is serverless offline's and the load generator's own, whatever the handler does.`,
    );
  }
  lines.push('');
  return lines;
}

function aheadPairs(runs: Run[]) {
  return runs
    .filter((r) => r.system === 'seed-redis' || r.system === 'dynamodb-sync')
    .map((other) => ({ other, ours: runs.find((r) => r.system === 'fcfs-coupons' && r.scenario === other.scenario) }))
    .filter((p) => p.ours);
}

function aheadOk(runs: Run[]): boolean | undefined {
  const pairs = aheadPairs(runs);
  if (pairs.length === 0) return undefined;
  // In seed-profile and constant-rate the arrival rate is fixed by the load, so throughput ties; latency decides.
  return pairs.every(({ other, ours }) => ours!.p99_ms <= other.p99_ms && ours!.rps >= other.rps * 0.98);
}

function aheadSummary(runs: Run[]): string {
  return aheadPairs(runs)
    .map(({ other, ours }) => `${other.scenario} vs ${other.system}: ${ours!.rps}/${other.rps} req/s, p99 ${ours!.p99_ms}/${other.p99_ms} ms`)
    .join('; ');
}
