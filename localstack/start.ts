/**
 * `npm start [-- --shards N]`: the whole local system in one command, on this machine, without Docker.
 * Prints where everything is; Ctrl-C or SIGTERM stops every child. State lives in .data/ (DATA_DIR)
 * and survives restarts, including a kill -9 of the whole process group; `npm run reset` wipes it.
 * `--shards N` runs N Upstash databases (a redis-server and a gateway each; 1 by default), and
 * QUOTA_SCALE=S emulates the cloud's quotas divided by S (off by default; docs/quota-emulation.md).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { functionTimeouts, settingsContradictions } from '../deploy/settings-check.js';
import { loadConfig, MAX_SHARDS } from '../lib/config.js';
import { parseNewCoupon } from '../lib/coupons/campaigns.js';
import { ConfigError, InvalidInputError } from '../lib/errors.js';
import { parseCommandLine, refuse, type Tool } from './command-line.js';
import { PROJECT_ROOT, StackError } from './processes.js';
import { reconcileAfterUncleanStop } from './recover.js';
import { startStack, type Stack } from './stack.js';

const env = process.env;
const START: Tool = {
  name: 'fcfs-coupons',
  usage: 'npm start [-- --shards N]   (N Upstash databases, 1 to 32; QUOTA_SCALE=S emulates the quotas / S)',
  refusedExitCode: 1,
};
const options = parseCommandLine(START, { shards: { type: 'string', default: '1' } });
const shards = /^\d{1,3}$/.test(options.shards) ? Number(options.shards) : Number.NaN;
if (!(shards >= 1 && shards <= MAX_SHARDS))
  refuse(START, `--shards must be a whole number of Upstash databases from 1 to ${MAX_SHARDS}, got "${options.shards}".`);
const quotaScale = env.QUOTA_SCALE ? (/^\d{1,6}(\.\d+)?$/.test(env.QUOTA_SCALE) ? Number(env.QUOTA_SCALE) : Number.NaN) : undefined;
if (quotaScale !== undefined && !(quotaScale >= 1))
  refuse(START, `QUOTA_SCALE must be a number of at least 1 (the cloud's quotas are divided by it), got "${env.QUOTA_SCALE}".`);
const port = (name: string, fallback: number) => {
  const value = Number(env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > 65_535) fail(`${name} must be a port number, got "${env[name]}".`);
  return value;
};

const dataDir = resolve(env.DATA_DIR ?? join(PROJECT_ROOT, '.data'));
const ports = {
  api: port('API_PORT', 8080),
  lambda: port('LAMBDA_PORT', 3002),
  dynamodb: port('DYNAMODB_PORT', 8000),
  gateway: port('GATEWAY_PORT', 8079),
  redis: port('REDIS_PORT', 6380),
  // Shard i (from 0) after the first: redis-server on REDIS_PORT + i, its gateway on GATEWAY_PORT + 100 × i.
  moreShards: Array.from({ length: shards - 1 }, (_, i) => ({ redis: port('REDIS_PORT', 6380) + i + 1, gateway: port('GATEWAY_PORT', 8079) + 100 * (i + 1) })),
  dynamodbProxy: port('DYNAMODB_PROXY_PORT', port('DYNAMODB_PORT', 8000) + 1),
};
const adminToken = env.ADMIN_TOKEN || 'local-admin-token';
const seedCouponId = env.SEED_COUPON_ID ?? '1';
const rawSeedQuantity = env.SEED_COUPON_QUANTITY || '10000';
const seedQuantity = /^\d{1,15}$/.test(rawSeedQuantity) ? Number(rawSeedQuantity) : Number.NaN;
const seeding = seedCouponId !== '' && seedQuantity !== 0;
const externalRedis =
  env.UPSTASH_REDIS_REST_URL && env.UPSTASH_REDIS_REST_TOKEN ? { url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN } : undefined;
const externalDynamo = env.LOCAL_DYNAMODB === 'false' ? ('aws' as const) : undefined;
if (externalRedis && shards > 1)
  refuse(START, '--shards starts local databases; with UPSTASH_REDIS_REST_URL set, list your databases there (comma-separated) instead.');
if (externalDynamo && quotaScale !== undefined)
  refuse(START, "QUOTA_SCALE emulates DynamoDB's quotas in front of DynamoDB Local; unset it with LOCAL_DYNAMODB=false.");
{
  const taken = [
    ports.api,
    ports.lambda,
    ports.dynamodb,
    ports.gateway,
    ports.redis,
    ...ports.moreShards.flatMap((s) => [s.redis, s.gateway]),
    ...(quotaScale ? [ports.dynamodbProxy] : []),
  ];
  const twice = taken.find((p, i) => taken.indexOf(p) !== i);
  if (twice !== undefined)
    refuse(
      START,
      `port ${twice} would serve two of the stack's processes (shard i uses REDIS_PORT + i and GATEWAY_PORT + 100 × i): move API_PORT, LAMBDA_PORT, DYNAMODB_PORT, DYNAMODB_PROXY_PORT, GATEWAY_PORT or REDIS_PORT.`,
    );
}
{
  // Shard i's ports are derived: each must still be a port.
  const above = ports.moreShards
    .flatMap((s, i) => [
      { shard: i + 2, what: 'redis-server', port: s.redis },
      { shard: i + 2, what: 'gateway', port: s.gateway },
    ])
    .find((p) => p.port > 65_535);
  if (above)
    refuse(
      START,
      `shard ${above.shard} would need ${above.what} port ${above.port}, above 65535 (shard i uses REDIS_PORT + i and GATEWAY_PORT + 100 × i): lower GATEWAY_PORT or REDIS_PORT, or run fewer --shards.`,
    );
}
/** The shard count DATA_DIR's Redis state was made with, written once the stack has started. */
const shardsFile = join(dataDir, 'shards');
if (!externalRedis) {
  const had = shardsOfState();
  // A coupon's units are split over the shards it was loaded on: another count answers from part of them.
  if (had !== undefined && had !== shards)
    fail(
      `${dataDir} holds the state of ${had} shard${had === 1 ? '' : 's'}, not ${shards}: a coupon's units are split per shard, so start with --shards ${had}, or run npm run reset to begin again with ${shards}.`,
    );
}
const pidFile = join(dataDir, 'stack.pids');
/**
 * Present from an unclean stop until a reconcile of every coupon has succeeded: a start that fails or
 * is killed before reconciling, or a reconcile that fails, leaves it for the next start.
 */
