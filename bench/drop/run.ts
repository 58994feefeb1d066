/**
 * The drop scenario and scale_out (issues 14 and 15): every selected system through the same drop under
 * the same emulated quotas, what each costs and how long it takes to decide and to persist; fcfs-coupons'
 * ledger against a coupon kept in one partition; fcfs-coupons on 1, 2 and 4 Upstash databases. Checks
 * every invariant and target and returns what failed, for the bench to fail loudly.
 */
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { Redis as IORedis } from 'ioredis';
import { createDynamo } from '../../lib/ledger/dynamo.js';
import { Ledger } from '../../lib/ledger/ledger.js';
import { newCouponRecord } from '../../lib/ledger/model.js';
import type { Stack } from '../../localstack/stack.js';
import { holdDrain, queueWithDrainsHeld } from '../hold-drain.js';
import { percentile, runLoad } from '../load.js';
import type { Persisted, SystemName } from '../systems.js';
import { sendDrop, type DropLoad } from './load.js';
import { dynamoUse, gatewayBill, gatewaysBill, minus, redisCommandsRun, type DynamoUse } from './meters.js';
import { costOf, type Cost } from './prices.js';
import { DYNAMODB_WRITE_UNITS_PER_PARTITION, dropShape, planDrop, QUOTA_SCALE, UPSTASH_COMMANDS_PER_SECOND, type DropShape } from './shape.js';
import { ADMIN_TOKEN, FCFS_TABLE, SCALE_OUT_SHARDS, startDropSystems, UPSTASH_TOKEN, type DropContext, type DropSystem } from './systems.js';

export interface DropRun {
  readonly requests: number;
  /** Sent before the deadline (the bill, the cost and billed_per_request count these). */
  readonly sent: number;
  readonly answered: number;
  readonly unanswered: number;
  readonly statuses: Record<string, number>;
  readonly outcomes: Record<string, number>;
  readonly billed_commands: number;
  readonly billed_per_request: number;
  /** fcfs-coupons: what each kind of answer costs, measured one request at a time. */
  readonly billed_by_outcome?: Record<string, number>;
  readonly write_units: number;
  readonly read_units: number;
  readonly wcu_per_issuance: number | null;
  /** Requests that waited for a database's cap, plus DynamoDB calls throttled. */
  readonly throttled: number;
  readonly throttled_upstash: number;
  readonly throttled_dynamodb: number;
  /** From the opening until every request was answered; null when the deadline stopped the run. */
  readonly decide_all_s: number | null;
  readonly decided_per_s: number;
  /** From the opening until the last unit was persisted; null when it had not settled. */
  readonly persist_all_s: number | null;
  readonly persist_speedup_vs_one_partition: number | null;
  readonly dead_lettered: number | null;
  readonly issued: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly cost_usd: number;
  readonly cost_breakdown_usd: Cost;
  readonly invariant_failures: string[];
}

export interface ScaleOutRun {
  readonly shards: number;
  readonly units: number;
  readonly requests: number;
  readonly decided_per_s: number;
  readonly sold_out_after_s: number;
  readonly sold_out_exactly: boolean;
  readonly billed_commands: number;
  readonly throttled: number;
  readonly answered_503: number;
  readonly failures: string[];
}

export interface PersistProbe {
  readonly units: number;
  readonly partitions_16_s: number;
  readonly partitions_1_s: number;
  readonly speedup: number;
  readonly throttled_16: number;
  readonly throttled_1: number;
}

