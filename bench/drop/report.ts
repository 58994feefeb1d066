/**
 * The drop's part of the bench report: a table per system, the targets, the persisting probe, scale_out,
 * and the charts' Vega-Lite specs (bench/report.ts renders them).
 */
import type * as vegaLite from 'vega-lite';
import { PRICES, LAMBDA_MS_PER_REQUEST } from './prices.js';
import type { DropRun, PersistProbe, ScaleOutRun } from './run.js';

export interface DropReportInput {
  readonly drop_settings?: Record<string, any>;
  readonly drop?: Partial<Record<string, DropRun>>;
  readonly persist_probe?: PersistProbe;
  readonly scale_out?: ScaleOutRun[];
  readonly drop_failures?: string[];
}

const SYSTEMS = ['fcfs-coupons', 'seed-redis', 'pessimistic-lock', 'dynamodb-sync'];

export function dropCharts(results: DropReportInput): Record<'drop' | 'scaleOut', vegaLite.TopLevelSpec> | undefined {
  if (!results.drop) return undefined;
  const runs = Object.entries(results.drop).map(([system, run]) => ({ system, ...run! }));
  const bar = (field: string, title: string, scale?: object) => ({
    width: 170,
    height: 200,
    title,
    mark: 'bar',
    encoding: {
      x: { field: 'system', type: 'nominal', sort: SYSTEMS, title: null, axis: { labelAngle: -40 } },
      y: { field, type: 'quantitative', title: null, ...(scale ? { scale } : {}) },
      color: { field: 'system', type: 'nominal', sort: SYSTEMS, legend: null },
      tooltip: [{ field: 'system' }, { field }],
    },
  });
  const drop = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Drop of ${results.drop_settings?.requests} requests on ${results.drop_settings?.units} units, quotas / ${results.drop_settings?.quota_scale} (lower is better)`,
    data: {
      values: runs.map((r) => ({
        system: r.system,
        billed: r.billed_per_request,
        wcu: r.wcu_per_issuance ?? 0,
        cents: r.cost_usd * 100,
        seconds: r.decide_all_s ?? results.drop_settings?.deadline_s,
      })),
    },
    hconcat: [
      bar('billed', 'Upstash commands per request', { type: 'symlog', constant: 0.01 }),
      bar('wcu', 'DynamoDB WCU per issuance', { type: 'symlog' }),
      bar('seconds', 'seconds to decide every request (deadline if not)'),
      bar('cents', 'cost of the drop (US cents)'),
    ],
  } as unknown as vegaLite.TopLevelSpec;
  const scaleOut = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'scale_out: requests decided per second until sold out, by Upstash databases (higher is better)',
    width: 360,
    height: 220,
    data: { values: (results.scale_out ?? []).map((r) => ({ shards: String(r.shards), decided: r.decided_per_s })) },
    layer: [
      {
        mark: 'bar',
        encoding: {
          x: { field: 'shards', type: 'ordinal', title: 'shards (Upstash databases)' },
          y: { field: 'decided', type: 'quantitative', title: 'decided requests/s' },
        },
      },
      {
        mark: { type: 'text', dy: -6 },
        encoding: { x: { field: 'shards', type: 'ordinal' }, y: { field: 'decided', type: 'quantitative' }, text: { field: 'decided', type: 'quantitative' } },
      },
    ],
  } as unknown as vegaLite.TopLevelSpec;
  return { drop, scaleOut };
}

export function dropMarkdown(results: DropReportInput, charts: { drop: string; scaleOut: string }): string[] {
  if (!results.drop) return [];
  const settings = results.drop_settings ?? {};
  const lines: string[] = [];
  lines.push(
    '## Drop (issues 14 and 15)',
    '',
    `${settings.requests} requests on ${settings.units} units from ${settings.users} users: ${settings.phases?.pre_opening?.requests} in the ${settings.phases?.pre_opening?.seconds} s before the opening, ` +
      `${settings.phases?.opening?.requests} in its first ${settings.phases?.opening?.seconds} s, ${settings.phases?.tail?.requests} in the ${settings.phases?.tail?.seconds} s after (every winner asking again), ` +
      `over ${settings.connections} connections (Lambda's default concurrency / ${settings.quota_scale}). Quotas / ${settings.quota_scale}: ${settings.upstash_commands_per_second_per_database} commands/s per Upstash database, ` +
      `${settings.dynamodb_write_units_per_partition} WCU/s per DynamoDB partition. A baseline that has not answered everything ${settings.deadline_s} s after the opening is stopped there (fcfs-coupons, which must answer everything, after ${settings.fcfs_deadline_s} s; its time to decide is this machine's CPU). Method: bench/README.md.`,
    '',
    '| system | answered / planned | billed commands / request | WCU / issuance | throttled (Upstash + DynamoDB) | decide all (s) | persist all (s) | speedup vs 1 partition | dead letters | p50 / p99 ms | issued | cost (USD) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const [system, run] of Object.entries(results.drop)) {
    if (!run) continue;
    lines.push(
      `| ${system} | ${run.answered} / ${run.requests}${run.sent < run.requests ? ` (${run.sent} reached it)` : ''} | ${run.billed_per_request} | ${run.wcu_per_issuance ?? 'n/a'} | ${run.throttled} (${run.throttled_upstash} + ${run.throttled_dynamodb}) | ${run.decide_all_s ?? `not within ${settings.deadline_s} s (${run.decided_per_s}/s)`} | ${run.persist_all_s ?? 'n/a'} | ${run.persist_speedup_vs_one_partition ?? 'n/a'} | ${run.dead_lettered ?? 'n/a'} | ${run.p50_ms} / ${run.p99_ms} | ${run.issued} | ${run.cost_usd.toFixed(4)}${run.invariant_failures.length ? ' **BROKEN**' : ''} |`,
    );
  }
  lines.push('', `![drop](${charts.drop})`, '');
  const fcfs = results.drop['fcfs-coupons'];
  if (fcfs?.billed_by_outcome) {
    lines.push(
      "fcfs-coupons, billed commands by answer (one request at a time, the gateway's bill read around each): " +
        Object.entries(fcfs.billed_by_outcome)
          .map(([outcome, n]) => `${outcome.replace(/_/g, ' ')} ${n}`)
          .join(', ') +
        `. The drop's answers: ${Object.entries(fcfs.outcomes)
          .map(([o, n]) => `${o} ${n}`)
          .join(', ')}.`,
      '',
    );
  }
  const probe = results.persist_probe;
  if (probe) {
    lines.push(
      `Persisting ${probe.units} units (admitted with the drain held, then one drain timed until the ledger held them all): ${probe.partitions_16_s} s over 16 partitions, ` +
        `${probe.partitions_1_s} s in one (a coupon created with partitions: 1), ${probe.speedup}x; ${probe.throttled_16} and ${probe.throttled_1} throttled transactions.`,
      '',
    );
  }
  if (results.scale_out?.length) {
    lines.push(
      '### scale_out',
      '',
      '| shards | units | requests | decided/s until sold out | sold out after (s) | sold out exactly | billed commands | waited for the cap | 503 |',
      '|---:|---:|---:|---:|---:|---|---:|---:|---:|',
    );
    for (const r of results.scale_out) {
      lines.push(
        `| ${r.shards} | ${r.units} | ${r.requests} | ${r.decided_per_s} | ${r.sold_out_after_s} | ${r.sold_out_exactly ? 'yes' : `**no**: ${r.failures.join('; ')}`} | ${r.billed_commands} | ${r.throttled} | ${r.answered_503} |`,
      );
    }
    lines.push('', `![scale_out](${charts.scaleOut})`, '');
  }
  const one = results.scale_out?.find((r) => r.shards === 1);
  const ratio = (n: number) => {
    const run = results.scale_out?.find((r) => r.shards === n);
    return one && run ? `${(run.decided_per_s / one.decided_per_s).toFixed(2)}x` : 'n/a';
  };
  lines.push(
    '### Targets',
    '',
    '| target | measured | met |',
    '|---|---|---|',
    `| fcfs-coupons ≤ 0.2 billed commands per request | ${fcfs?.billed_per_request ?? 'n/a'} | ${fcfs ? (fcfs.billed_per_request <= 0.2 ? 'yes' : '**no**') : '-'} |`,
    `| fcfs-coupons persists ≥ 8x faster than with one partition | ${fcfs?.persist_speedup_vs_one_partition ?? 'n/a'}x | ${fcfs ? ((fcfs.persist_speedup_vs_one_partition ?? 0) >= 8 ? 'yes' : '**no**') : '-'} |`,
    `| 2 shards ≥ 1.6x the decided/s of 1 | ${ratio(2)} | ${one ? (parseFloat(ratio(2)) >= 1.6 ? 'yes' : '**no**') : '-'} |`,
    `| 4 shards ≥ 3.2x the decided/s of 1 | ${ratio(4)} | ${one ? (parseFloat(ratio(4)) >= 3.2 ? 'yes' : '**no**') : '-'} |`,
    `| every scale_out run sells out exactly | ${results.scale_out?.map((r) => `${r.shards}: ${r.sold_out_exactly ? 'yes' : 'no'}`).join(', ') ?? 'n/a'} | ${results.scale_out?.length ? (results.scale_out.every((r) => r.sold_out_exactly) ? 'yes' : '**no**') : '-'} |`,
    '',
  );
  if (results.drop_failures?.length) lines.push(`**Failed:** ${results.drop_failures.join('; ')}`, '');
  const usd = (n: number) => `$${Number(n.toPrecision(6))}`;
  lines.push(
    `Prices (US East): Upstash ${usd(PRICES.upstashPerCommand * 100_000)} per 100,000 commands; DynamoDB on-demand ${usd(PRICES.dynamodbPerWriteUnit * 1e6)} per million WRU, ${usd(PRICES.dynamodbPerReadUnit * 1e6)} per million RRU; ` +
      `Lambda arm64 ${usd(PRICES.lambdaPerRequest * 1e6)} per million requests and ${usd(PRICES.lambdaPerGbSecond)} per GB-s at 1 GB and ${LAMBDA_MS_PER_REQUEST} ms per request (assumed); HTTP API ${usd(PRICES.httpApiPerRequest * 1e6)} per million requests. Sources: bench/README.md. ` +
      "The issue handler's cold start (bundle size and import time against the old revision, side by side) is measured by `npm run bench:cold-start` (bench/README.md).",
    '',
  );
  return lines;
}