const reconcileMarker = join(dataDir, 'reconcile-needed');

function fail(message: string): never {
  console.error(`fcfs-coupons: ${message}`);
  process.exit(1);
}

/**
 * The shard count recorded in DATA_DIR, or, from a start before it was recorded, told by the redis
 * folders (redis, redis-2, ... redis-N); undefined for a DATA_DIR without Redis state.
 */
function shardsOfState(): number | undefined {
  if (existsSync(shardsFile)) return Number(readFileSync(shardsFile, 'utf8').trim());
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) return undefined;
  const numbered = readdirSync(dataDir).flatMap((entry) => (/^redis-\d+$/.test(entry) ? [Number(entry.slice('redis-'.length))] : []));
  if (numbered.length > 0) return Math.max(...numbered);
  return existsSync(join(dataDir, 'redis')) ? 1 : undefined;
}

/**
 * Children left behind by a start that was killed on its own (not with its process group).
 * True when an earlier start did not stop cleanly (its pid file is still there).
 */
function stopLeftovers(): boolean {
  if (!existsSync(pidFile)) return false;
  for (const pid of readFileSync(pidFile, 'utf8').split(/\s+/).filter(Boolean).map(Number)) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone, or not Linux
    }
    if (cmdline.includes(dataDir) || cmdline.includes('upstash-gateway') || cmdline.includes('serverless.js')) {
      console.log(`Stopping process ${pid} left by an earlier start.`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  rmSync(pidFile, { force: true });
  return true;
}

async function seedCoupon(stack: Stack): Promise<string> {
  if (!seeding) return 'none (SEED_COUPON_QUANTITY=0 or SEED_COUPON_ID empty)';
  const headers = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
  // Read first: an identical create answers 201 as well (a retried create is idempotent).
  const existing = await fetch(`${stack.apiUrl}/api/v2/admin/coupons/${encodeURIComponent(seedCouponId)}`, { headers });
  if (existing.status === 200) return `coupon ${seedCouponId} already exists (kept as it is)`;
  if (existing.status !== 404) throw new StackError(`reading seed coupon ${seedCouponId} failed: ${existing.status} ${await existing.text()}`);
  const reply = await fetch(`${stack.apiUrl}/api/v2/admin/coupons`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ couponId: seedCouponId, name: `Seed coupon ${seedCouponId}`, totalQuantity: seedQuantity }),
  });
  if (reply.status === 201) return `coupon ${seedCouponId} created with ${seedQuantity} units`;
  if (reply.status === 409) return `coupon ${seedCouponId} already exists (kept as it is)`;
  throw new StackError(`seeding coupon ${seedCouponId} failed: ${reply.status} ${await reply.text()}`);
}