export interface DropResults {
  readonly drop_settings: Record<string, unknown>;
  readonly drop: Partial<Record<SystemName, DropRun>>;
  readonly persist_probe?: PersistProbe;
  readonly scale_out: ScaleOutRun[];
  /** Targets and invariants that did not hold. */
  readonly failures: string[];
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runDropScenario(ctx: DropContext): Promise<DropResults> {
  const shape = dropShape(ctx.quick);
  ctx.log(
    `drop: ${shape.requests} requests on ${shape.units} units (${shape.users} users), quotas / ${QUOTA_SCALE}, ${shape.connections} connections; starting its stacks`,
  );
  const systems = await startDropSystems(ctx);
  const direct = createDynamo({ region: 'us-east-1', endpoint: systems.dynamodbEndpoint });
  for (const s of systems.selected) await warmUp(s, ctx);
  for (const s of systems.scaleOut.values()) if (!systems.selected.includes(s)) await warmUp(s, ctx);

  const drop: Partial<Record<SystemName, DropRun>> = {};
  const failures: string[] = [];
  let probing: Promise<PersistProbe> | undefined;
  for (const s of systems.selected) {
    ctx.log(`drop / ${s.system.name}`);
    const run = await runDrop(s, shape, ctx, direct);
    if (s.system.name === 'fcfs-coupons') {
      (run as { billed_by_outcome?: Record<string, number> }).billed_by_outcome = await billingByOutcome(s);
      // Mostly waiting for a throttled partition: it runs while the baselines take the drop, on its own
      // stack, gateway and quota proxy (a few admissions a second of CPU).
      probing = persistProbe(s, shape.probeUnits, ctx, direct);
      probing.catch(() => undefined);
    }
    drop[s.system.name] = run;
    failures.push(...run.invariant_failures.map((f) => `drop/${s.system.name}: ${f}`));
    ctx.log(
      `  ${run.answered}/${run.requests} answered${run.decide_all_s === null ? ' (stopped at the deadline)' : ` in ${run.decide_all_s} s`}, ${run.billed_per_request} billed commands per request, ` +
        `${run.wcu_per_issuance ?? 'n/a'} WCU per issuance, ${run.throttled} throttled, persisted after ${run.persist_all_s ?? 'n/a'} s, p50 ${run.p50_ms} ms, p99 ${run.p99_ms} ms, $${run.cost_usd}` +
        (run.invariant_failures.length ? `  INVARIANT BROKEN: ${run.invariant_failures.join('; ')}` : ''),
    );
  }

  const probe = await probing;
  const fcfsRun = drop['fcfs-coupons'];
  if (fcfsRun && probe) (fcfsRun as { persist_speedup_vs_one_partition: number | null }).persist_speedup_vs_one_partition = probe.speedup;
  const scaleOut: ScaleOutRun[] = [];
  if (systems.scaleOut.size > 0) {
    for (const shards of SCALE_OUT_SHARDS) {
      const run = await scaleOutRun(systems.scaleOut.get(shards)!, shards, ctx, direct);
      scaleOut.push(run);
      failures.push(...run.failures.map((f) => `scale_out/${shards}: ${f}`));
      ctx.log(
        `scale_out / ${shards} shard(s): ${run.decided_per_s} decided/s until sold out after ${run.sold_out_after_s} s, sold out exactly: ${run.sold_out_exactly}, ${run.throttled} throttled`,
      );
    }
  }
  failures.push(...targetFailures(drop['fcfs-coupons'], scaleOut));
  return {
    drop_settings: {
      quota_scale: QUOTA_SCALE,
      upstash_commands_per_second_per_database: UPSTASH_COMMANDS_PER_SECOND / QUOTA_SCALE,
      dynamodb_write_units_per_partition: DYNAMODB_WRITE_UNITS_PER_PARTITION / QUOTA_SCALE,
      connections: shape.connections,
      units: shape.units,
      persist_probe_units: shape.probeUnits,
      scale_out_units: shape.scaleOutUnits,
      requests: shape.requests,
      users: shape.users,
      phases: { pre_opening: shape.preOpening, opening: shape.opening, tail: shape.tail },
      deadline_s: shape.deadlineSeconds,
      fcfs_deadline_s: shape.fcfsDeadlineSeconds,
      cold_start: 'npm run bench:cold-start (bench/README.md)',
    },
    drop,
    persist_probe: probe,
    scale_out: scaleOut,
    failures,
  };
}

/** The targets of issues 14 and 15. */
function targetFailures(fcfs: DropRun | undefined, scaleOut: readonly ScaleOutRun[]): string[] {
  const failed: string[] = [];
  if (fcfs) {
    if (!(fcfs.billed_per_request <= 0.2)) failed.push(`target: fcfs-coupons billed ${fcfs.billed_per_request} commands per request (at most 0.2)`);
    if (!((fcfs.persist_speedup_vs_one_partition ?? 0) >= 8))
      failed.push(`target: fcfs-coupons persisted ${fcfs.persist_speedup_vs_one_partition}x faster than with one partition (at least 8x)`);
  }
  const one = scaleOut.find((r) => r.shards === 1);
  for (const [shards, factor] of [
    [2, 1.6],
    [4, 3.2],
  ] as const) {
    const run = scaleOut.find((r) => r.shards === shards);
    if (!one || !run) continue;
    if (!(run.decided_per_s >= factor * one.decided_per_s))
      failed.push(`target: ${shards} shards decided ${run.decided_per_s}/s, under ${factor}x the ${one.decided_per_s}/s of 1 shard`);
  }
  for (const run of scaleOut) if (!run.sold_out_exactly) failed.push(`target: ${run.shards} shard(s) did not sell out exactly`);
  return failed;
}

/** A few hundred requests on a throwaway coupon, so the JIT and the connections are warm. Not recorded. */
async function warmUp(s: DropSystem, ctx: DropContext): Promise<void> {
  const couponId = `drop-warmup-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`;
  // dynamodb-sync decides a few requests a second under the partition cap.
  const amount = s.system.name === 'dynamodb-sync' ? 20 : 300;
  await s.system.createCoupon(couponId, 20);
  let n = 0;
  await runLoad({
    baseUrl: s.system.baseUrl,
    path: (u) => `${s.system.prefix}/api/v2/users/${u}/coupons/${couponId}/issue`,
    nextUser: () => `w${n++}`,
    connections: 20,
    amount,
  });
  await sleep(1_000);
  ctx.log(`  warmed up ${s.system.name}${s.stack ? ` (${s.stack.redisUrls.length} shard(s))` : ''}`);
}

async function runDrop(s: DropSystem, shape: DropShape, ctx: DropContext, direct: ReturnType<typeof createDynamo>): Promise<DropRun> {
  const { system } = s;
  const couponId = `drop-${system.name}-${Date.now().toString(36)}`;
  const plan = planDrop(shape, 'd');
  // The opening after the pre-opening wave, and time to create the coupon first.
  const openingAt = Date.now() + 1_500 + shape.preOpening.seconds * 1_000;
  const before = await meters(s);
  // fcfs-coupons knows its opening time; the baselines have none: their coupon is created at the opening,
  // and what they answer before it is what their design answers.
  let created: Promise<void>;
  if (system.name === 'fcfs-coupons') created = system.createCoupon(couponId, shape.units, openingAt);
  else created = sleep(openingAt - Date.now()).then(() => system.createCoupon(couponId, shape.units));
  await (system.name === 'fcfs-coupons' ? created : Promise.resolve());
  const winners: string[] = [];
  const losers = (slot: number) => `d${(slot * 7_919) % shape.users}`;
  const load = await sendDrop({
    baseUrl: system.baseUrl,
    path: (userId) => `${system.prefix}/api/v2/users/${userId}/coupons/${couponId}/issue`,
    plan,
    openingAt,
    connections: shape.connections,
    deadlineAt: openingAt + (system.name === 'fcfs-coupons' ? shape.fcfsDeadlineSeconds : shape.deadlineSeconds) * 1_000,
    // Every winner asks again, then losers do: the tail's users are chosen when it is sent.
    tailUser: (slot, answers) => {
      if (winners.length === 0) for (const a of answers) if (a.outcome === 'ACCEPTED') winners.push(a.userId);
      return slot < winners.length ? winners[slot]! : losers(slot);
    },
  });
  await created;
  const accepted = new Set(load.answers.filter((a) => a.status === 200 && a.outcome !== 'REQUEST_RECEIVED').map((a) => a.userId));
  const received = new Set(load.answers.filter((a) => a.status === 200).map((a) => a.userId));
  const expected = Math.min(shape.units, system.name === 'seed-redis' ? received.size : accepted.size);
  const persisted = await settle(s, couponId, expected, ctx.quick ? 60_000 : 300_000, direct);
  const after = await meters(s);
  const view = s.stack ? await adminView(s.stack, couponId) : undefined;
  return summarize(s, shape, load, accepted, persisted, before, after, openingAt, view);
}

/** Waits until `expected` are persisted and the count has not moved for a second; reads them then. */
async function settle(
  s: DropSystem,
  couponId: string,
  expected: number,
  timeoutMs: number,
  direct: ReturnType<typeof createDynamo>,
): Promise<Persisted & { settled: boolean }> {
  // Counted where it costs the system nothing: the ledger read directly (not through its quota proxy,
  // not through its Redis, whose bill is the system's), or PostgreSQL.
  const count = s.system.name === 'seed-redis' ? () => countIssuances(direct, 'bench-seed-redis', couponId) : () => s.system.count(couponId);
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let stable = 0;
  while (Date.now() < deadline && stable < 4) {
    const now = await count();
    stable = now >= expected && now === last ? stable + 1 : 0;
    last = now;
    await sleep(250);
  }
  return { ...(await s.system.persisted(couponId)), settled: stable >= 4 };
}

async function countIssuances(dynamo: ReturnType<typeof createDynamo>, table: string, couponId: string): Promise<number> {
  let total = 0;
  let start: Record<string, any> | undefined;
  do {
    const page = await dynamo.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :issue)',
        ExpressionAttributeValues: { ':pk': { S: `COUPON#${couponId}` }, ':issue': { S: 'ISSUE#' } },
        Select: 'COUNT',
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    total += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return total;
}

interface Meters {
  readonly commands: number;
  readonly throttledUpstash: number;
  readonly dynamo: DynamoUse;
}

async function meters(s: DropSystem): Promise<Meters> {
  const none: DynamoUse = { writeUnits: 0, readUnits: 0, throttled: 0 };
  const [bill, redisRun, dynamo] = await Promise.all([
    s.gateways.length > 0 ? gatewaysBill(s.gateways, UPSTASH_TOKEN) : Promise.resolve({ commands: 0, throttledRequests: 0 }),
    s.redisPort !== undefined ? redisCommandsRun(s.redisPort) : Promise.resolve(undefined),
    s.quotaProxy ? dynamoUse(s.quotaProxy) : Promise.resolve(none),
  ]);
  // The seed design's scheduler bypasses the gateway: what redis-server ran is its whole bill.
  return { commands: redisRun ?? bill.commands, throttledUpstash: bill.throttledRequests, dynamo };
}

async function adminView(
  stack: Stack,
  couponId: string,
): Promise<{ remaining: number; queued: number; inflight: number; issued: number; deadLettered: number }> {
  const reply = await fetch(`${stack.apiUrl}/api/v2/admin/coupons/${couponId}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (!reply.ok) throw new Error(`the admin view of ${couponId} answered ${reply.status}`);
  return (await reply.json()) as never;
}

function summarize(
  s: DropSystem,
  shape: DropShape,
  load: DropLoad,
  accepted: ReadonlySet<string>,
  persisted: Persisted & { settled: boolean },
  before: Meters,
  after: Meters,
  openingAt: number,
  view: { remaining: number; queued: number; inflight: number; issued: number; deadLettered: number } | undefined,
): DropRun {
  const statuses: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  for (const a of load.answers) {
    statuses[a.status] = (statuses[a.status] ?? 0) + 1;
    outcomes[a.outcome] = (outcomes[a.outcome] ?? 0) + 1;
  }
  const failures: string[] = [];
  const distinct = new Set(persisted.users);
  if (distinct.size !== persisted.users.length) failures.push(`${persisted.users.length - distinct.size} duplicate issuances`);
  if (persisted.users.length > shape.units) failures.push(`oversold: ${persisted.users.length} > ${shape.units}`);
  const lost = [...accepted].filter((u) => !distinct.has(u));
  if (lost.length > 0) {
    const theirs = load.answers
      .filter((a) => lost.slice(0, 3).includes(a.userId))
      .map((a) => `${a.userId} ${a.phase} ${a.outcome} at ${Math.round(a.answeredAt)} ms`);
    failures.push(`${lost.length} users answered ACCEPTED are not persisted (${theirs.join(', ')})`);
  }
  if (!persisted.settled) failures.push('still persisting when the bench stopped waiting');
  const answered5xx = load.answers.filter((a) => a.status >= 500).length;
  if (s.system.name === 'fcfs-coupons') {
    // fcfs-coupons has to take a drop: every request decided, every unit sold and persisted, nobody dead-lettered.
    if (!load.finished) failures.push(`${load.unanswered} requests unanswered when the deadline came`);
    if (answered5xx > 0) failures.push(`${answered5xx} requests answered 5xx`);
    if (persisted.users.length !== shape.units)
      failures.push(`issued ${persisted.users.length}, not the ${shape.units} units of a drop that asks for ${shape.requests}`);
    if (view && (view.queued + view.inflight > 0 || view.remaining !== 0 || view.issued !== shape.units))
      failures.push(`the admin view disagrees with the ledger: ${JSON.stringify(view)}`);
    if (view && view.deadLettered > 0) failures.push(`${view.deadLettered} dead-lettered`);
    // A request due just before the opening may reach Redis after it; none may be accepted before it.
    const early = load.answers.filter((a) => a.outcome === 'ACCEPTED' && a.answeredAt < 0).length;
    if (early > 0) failures.push(`${early} requests were accepted before the opening`);
  }
  // What reached a system before the deadline is what it is billed for (its requests, its commands).
  const sent = load.sent;
  const billed = after.commands - before.commands;
  const dynamo = minus(after.dynamo, before.dynamo);
  const throttledUpstash = after.throttledUpstash - before.throttledUpstash;
  const answered = load.answers.length;
  const lastAnswer = Math.max(0, ...load.answers.map((a) => a.answeredAt));
  const decided = load.answers.filter((a) => a.status < 500).length;
  const lastWrite = persisted.issuedAt.length ? Math.max(...persisted.issuedAt) : undefined;
  const cost = costOf({ requests: sent, billedCommands: billed, writeUnits: dynamo.writeUnits, readUnits: dynamo.readUnits });
  const latencies = load.answers.map((a) => a.latencyMs);
  return {
    requests: shape.requests,
    sent,
    answered,
    unanswered: load.unanswered,
    statuses,
    outcomes,
    billed_commands: billed,
    billed_per_request: round(billed / sent, 3),
    write_units: round(dynamo.writeUnits),
    read_units: round(dynamo.readUnits),
    wcu_per_issuance: s.quotaProxy && persisted.users.length > 0 ? round(dynamo.writeUnits / persisted.users.length, 2) : null,
    throttled: throttledUpstash + dynamo.throttled,
    throttled_upstash: throttledUpstash,
    throttled_dynamodb: dynamo.throttled,
    decide_all_s: load.finished ? round(lastAnswer / 1_000, 2) : null,
    decided_per_s: round(decided / Math.max(0.001, lastAnswer / 1_000), 0),
    persist_all_s: persisted.settled && lastWrite !== undefined ? round((lastWrite - openingAt) / 1_000, 2) : null,
    persist_speedup_vs_one_partition: null,
    dead_lettered: view ? view.deadLettered : null,
    issued: persisted.users.length,
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    cost_usd: cost.total,
    cost_breakdown_usd: cost,
    invariant_failures: failures,
  };
}

/**
 * How fast fcfs-coupons' ledger persists the drop's units, with its issuances spread over partitions
 * (a coupon created now) and kept in one partition (a coupon created with partitions: 1, as every coupon
 * was before partitions existed), under the same emulated per-partition cap: the units are admitted with
 * the drain held, then one drain is started (as an admission starts it) and timed until the ledger holds
 * them all. Admission is left out on purpose: under the Upstash cap it is slower than a partitioned
 * ledger, so the drop's own persisting time would measure the admissions instead (bench/README.md).
 */
async function persistProbe(s: DropSystem, units: number, ctx: DropContext, direct: ReturnType<typeof createDynamo>): Promise<PersistProbe> {
  const stack = s.stack!;
  const ledger = new Ledger(direct, FCFS_TABLE);
  const timeOne = async (partitions: 1 | 16) => {
    const couponId = `drop-persist-p${partitions}-${Date.now().toString(36)}`;
    if (partitions === 1) {
      await ledger.createCoupon(newCouponRecord({ couponId, name: couponId, totalQuantity: units, startsAt: Date.now(), endsAt: undefined, partitions: 1 }));
      await adminView(stack, couponId); // builds its Redis state from the ledger
    } else {
      await s.system.createCoupon(couponId, units);
    }
    const made = await ledger.getCoupon(couponId, true);
    if (made?.partitions !== partitions) throw new Error(`persist probe: coupon ${couponId} has ${made?.partitions} partitions, not ${partitions}`);
    const startDrain = await queueWithDrainsHeld(stack, {
      redisPort: stack.redisPorts[0]!,
      lambdaPort: stack.env.LAMBDA_PORT!,
      couponId,
      amount: units,
      connections: 20,
      label: 'persist probe',
    });
    const before = await dynamoUse(stack.quotaProxyUrl!);
    const begun = Date.now();
    await startDrain();
    while ((await s.system.count(couponId)) < units) {
      if (Date.now() - begun > 300_000) throw new Error(`persist probe: ${partitions} partition(s) did not persist ${units} units in 5 minutes`);
      await sleep(50);
    }
    const seconds = (Date.now() - begun) / 1_000;
    const throttled = minus(await dynamoUse(stack.quotaProxyUrl!), before).throttled;
    // Where the issuances went: all under PK=COUPON#<couponId> with one partition, none with 16.
    const underCouponPk = await countIssuances(direct, FCFS_TABLE, couponId);
    if (underCouponPk !== (partitions === 1 ? units : 0))
      throw new Error(`persist probe: ${underCouponPk} issuances under PK=COUPON#${couponId} with ${partitions} partition(s)`);
    ctx.log(`  persisting ${units} units with ${partitions} partition(s): ${round(seconds, 2)} s, ${throttled} throttled calls`);
    return { seconds, throttled };
  };
  const spread = await timeOne(16);
  const one = await timeOne(1);
  return {
    units,
    partitions_16_s: round(spread.seconds, 2),
    partitions_1_s: round(one.seconds, 2),
    speedup: round(one.seconds / spread.seconds, 1),
    throttled_16: spread.throttled,
    throttled_1: one.throttled,
  };
}

/**
 * What each kind of answer bills, one request at a time on fresh coupons of the drop's stack (drains
 * held, so only the request is billed), the gateway's bill read before and after each; the median of
 * three requests of each kind, since a container's running totals for the live page (one HSET per coupon
 * and second, sent along with a request) land on one of them. With one container (serverless offline),
 * a refusal Redis gives cannot be produced here: the last winner's answer already tells the container
 * the coupon sold out (test/admission-billing.test.ts counts it: 2).
 */
async function billingByOutcome(s: DropSystem): Promise<Record<string, number>> {
  const stack = s.stack!;
  const gateway = stack.redisUrls[0]!;
  const redis = new IORedis({ port: stack.redisPorts[0]! });
  redis.on('error', () => undefined);
  const cost = async (couponId: string, userId: string, expect: string) => {
    const before = (await gatewayBill(gateway, UPSTASH_TOKEN)).commands;
    const reply = await fetch(`${stack.apiUrl}/api/v2/users/${userId}/coupons/${couponId}/issue`, { method: 'POST' });
    const body = (await reply.json()) as { result?: string; error?: string };
    if ((body.result ?? body.error) !== expect) throw new Error(`billing probe: ${userId} on ${couponId} was answered ${JSON.stringify(body)}, not ${expect}`);
    return (await gatewayBill(gateway, UPSTASH_TOKEN)).commands - before;
  };
  const median = async (runs: (() => Promise<number>)[]) => {
    const costs: number[] = [];
    for (const run of runs) costs.push(await run());
    return costs.sort((a, b) => a - b)[Math.floor(costs.length / 2)]!;
  };
  try {
    const open = `drop-bill-open-${Date.now().toString(36)}`;
    await s.system.createCoupon(open, 5);
    const releaseOpen = await holdDrain(redis, stack.env.REDIS_KEY_PREFIX!, open, 60_000);
    const later = `drop-bill-later-${Date.now().toString(36)}`;
    await s.system.createCoupon(later, 5, Date.now() + 600_000);
    const result = {
      first_request_of_a_container: await cost(open, 'b0', 'ACCEPTED'),
      winner: await median(['b1', 'b2', 'b3'].map((u) => () => cost(open, u, 'ACCEPTED'))),
      last_winner: await cost(open, 'b4', 'ACCEPTED'),
      refusal_from_the_container: await median(['r1', 'r2', 'r3'].map((u) => () => cost(open, u, 'SOLD_OUT'))),
      winner_asking_again: await median(['b1', 'b2', 'b3'].map((u) => () => cost(open, u, 'ALREADY_ACCEPTED'))),
      first_request_of_a_container_not_open: await cost(later, 'n0', 'NOT_OPEN'),
      not_open_from_the_container: await median(['n1', 'n2', 'n3'].map((u) => () => cost(later, u, 'NOT_OPEN'))),
    };
    await releaseOpen();
    return result;
  } finally {
    redis.disconnect();
  }
}

/**
 * The drop's opening on 1, 2 or 4 databases: twice as many users as units, every one arriving within
 * 1.5 s, over enough connections that the load generator is never what limits 4 shards. Decided per
 * second: answers (ACCEPTED or SOLD_OUT) from the opening until the coupon sold out (its last ACCEPTED),
 * the phase in which every request needs its shard's Redis; after it, containers answer by themselves.
 */
async function scaleOutRun(s: DropSystem, shards: number, ctx: DropContext, direct: ReturnType<typeof createDynamo>): Promise<ScaleOutRun> {
  const units = dropShape(ctx.quick).scaleOutUnits;
  const users = units * 2;
  // Enough connections that the load generator does not limit 4 shards, few enough that a request
  // waiting for 1 shard's cap (30 x 4 commands / 100 per second) stays inside the Redis deadline.
  const connections = 30;
  const couponId = `scale-${shards}-${Date.now().toString(36)}`;
  await s.system.createCoupon(couponId, units);
  const before = await meters(s);
  const openingAt = Date.now() + 300;
  const plan = Array.from({ length: users }, (_, i) => ({ phase: 'opening' as const, at: (i / users) * 1_500, user: `s${i}` }));
  const load = await sendDrop({
    baseUrl: s.system.baseUrl,
    path: (userId) => `/api/v2/users/${userId}/coupons/${couponId}/issue`,
    plan,
    openingAt,
    connections,
    deadlineAt: openingAt + 120_000,
    tailUser: () => 'unused',
  });
  const acceptedAnswers = load.answers.filter((a) => a.outcome === 'ACCEPTED');
  const soldOutAt = Math.max(0, ...acceptedAnswers.map((a) => a.answeredAt));
  const decidedBy = load.answers.filter((a) => (a.outcome === 'ACCEPTED' || a.outcome === 'SOLD_OUT') && a.answeredAt <= soldOutAt).length;
  const persisted = await settle(s, couponId, units, ctx.quick ? 60_000 : 300_000, direct);
  const after = await meters(s);
  const view = await adminView(s.stack!, couponId);
  const failures: string[] = [];
  const accepted = new Set(acceptedAnswers.map((a) => a.userId));
  const distinct = new Set(persisted.users);
  if (!load.finished) failures.push(`${load.unanswered} requests unanswered`);
  if (persisted.users.length !== units) failures.push(`the ledger holds ${persisted.users.length} issuances of ${units} units`);
  if (distinct.size !== persisted.users.length) failures.push('duplicate issuances in the ledger');
  if (accepted.size !== acceptedAnswers.length) failures.push('a user was answered ACCEPTED twice');
  const missing = [...accepted].filter((u) => !distinct.has(u)).length;
  if (missing > 0) failures.push(`${missing} users answered ACCEPTED are not in the ledger`);
  if (view.remaining !== 0 || view.issued !== units || view.queued + view.inflight > 0 || view.deadLettered > 0)
    failures.push(`the shards disagree with the ledger: ${JSON.stringify(view)}`);
  return {
    shards,
    units,
    requests: users,
    decided_per_s: round(decidedBy / Math.max(0.001, soldOutAt / 1_000), 0),
    sold_out_after_s: round(soldOutAt / 1_000, 2),
    sold_out_exactly: failures.length === 0,
    billed_commands: after.commands - before.commands,
    throttled: after.throttledUpstash - before.throttledUpstash,
    answered_503: load.answers.filter((a) => a.status === 503).length,
    failures,
  };
}
