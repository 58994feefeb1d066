/**
 * `npm run bench [-- --quick] [--systems a,b] [--scenarios x,y]`
 *
 * Starts everything itself (redis-server, the Upstash REST gateway, DynamoDB Local, fcfs-coupons under
 * serverless offline as npm start runs it, the baselines under a second serverless offline, the seed
 * design's scheduler), puts every system through the same scenarios with the same load generator,
 * checks the invariants after each run (issued = expected, no duplicate, nothing lost) and fails loudly
 * when one breaks. Writes bench/results/<timestamp>.json, latest.json and a Markdown report with charts.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, freemem, loadavg, totalmem, tmpdir, release } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Redis as IORedis } from 'ioredis';
import pg from 'pg';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { newCouponRecord } from '../lib/ledger/model.js';
import { Ledger, MAX_BATCH } from '../lib/ledger/ledger.js';
import { parseCommandLine, refuse, type Tool } from '../localstack/command-line.js';
import { freePort, PROJECT_ROOT, waitForPort } from '../localstack/processes.js';
import { startStack, type Stack } from '../localstack/stack.js';
import { ensureTable } from '../localstack/table.js';
import { holdDrain, queueWithDrainsHeld } from './hold-drain.js';
import type { Ceilings, HttpCeiling, Run } from './results.js';
import { startBaselines, startSeedScheduler, type Baselines } from './baselines.js';
import { percentile, runLoad, runOpenLoop, runVirtualUsers, type LoadResult } from './load.js';
import { procCpuMeter, runCpu, type CpuSnapshot } from './cpu.js';
import { runDropScenario } from './drop/run.js';
import { chartsWritten, writeReport } from './report.js';
import { scenarios, type Scenario } from './scenarios.js';
import { SCHEMA } from './systems/pessimistic-lock.js';
import { dynamodbSyncSystem, fcfsSystem, pessimisticLockSystem, ROLE, seedRedisSystem, type Persisted, type System, type SystemName } from './systems.js';

const BENCH: Tool = { name: 'bench', usage: 'npm run bench [-- --quick] [--systems a,b] [--scenarios x,y]', refusedExitCode: 2 };
const values = parseCommandLine(BENCH, {
  quick: { type: 'boolean', default: false },
  systems: { type: 'string' },
  scenarios: { type: 'string' },
});

const log = (message: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
const quick = values.quick ?? false;
/** The names a --systems or --scenarios list picks, in the bench's own order; all when not given. */
function wanted<T extends string>(option: string, list: string | undefined, all: readonly T[]): T[] {
  if (list === undefined) return [...all];
  const names = list.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(all as readonly string[]).includes(name));
  if (unknown.length > 0) refuse(BENCH, `--${option} names ${unknown.map((n) => `"${n}"`).join(', ')}, not one of ${all.join(', ')}.`);
  return all.filter((name) => names.includes(name));
}
const allSystems: SystemName[] = ['fcfs-coupons', 'seed-redis', 'pessimistic-lock', 'dynamodb-sync'];
const systemNames = wanted('systems', values.systems, allSystems);
const scenarioNames = wanted('scenarios', values.scenarios, ['seed-profile', 'max-throughput', 'burst', 'constant-rate', 'drop'] as const);
const plan = scenarios(quick).filter((s) => (scenarioNames as readonly string[]).includes(s.name));
const dropWanted = scenarioNames.includes('drop');

const dataDir = mkdtempSync(join(tmpdir(), 'fcfs-bench-'));
const children: ChildProcess[] = [];
/** The processes the bench started, by role, for the CPU accounting (bench/cpu.ts). */
const roles = new Map<number, string>([[process.pid, ROLE.loadGenerator]]);
/** Roles of the local stack's children, by the names localstack/stack.ts gives them. */
const STACK_ROLES: Record<string, string> = {
  'redis-server': ROLE.redis,
  'upstash-gateway': ROLE.gateway,
  'dynamodb-local': ROLE.dynamodbLocal,
  'serverless-offline': ROLE.fcfsOffline,
};
/** Counts a child's CPU under `role` while it lives (its pid may be reused afterwards). */
function knowRole(child: ChildProcess, role: string): void {
  if (!child.pid) return;
  const pid = child.pid;
  roles.set(pid, role);
  child.once('exit', () => roles.delete(pid));
}
const cpuMeter = procCpuMeter(roles);
const CORES = availableParallelism();
let stack: Stack | undefined;
let pool: pg.Pool | undefined;

const pgUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** Stopped in reverse order at the end (the drop's stacks and processes). */
const stoppers: (() => Promise<void>)[] = [];

async function main(): Promise<void> {
  const started = Date.now();
  log(
    `fcfs-coupons bench (${quick ? 'quick' : 'full'}): ${systemNames.join(', ')} x ${[...plan.map((s) => s.name), ...(dropWanted ? ['drop'] : [])].join(', ')}`,
  );
  const machineBefore = machine();
  if (systemNames.includes('pessimistic-lock')) {
    pool = new pg.Pool({ connectionString: pgUrl, max: 4, connectionTimeoutMillis: 2_000 });
    try {
      await pool.query(SCHEMA);
    } catch (error) {
      log(`SKIP pessimistic-lock: no PostgreSQL reachable at ${pgUrl} (${String(error)}); set BENCH_PG_URL to run it.`);
      await pool.end().catch(() => undefined);
      pool = undefined;
    }
  }
  const classic = plan.length > 0 ? await runClassic() : undefined;
  const dropResults = dropWanted
    ? await runDropScenario({
        quick,
        systems: systemNames,
        dataDir,
        log,
        logFile,
        dynamodbEndpoint: stack?.dynamodbEndpoint,
        pool,
        pgUrl,
        onStop: (stop) => stoppers.push(stop),
      })
    : undefined;
  const runs = classic?.runs ?? [];
  const results = {
    machine: { ...machineBefore, load_average_after: machine().load_average },
    mode: quick ? 'quick' : 'full',
    started_at: new Date(started).toISOString(),
    duration_s: Math.round((Date.now() - started) / 1000),
    redis_commands: classic?.redisCommands,
    ceilings: classic?.ceilings,
    drain_only: classic?.drainOnly,
    runs,
    ...(dropResults
      ? {
          drop_settings: dropResults.drop_settings,
          drop: dropResults.drop,
          persist_probe: dropResults.persist_probe,
          scale_out: dropResults.scale_out,
          drop_failures: dropResults.failures,
        }
      : {}),
  };
  const paths = writeResults(results);
  await chartsWritten();
  log(`results: ${paths.json}, ${paths.latest}; report: ${paths.report}`);
  const broken = runs.filter((r) => r.invariant_failures.length > 0);
  if (broken.length > 0) {
    log(`FAILED: invariants broken in ${broken.map((r) => `${r.system}/${r.scenario}`).join(', ')}`);
    process.exitCode = 1;
  }
  if (dropResults && dropResults.failures.length > 0) {
    log(`FAILED: the drop's targets or invariants: ${dropResults.failures.join('; ')}`);
    process.exitCode = 1;
  }
}

/** The four classic scenarios, their ceilings and probes, against the stack without quotas. */
async function runClassic() {
  const adminToken = 'bench-admin-token';
  const upstashToken = 'bench-upstash-token';
  const ports = { api: await freePort(), lambda: await freePort(), dynamodb: await freePort(), gateway: await freePort(), redis: await freePort() };
  // fcfs-coupons and the baselines' serverless offline (which also serves the ceiling handler) start
  // together: bundling one overlaps with the other's and with DynamoDB Local's JVM start.
  const stacksUp = Promise.all([
    startStack({
      dataDir,
      ports,
      tableName: 'fcfs-coupons-bench',
      adminToken,
      upstashToken,
      offline: true,
      offlineLog: join(dataDir, 'logs', 'offline.log'),
      extraEnv: { LOG_LEVEL: 'warn' },
    }).then((started) => (stack = started)),
    startBaselines(
      {
        UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${ports.gateway}`,
        UPSTASH_REDIS_REST_TOKEN: upstashToken,
        DYNAMODB_ENDPOINT: `http://127.0.0.1:${ports.dynamodb}`,
        BENCH_PG_URL: pgUrl,
      },
      logFile('baselines-offline.log'),
    ).then((started) => {
      baselines = started;
      children.push(started.child);
      knowRole(started.child, ROLE.baselinesOffline);
      return started.url;
    }),
  ]);
  const jvmWarming = warmUpDynamoDbLocal(ports.dynamodb, stacksUp);
  jvmWarming.catch(() => undefined); // awaited below, after the stacks: a failure must not go unhandled meanwhile
  const [, baselineUrl] = await stacksUp;
  if (!stack) throw new Error('unreachable: the stack started');
  for (const { child, name } of stack.children) {
    const role = STACK_ROLES[name];
    if (!role) throw new Error(`the stack started a process the bench's CPU accounting does not know: ${name} (add it to STACK_ROLES)`);
    knowRole(child, role);
  }
  if (!cpuMeter) log('no /proc here (not Linux): runs are reported without their CPU accounting');
  const jvm = await jvmWarming;
  log(`warmed up DynamoDB Local's JVM: ${jvm.items} ledger items in ${jvm.seconds} s, the last ${JVM_WARM_UP_TAIL_SECONDS} s at ${jvm.tailItemsPerS} items/s`);
  log(`fcfs-coupons up at ${stack.apiUrl}, baselines and the ceiling handler at ${baselineUrl}`);
  const redisCommands = systemNames.includes('fcfs-coupons') ? await measureRedisCommandsPerAdmission(stack) : undefined;
  if (redisCommands) log(`Redis commands sent per admission: ${redisCommands.per_admission} (${JSON.stringify(redisCommands.by_command)})`);
  const dynamo = createDynamo({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint });
  await ensureTable(dynamo, 'bench-dynamodb-sync');
  await ensureTable(dynamo, 'bench-seed-redis');

  const systems: System[] = [fcfsSystem(stack.apiUrl, adminToken, dynamo, 'fcfs-coupons-bench')];
  if (systemNames.includes('seed-redis')) {
    const scheduler = startSeedScheduler(baselines!, ports.redis, logFile('seed-scheduler.log'));
    children.push(scheduler);
    knowRole(scheduler, ROLE.seedScheduler);
    systems.push(seedRedisSystem(baselineUrl, stack.redisUrl, upstashToken, dynamo, 'bench-seed-redis'));
  }
  if (pool) systems.push(pessimisticLockSystem(baselineUrl, pool));
  if (systemNames.includes('dynamodb-sync')) systems.push(dynamodbSyncSystem(baselineUrl, dynamo, 'bench-dynamodb-sync'));
  const selected = systems.filter((s) => systemNames.includes(s.name));

  // Every system is warmed up the same way before anything is measured (JIT, connection pools, the
  // JVM behind DynamoDB Local): a production service is warm, and a cold first second would say more
  // about the order of the runs than about the systems.
  for (const system of selected) await warmUp(system);
  const ceilings: Partial<Ceilings> = { ledger_direct: await measureLedgerCeiling(dynamo) };
  const drainOnly = systemNames.includes('fcfs-coupons') ? await measureDrain(stack, ports.lambda, dynamo) : undefined;
  if (drainOnly) log(`fcfs-coupons drain alone: ${drainOnly.items} queued issuances persisted at ${drainOnly.items_per_s} items/s`);

  const runs: Run[] = [];
  for (const scenario of plan) {
    if (scenario.name === 'max-throughput') ceilings.serverless_offline_trivial_handler = await measureHttpCeiling(baselineUrl, scenario);
    if (scenario.name === 'seed-profile') ceilings.serverless_offline_trivial_handler_seed_profile = await measureHttpCeiling(baselineUrl, scenario);
    for (const system of selected) {
      log(`${scenario.name} / ${system.name}: ${scenario.description}`);
      const run = await runScenario(system, scenario);
      runs.push(run);
      log(
        `  ${run.requests} requests, ${run.rps.toFixed(0)} req/s, p50 ${run.p50_ms} ms, p95 ${run.p95_ms} ms, p99 ${run.p99_ms} ms, ` +
          `issued ${run.issued}/${run.expected_issued}${run.lag_p99_ms !== undefined ? `, lag p99 ${run.lag_p99_ms} ms` : ''}` +
          (run.cpu
            ? `, ${run.cpu.per_request_ms_total} ms of CPU per request until persisted (${run.cpu.cores} cores keep up with ${run.cpu.sustainable_rps} req/s of it)`
            : '') +
          `${run.invariant_failures.length ? `  INVARIANT BROKEN: ${run.invariant_failures.join('; ')}` : ''}`,
      );
    }
  }

  return { redisCommands, ceilings, drainOnly, runs };
}

let baselines: Baselines | undefined;

const WARM_UP_SECONDS = quick ? 2 : 10;
/**
 * DynamoDB Local's JVM compiles its hot paths during its first ~15-20 s of load: measured here, its CPU
 * per ledger item fell from 2.7-2.9 ms in the first 4 s of writes to 0.9-1.1 ms at 8-12 s and 0.5-0.6 ms
 * from 16 s on. Writing while the stacks start (serverless offline bundles for ~10 s meanwhile) takes
 * most of that off the runs that come first, overlapping the start rather than adding to it (it shares
 * the cores with the bundling). A 20 s floor instead (8-10 s more start) made no consistent difference
 * to the runs that followed, in two interleaved pairs.
 */
const JVM_WARM_UP_SECONDS = 10;
const JVM_WARM_UP_TAIL_SECONDS = 4;

const OPEN_LOOP_WARM_UP_RATE = 1_000;
const OPEN_LOOP_WARM_UP_SECONDS = 2;

/**
 * Load a throwaway coupon for a few seconds, closed loop then open loop, and wait until the system is
 * idle again. Not recorded.
 */
async function warmUp(system: System): Promise<void> {
  const couponId = `bench-warmup-${Date.now().toString(36)}-${++couponSeq}`;
  // Enough units to run every path (admission, drain or scheduler, ledger writes), few enough that the
  // slowest scheduler persists them in seconds.
  await system.createCoupon(couponId, 500);
  let n = 0;
  await runLoad({
    baseUrl: system.baseUrl,
    path: (u) => `${system.prefix}/api/v2/users/${u}/coupons/${couponId}/issue`,
    nextUser: () => `w${n++}`,
    connections: 100,
    durationSeconds: WARM_UP_SECONDS,
  });
  // Then an open loop, as constant-rate's: the first one a system meets (hundreds of connections opened
  // as answers slow down, and as many invocations in flight) was far slower than the next. Measured in two
  // interleaved pairs (npm run bench -- --quick --systems fcfs-coupons,seed-redis --scenarios
  // constant-rate): constant-rate's p99 was 61 and 194 ms for fcfs-coupons with this warm-up, 2,982 and
  // 5,003 ms without; seed-redis 2,217 and 3,755 ms with it, 4,105 and 9,211 ms without. In a whole quick
  // run, where constant-rate comes minutes later, it did not remove fcfs-coupons' tail (README).
  await runOpenLoop({
    baseUrl: system.baseUrl,
    path: (u) => `${system.prefix}/api/v2/users/${u}/coupons/${couponId}/issue`,
    nextUser: () => `w${n++}`,
    ratePerSecond: OPEN_LOOP_WARM_UP_RATE,
    seconds: OPEN_LOOP_WARM_UP_SECONDS,
    maxConnections: 2_000,
  });
  await settled(system, couponId, 0);
  log(`warmed up ${system.name} (${n} requests)`);
}

/**
 * Wait until what was accepted is persisted (asynchronous systems): at least `expected` persisted,
 * nothing pending, and the count unchanged for a second (the seed design's scheduler holds popped
 * items where no one can see them). The next run starts only then, on an idle machine. Polls the
 * system's cheap count; the items themselves are read once, at the end. With `meter`, also reads the
 * CPU snapshot that ends a run's accounting, just before that read.
 */
async function settled(
  system: System,
  couponId: string,
  expected: number,
  meter?: typeof cpuMeter,
): Promise<Persisted & { timedOut: boolean; cpuWhenSettled?: CpuSnapshot }> {
  // At least 50 items/s of persistence is waited for (the seed design's scheduler does 100-300).
  const begun = Date.now();
  const deadline = begun + (quick ? 60_000 : 300_000) + expected * 20;
  for (;;) {
    let count = await system.count(couponId);
    let stable = 0;
    while (stable < 4 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const previous = count;
      count = await system.count(couponId);
      const quiet = count >= expected && count === previous && (await system.pending(couponId)) === 0;
      stable = quiet ? stable + 1 : 0;
    }
    // Before the items are read: reading them all is the bench's cost, not the system's (a second
    // round, rare, counts the first round's read too).
    const cpuWhenSettled = meter?.snapshot();
    const persisted = await system.persisted(couponId);
    const timedOut = stable < 4;
    if (timedOut) log(`  ${system.name} had not settled after waiting ${Math.round((Date.now() - begun) / 1000)} s`);
    // A count ahead of the items is a write still in flight (the seed scheduler counts a user just
    // before its insert): wait for it.
    if (timedOut || persisted.users.length >= count) return { ...persisted, timedOut, cpuWhenSettled };
  }
}

/**
 * Write ledger batches into DynamoDB Local (a throwaway table) from the moment it listens until the
 * stacks are up, and for at least JVM_WARM_UP_SECONDS. Stops quietly when the stacks fail to start (that
 * failure is the one reported).
 */
async function warmUpDynamoDbLocal(port: number, stacksUp: Promise<unknown>): Promise<{ items: number; seconds: number; tailItemsPerS: number }> {
  let stacksSettled = false;
  let stacksFailed = false;
  stacksUp.then(
    () => (stacksSettled = true),
    () => (stacksSettled = stacksFailed = true),
  );
  const none = { items: 0, seconds: 0, tailItemsPerS: 0 };
  try {
    while (
      !(await waitForPort(port, 'DynamoDB Local', undefined, 1_000).then(
        () => true,
        () => false,
      ))
    )
      if (stacksFailed) return none;
    const dynamo = createDynamo({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}` });
    const table = 'bench-jvm-warm-up';
    await ensureTable(dynamo, table);
    const begun = Date.now();
    const written: { at: number; total: number }[] = [];
    const total = await writeLedgerBatches(new Ledger(dynamo, table), 'jvm-warm-up', (items) => {
      written.push({ at: Date.now(), total: items });
      return !stacksFailed && (!stacksSettled || Date.now() - begun < JVM_WARM_UP_SECONDS * 1_000);
    });
    if (stacksFailed) return none;
    const end = written.at(-1) ?? { at: begun, total: 0 };
    const tailStart = written.findLast((w) => w.at <= end.at - JVM_WARM_UP_TAIL_SECONDS * 1_000) ?? { at: begun, total: 0 };
    return {
      items: total,
      seconds: Math.round((end.at - begun) / 1_000),
      tailItemsPerS: end.at > tailStart.at ? Math.round(((end.total - tailStart.total) / (end.at - tailStart.at)) * 1_000) : 0,
    };
  } catch (error) {
    if (stacksFailed) return none;
    throw error;
  }
}

/**
 * What this machine allows right now, each measured right next to what it is the ceiling of (the noise
 * of a shared machine moves by the minute): a do-nothing handler under serverless offline driven exactly
 * like the scenario (max-throughput: its throughput; seed-profile: its latency), just before its runs.
 */
async function measureHttpCeiling(baselineUrl: string, scenario: Scenario): Promise<HttpCeiling> {
  let n = 0;
  const base = { baseUrl: baselineUrl, path: (u: string) => `/ceiling/api/v2/users/${u}/coupons/ceiling/issue`, nextUser: () => `t${n++}` };
  await runLoad({ ...base, connections: 100, durationSeconds: WARM_UP_SECONDS });
  const before = cpuMeter?.snapshot();
  const load = await drive(base, scenario);
  const after = cpuMeter?.snapshot();
  const ceiling: HttpCeiling = {
    requests: load.requests,
    rps: Math.round((load.requests / load.durationMs) * 1000),
    p50_ms: round1(percentile(load.latenciesMs, 50)),
    p95_ms: round1(percentile(load.latenciesMs, 95)),
    p99_ms: round1(percentile(load.latenciesMs, 99)),
  };
  if (cpuMeter && before && after) {
    // Nothing to persist: the load's end is the whole window.
    const cpu = runCpu(
      { start: before, loadEnd: after, persisted: after },
      [ROLE.baselinesOffline, ROLE.loadGenerator],
      load.requests + load.unanswered,
      CORES,
      cpuMeter.ticksPerSecond,
    );
    ceiling.cpu_per_request_ms = cpu.per_request_ms_total;
  }
  log(
    `ceiling now (${scenario.name}): a do-nothing handler under serverless offline does ${ceiling.rps} req/s (p50 ${ceiling.p50_ms} ms, p95 ${ceiling.p95_ms} ms, p99 ${ceiling.p99_ms} ms)` +
      (ceiling.cpu_per_request_ms !== undefined ? `, ${ceiling.cpu_per_request_ms} ms of CPU per request with the load generator's` : ''),
  );
  return ceiling;
}

/**
 * The ledger's batch write (99 conditional puts and the guarded counter, one transaction at a time, as
 * one drain writes) straight into DynamoDB Local with nothing else running: the drain's ceiling,
 * measured just before the drain is.
 */
async function measureLedgerCeiling(dynamo: ReturnType<typeof createDynamo>): Promise<Ceilings['ledger_direct']> {
  const seconds = quick ? 4 : 10;
  const begun = Date.now();
  const written = await writeLedgerBatches(
    new Ledger(dynamo, 'fcfs-coupons-bench'),
    `bench-ledger-${Date.now().toString(36)}`,
    () => Date.now() - begun < seconds * 1_000,
  );
  const ceiling = { items: written, batch: MAX_BATCH, items_per_s: Math.round((written / (Date.now() - begun)) * 1000) };
  log(`ceiling now: the ledger alone writes ${ceiling.items_per_s} items/s into DynamoDB Local`);
  return ceiling;
}

/**
 * Full ledger batches (MAX_BATCH new users each, one transaction at a time, as one drain writes) on a new
 * coupon with room for all of them, while `more(itemsWrittenSoFar)` says so. Returns the items written.
 */
async function writeLedgerBatches(ledger: Ledger, couponId: string, more: (written: number) => boolean): Promise<number> {
  await ledger.createCoupon(newCouponRecord({ couponId, name: couponId, totalQuantity: 100_000_000, startsAt: 0, endsAt: undefined, createdAt: Date.now() }));
  let written = 0;
  while (more(written)) {
    const batch = Array.from({ length: MAX_BATCH }, (_, i) => ({ userId: `l${written + i}`, ticket: written + i + 1, requestedAt: Date.now() }));
    await ledger.persistBatch(couponId, 100_000_000, batch);
    written += batch.length;
  }
  return written;
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;

function logFile(name: string): number {
  mkdirSync(join(dataDir, 'logs'), { recursive: true });
  return openSync(join(dataDir, 'logs', name), 'a');
}

let couponSeq = 0;

/** Run a scenario's load with the generator its shape needs (see bench/load.ts). */
function drive(base: { baseUrl: string; path: (userId: string) => string; nextUser: () => string }, scenario: Scenario): Promise<LoadResult> {
  if (scenario.steps) return runVirtualUsers({ ...base, steps: scenario.steps, thinkMs: scenario.thinkMs ?? 0 });
  if (scenario.overallRate) {
    return runOpenLoop({ ...base, ratePerSecond: scenario.overallRate, seconds: scenario.seconds ?? 5, maxConnections: scenario.connections ?? 2_000 });
  }
  return runLoad({ ...base, connections: scenario.connections ?? 100, durationSeconds: scenario.seconds, amount: scenario.amount });
}

async function runScenario(system: System, scenario: Scenario): Promise<Run> {
  const couponId = `bench-${scenario.name}-${Date.now().toString(36)}-${++couponSeq}`;
  await system.createCoupon(couponId, scenario.units);
  let next = 0;
  const nextUser =
    scenario.users.kind === 'new'
      ? () => `u${couponSeq}x${next++}`
      : scenario.users.kind === 'random'
        ? (
            (count: number) => () =>
              `u${1 + Math.floor(Math.random() * count)}`
          )(scenario.users.count)
        : (
            (count: number) => () =>
              `u${(next++ * 7_919) % count}`
          )(scenario.users.count);
  const path = (userId: string) => `${system.prefix}/api/v2/users/${userId}/coupons/${couponId}/issue`;
  const base = { baseUrl: system.baseUrl, path, nextUser };

  const cpuAtStart = cpuMeter?.snapshot();
  const runStarted = Date.now();
  const load = await drive(base, scenario);
  const cpuAtLoadEnd = cpuMeter?.snapshot();

  const expected = Math.min(scenario.units, load.usersWith200.size);
  const persisted = await settled(system, couponId, expected, cpuMeter);
  // Invariants. A timed run ends with requests in flight whose answers it does not wait for: those may
  // be issued too, and so may requests answered 5xx (a handler that outran its Lambda timeout carries
  // on; a 503 after a store timeout may have been applied): at most that many units beyond the users
  // answered 200.
  const failures: string[] = [];
  const distinct = new Set(persisted.users);
  if (distinct.size !== persisted.users.length) failures.push(`${persisted.users.length - distinct.size} duplicate issuances`);
  if (persisted.users.length > scenario.units) failures.push(`oversold: ${persisted.users.length} > ${scenario.units}`);
  const lost = [...load.usersWith200].filter((u) => !distinct.has(u)).length;
  const soldOut = persisted.users.length === scenario.units;
  if (lost > 0 && !(system.name === 'seed-redis' && soldOut)) failures.push(`${lost} users answered 200 are not persisted`);
  if (persisted.timedOut) failures.push('still persisting when the bench stopped waiting (not necessarily lost)');
  if (persisted.users.length < expected) failures.push(`issued ${persisted.users.length}, expected ${expected}`);
  if (persisted.users.length > expected + load.unanswered + load.answered5xx) {
    failures.push(
      `issued ${persisted.users.length}, more than the ${expected} answered 200 plus ${load.unanswered} unanswered and ${load.answered5xx} answered 5xx`,
    );
  }

  const unexpected = Object.entries(load.statuses)
    .filter(([code]) => code !== '200' && code !== '409')
    .reduce((n, [, c]) => n + c, 0);
  const lags = persisted.issuedAt.map((issued, i) => Math.max(0, issued - persisted.requestedAt[i]!));
  const firstWrite = Math.min(...persisted.issuedAt);
  const lastWrite = Math.max(...persisted.issuedAt);
  const run: Run = {
    system: system.name,
    scenario: scenario.name,
    requests: load.requests,
    // Answers that decide (200, 409) per second: a 503 or a crash is reported in non2xx_unexpected, not
    // counted as throughput.
    rps: Math.round(((load.requests - unexpected) / load.durationMs) * 1000),
    p50_ms: round1(percentile(load.latenciesMs, 50)),
    p95_ms: round1(percentile(load.latenciesMs, 95)),
    p99_ms: round1(percentile(load.latenciesMs, 99)),
    max_ms: round1(percentile(load.latenciesMs, 100)),
    non2xx_unexpected: unexpected,
    errors: load.errors,
    issued: persisted.users.length,
    expected_issued: expected,
    unanswered_at_end: load.unanswered,
    answered_5xx: load.answered5xx,
    statuses: load.statuses,
    invariant_failures: failures,
  };
  // Per request sent: one left unanswered (timed out, in flight at the end) may have been served too.
  // A run that never settled has no end to measure to.
  if (cpuMeter && cpuAtStart && cpuAtLoadEnd && persisted.cpuWhenSettled && !persisted.timedOut) {
    const sent = load.requests + load.unanswered;
    run.cpu = runCpu({ start: cpuAtStart, loadEnd: cpuAtLoadEnd, persisted: persisted.cpuWhenSettled }, system.processes, sent, CORES, cpuMeter.ticksPerSecond);
    if (run.cpu.unseen.length > 0) log(`  no process found for ${run.cpu.unseen.join(', ')}: its CPU is missing from this run's figures`);
  }
  if (persisted.users.length > 0) {
    run.lag_p50_ms = percentile(lags, 50);
    run.lag_p95_ms = percentile(lags, 95);
    run.lag_p99_ms = percentile(lags, 99);
    run.persisted_after_ms = lastWrite - runStarted;
    run.persist_rate_per_s = lastWrite > firstWrite ? Math.round((persisted.users.length / (lastWrite - firstWrite)) * 1000) : undefined;
    if (scenario.name === 'burst') {
      // The quick burst persists its units within a second or two: whole seconds would hide who was first.
      const stepMs = quick ? 100 : 1_000;
      const perStep = new Array<number>(Math.floor((lastWrite - runStarted) / stepMs) + 1).fill(0);
      for (const t of persisted.issuedAt) perStep[Math.max(0, Math.floor((t - runStarted) / stepMs))]! += 1;
      let total = 0;
      run.persisted_timeline = perStep.map((n) => (total += n));
      run.persisted_timeline_step_ms = stepMs;
    }
  }
  return run;
}

/**
 * The drain on its own: admissions of new users are queued while the coupon's drain is held off (its
 * drain mark set, out of the scheduled drain's index), then one drain is started the way an admission
 * starts it (an asynchronous invoke of the drain function) and timed from that invoke until nothing is
 * queued or in flight, with nothing else running. What the drain adds to the ledger's own cost shows against
 * ceilings.ledger_direct.
 */
async function measureDrain(stack: Stack, lambdaPort: number, dynamo: ReturnType<typeof createDynamo>) {
  const couponId = `bench-drain-${Date.now().toString(36)}`;
  const items = quick ? 5_000 : 20_000;
  const system = fcfsSystem(stack.apiUrl, 'bench-admin-token', dynamo, 'fcfs-coupons-bench');
  await system.createCoupon(couponId, items);
  const startDrain = await queueWithDrainsHeld(stack, {
    redisPort: redisPortOf(stack),
    lambdaPort,
    couponId,
    amount: items,
    connections: 100,
    label: 'drain probe',
  });
  // Timed like the ledger's ceiling: from the start (the invoke) until nothing is queued or in flight
  // (every batch written and acknowledged), polled every 50 ms.
  const begun = Date.now();
  await startDrain();
  while ((await system.pending(couponId)) > 0) {
    if (Date.now() - begun > 300_000) throw new Error('drain probe: the drain did not finish within 5 minutes');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const elapsed = Date.now() - begun;
  const persisted = await settled(system, couponId, items);
  if (persisted.users.length !== items) throw new Error(`drain probe: ${persisted.users.length} of ${items} queued issuances persisted`);
  return { items, seconds: round1(elapsed / 1000), items_per_s: Math.round((items / elapsed) * 1000) };
}

/**
 * Redis' own view of what one admission sends: MONITOR around 2,000 admissions of new users, counting
 * the commands clients sent for the probe's coupon (MONITOR marks the commands a script runs as "lua";
 * those are not round trips). The coupon's drain mark is held and the coupon is out of the scheduled
 * drain's index during the probe, so only admissions talk to Redis about it.
 */
async function measureRedisCommandsPerAdmission(stack: Stack) {
  const couponId = `bench-commands-${Date.now().toString(36)}`;
  const system = fcfsSystem(stack.apiUrl, 'bench-admin-token', createDynamo({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }), 'fcfs-coupons-bench');
  await system.createCoupon(couponId, 1_000_000);
  const redis = new IORedis({ port: redisPortOf(stack) });
  redis.on('error', () => undefined);
  try {
    const release = await holdDrain(redis, stack.env.REDIS_KEY_PREFIX!, couponId, 120_000);
    // One admission first: a fresh process's first EVALSHA meets NOSCRIPT and loads the script (EVAL);
    // that happens once per script cache, not per admission, and is left out of the count.
    await fetch(`${stack.apiUrl}/api/v2/users/warmup/coupons/${couponId}/issue`, { method: 'POST' });
    const byCommand: Record<string, number> = {};
    let scriptCommands = 0;
    const stopMonitoring = await monitorRedis(redisPortOf(stack), (line) => {
      if (!line.includes(couponId)) return;
      // <time> [<db> <client address, or "lua" inside a script>] "<command>" "<arg>"...
      const source = /\[\d+ ([^\]]+)\]/.exec(line)?.[1];
      const command = /\] "([^"]*)"/.exec(line)?.[1]?.toLowerCase() ?? 'unparsed';
      if (source === 'lua') scriptCommands += 1;
      else byCommand[command] = (byCommand[command] ?? 0) + 1;
    });
    let n = 0;
    const load = await runLoad({
      baseUrl: stack.apiUrl,
      path: (u) => `/api/v2/users/${u}/coupons/${couponId}/issue`,
      nextUser: () => `c${n++}`,
      connections: 20,
      amount: 2_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Stop watching before the probe's own clean-up commands, so that they are not counted.
    await stopMonitoring();
    await release();
    const total = Object.values(byCommand).reduce((a, b) => a + b, 0);
    return {
      admissions: load.requests,
      by_command: byCommand,
      per_admission: Math.round((total / load.requests) * 1000) / 1000,
      commands_run_inside_the_script_per_admission: Math.round((scriptCommands / load.requests) * 10) / 10,
    };
  } finally {
    redis.disconnect();
  }
}

/**
 * Redis's MONITOR feed, a line per command, on a plain socket. ioredis's monitor mode fails its
 * connection ("Command queue state error") when another client's command is echoed in the same packet
 * as MONITOR's +OK, which a busy stack makes likely. Resolves once monitoring; the returned function
 * closes the feed.
 */
async function monitorRedis(port: number, onLine: (line: string) => void): Promise<() => Promise<void>> {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  const closed = new Promise((resolve) => socket.once('close', resolve));
  let pending = '';
  let monitoring!: () => void;
  const started = new Promise<void>((resolve, reject) => {
    monitoring = resolve;
    socket.once('error', reject);
  });
  socket.on('data', (chunk: string) => {
    pending += chunk;
    for (let end = pending.indexOf('\r\n'); end >= 0; end = pending.indexOf('\r\n')) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 2);
      if (line === '+OK') monitoring();
      else if (line.startsWith('+')) onLine(line.slice(1));
    }
  });
  socket.write('MONITOR\r\n');
  try {
    await started;
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return async () => {
    socket.end();
    await closed;
  };
}

function redisPortOf(stack: Stack): number {
  const redis = stack.children.find((c) => c.name === 'redis-server');
  const args = (redis?.child.spawnargs ?? []) as string[];
  return Number(args[args.indexOf('--port') + 1]);
}

function machine() {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpu_model: cpu[0]?.model ?? 'unknown',
    memory_gb: Math.round(totalmem() / 2 ** 30),
    free_memory_gb: Math.round(freemem() / 2 ** 30),
    load_average: loadavg().map((l) => Math.round(l * 100) / 100),
    os: `${process.platform} ${release()}`,
    node: process.version,
    load_generator: 'autocannon 8 for closed loops, Node virtual users and open loop for the paced scenarios (k6 not on PATH)',
  };
}

function writeResults(results: { runs: Run[] } & Record<string, unknown>) {
  const dir = join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const json = join(dir, `${stamp}.json`);
  const latest = join(dir, 'latest.json');
  const text = `${JSON.stringify(results, null, 2)}\n`;
  writeFileSync(json, text);
  writeFileSync(latest, text);
  const report = writeReport(results as never, dir, stamp);
  return { json, latest, report };
}

async function shutdown(): Promise<void> {
  for (const stop of stoppers.splice(0).reverse()) await stop().catch((error: unknown) => log(`stopping the drop's processes: ${String(error)}`));
  for (const child of children) child.kill('SIGTERM');
  for (const child of children) if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
  baselines?.cleanUp();
  await pool?.end().catch(() => undefined);
  await stack?.stop();
  if (!process.env.BENCH_KEEP_DATA) rmSync(dataDir, { recursive: true, force: true });
}

process.on('SIGINT', () => void shutdown().then(() => process.exit(130)));
try {
  await main();
} catch (error) {
  log(`bench failed: ${error instanceof Error ? error.stack : String(error)}`);
  process.exitCode = 1;
} finally {
  await shutdown();
}