/** Drain once at start, so a queue left by a crash is persisted now rather than at the next minute. */
async function drainOnce(): Promise<void> {
  await fetch(`http://127.0.0.1:${ports.lambda}/2015-03-31/functions/fcfs-coupons-local-drain/invocations`, {
    method: 'POST',
    headers: { 'x-amz-invocation-type': 'Event' },
    body: '{}',
  }).catch((error: unknown) => console.warn(`The initial drain could not be started (${String(error)}); the schedule will run it.`));
}

/**
 * Checked before anything starts: the seed coupon, and the handlers' settings (DRAIN_*, RATE_LIMIT_*,
 * REDIS_*, AUTH_MODE...), which they read from this environment at their first request, where a bad one
 * would make every request fail with 500, each against the others and the functions' timeouts. What
 * npm start sets itself is filled in.
 */
function checkSettings(): void {
  if (seeding) {
    // The admin API would refuse a bad seed coupon only once everything is up.
    if (Number.isNaN(seedQuantity)) fail(`SEED_COUPON_QUANTITY must be a whole number (0 = no seed coupon), got "${env.SEED_COUPON_QUANTITY}".`);
    try {
      parseNewCoupon({ couponId: seedCouponId, name: `Seed coupon ${seedCouponId}`, totalQuantity: seedQuantity });
    } catch (error) {
      if (error instanceof InvalidInputError) fail(`seed coupon (SEED_COUPON_ID, SEED_COUPON_QUANTITY): ${error.message}.`);
      throw error;
    }
  }
  try {
    const config = loadConfig({
      ...env,
      STAGE: 'local',
      UPSTASH_REDIS_REST_URL: externalRedis?.url ?? 'http://127.0.0.1',
      UPSTASH_REDIS_REST_TOKEN: externalRedis?.token ?? 'local',
      DYNAMODB_ENDPOINT: undefined,
      LAMBDA_ENDPOINT: undefined,
    });
    // Settings that agree with none of the others or with the functions' timeouts (deploy/settings-check.ts).
    const [contradiction] = settingsContradictions(config, functionTimeouts('local'));
    if (contradiction) fail(contradiction);
  } catch (error) {
    if (error instanceof ConfigError) fail(`${error.message}.`);
    throw error;
  }
}

async function main(): Promise<void> {
  checkSettings();
  mkdirSync(dataDir, { recursive: true });
  if (stopLeftovers()) writeFileSync(reconcileMarker, 'the last run did not stop cleanly\n');
  let stopping = false;
  let starting: Promise<Stack> | undefined;
  let started = false;
  /** Set when a child exits while the stack is still starting, after the start had waited for it. */
  let diedDuringStart: string | undefined;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping the local stack...');
    // A start under way either hands over the stack or, failing, stops what it had started: wait for it.
    const stack = await starting?.catch(() => undefined);
    await stack?.stop();
    rmSync(pidFile, { force: true });
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  if (env.AUTH_MODE === undefined || env.AUTH_MODE === 'none') {
    console.warn('AUTH_MODE=none: user routes trust the userId in the path. For local runs and benchmarks only.');
  }
  console.log('Starting fcfs-coupons locally (redis-server, Upstash REST gateway, DynamoDB Local, serverless offline)...');
  starting = startStack({
    dataDir,
    ports,
    tableName: env.TABLE_NAME ?? 'fcfs-coupons-local',
    redisKeyPrefix: env.REDIS_KEY_PREFIX || undefined,
    adminToken,
    upstashToken: env.GATEWAY_TOKEN ?? 'local-upstash-token',
    offline: true,
    externalRedis,
    externalDynamo,
    shards,
    quotaScale,
    onChildExit: (name, code, signal) => {
      if (stopping) return;
      if (!started) {
        // The start fails on a child it is waiting for by itself; one it had already waited for is
        // checked once the start returns.
        diedDuringStart ??= `${name} exited while the stack was starting (code ${code}, signal ${signal}); see its log in ${join(dataDir, 'logs')}.`;
        return;
      }
      // A child killed under load (DynamoDB Local by the OOM killer, say) is an unclean stop too.
      writeFileSync(reconcileMarker, `${name} exited unexpectedly\n`);
      console.error(`fcfs-coupons: ${name} exited unexpectedly (code ${code}, signal ${signal}); stopping the stack.`);
      void shutdown(1);
    },
  });
  const stack = await starting.catch((error: unknown) => {
    if (stopping) return undefined; // stopped by a signal: shutdown() exits
    throw error;
  });
  if (!stack || stopping) return;
  started = true;
  writeFileSync(pidFile, stack.children.map((c) => c.child.pid).join('\n'));
  if (!externalRedis) writeFileSync(shardsFile, `${shards}\n`);
  try {
    if (diedDuringStart) throw new StackError(diedDuringStart);
    await afterStart(stack);
  } catch (error) {
    if (stopping) return; // a signal arrived meanwhile: shutdown() stops the stack and exits
    // Nothing may keep running (and holding its port) after the start failed.
    stopping = true;
    await stack.stop();
    rmSync(pidFile, { force: true });
    throw error;
  }
}

async function afterStart(stack: Stack): Promise<void> {
  const seeded = await seedCoupon(stack);
  if (existsSync(reconcileMarker) && !externalDynamo) {
    console.log('The last run did not stop cleanly: reconciling every coupon with the ledger...');
    const { lines, failed } = await reconcileAfterUncleanStop(stack, adminToken);
    for (const line of lines.length > 0 ? lines : ['every coupon in sync']) console.log(`  ${line}`);
    if (failed === 0) rmSync(reconcileMarker, { force: true });
    else console.log('  The next start reconciles again.');
  }
  await drainOnce();

  console.log(`
fcfs-coupons is running.
  API                ${stack.apiUrl}   (e.g. curl -X POST ${stack.apiUrl}/api/v2/users/42/coupons/${seedCouponId}/issue)
  Operator page      ${stack.apiUrl}/admin#coupon=${seedCouponId}   (live; type the admin token into the page)
  Admin token        ${adminToken === 'local-admin-token' ? 'local-admin-token (set ADMIN_TOKEN to change it)' : '(from ADMIN_TOKEN)'}
  Redis (REST)       ${externalRedis ? `${stack.redisUrls.join(', ')}   (external Upstash)` : stack.redisUrls.map((url, i) => `${url} -> redis-server on 127.0.0.1:${stack.redisPorts[i]}`).join('\n                     ')}${stack.redisUrls.length > 1 ? `\n                     (${stack.redisUrls.length} shards: users spread by a hash of their id)` : ''}
  DynamoDB           ${stack.dynamodbEndpoint ?? 'AWS (default credential chain)'}   table ${stack.env.TABLE_NAME}${stack.quotaProxyUrl ? `\n  Quotas / ${quotaScale}        gateways capped at ${10_000 / quotaScale!} commands/s each; handlers' DynamoDB via ${stack.quotaProxyUrl} (stats: GET ${stack.quotaProxyUrl}/_fcfs/stats)` : ''}
  Lambda invoke      http://127.0.0.1:${ports.lambda}   (drain also runs every minute)
  Seed               ${seeded}
  Data and logs      ${dataDir}   (npm run reset wipes it)
Press Ctrl-C to stop.`);
}

main().catch((error: unknown) => fail(error instanceof StackError ? error.message : String(error instanceof Error ? error.stack : error)));
