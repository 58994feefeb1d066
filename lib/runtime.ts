import { backgroundRedis, drainTrigger, remoteRestorer, requestPathRedis, warnIfUnauthenticated } from './composition.js';
import { loadConfig, type Config, type LedgerClientSettings } from './config.js';
import { CouponCache } from './coupons/coupon-cache.js';
import { DecisionTally } from './coupons/decision-tally.js';
import { inProcessRestorer } from './coupons/coupon-state.js';
import type { Deps } from './coupons/deps.js';
import { RateLimiter } from './coupons/rate-limiter.js';
import { scheduleOnly } from './drain/trigger.js';
import type { CouponReader } from './ledger/coupon-reader.js';
import { createDynamo } from './ledger/dynamo.js';
import { Ledger } from './ledger/ledger.js';
import { resolveDatabases, shardsOf } from './redis/databases.js';
import { SecretStore } from './secrets.js';

export interface Runtime extends Deps {
  readonly config: Config;
  /** The admin token, read (once per container) only by the handlers that need it. */
  adminToken(): Promise<string>;
}

let runtime: Promise<Runtime> | undefined;
let readRuntime: Promise<Runtime> | undefined;

/**
 * The composition root of the admin handlers, the drain and the restore function (the issue handler has
 * lib/issue-runtime.ts, the read handlers getReadRuntime): configuration validated, secrets resolved and
 * clients built once per container (cold start), then shared by every invocation. A failed build is not
 * cached, so the next invocation retries it (a hiccup of the secret store must not poison a container).
 */
export function getRuntime(): Promise<Runtime> {
  runtime ??= buildRuntime(loadConfig()).catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}

/**
 * The read handlers' root (a user's status and list, a coupon's public view): they answer users while a
 * drop runs, so every call is short (REDIS_DEADLINE_MS and the circuit breaker, the ledger's read
 * client) and they write nothing to the ledger: a coupon Redis lost is rebuilt by the restore function
 * (RemoteRestorer), as on the admission path, and they start no drain.
 */
export function getReadRuntime(): Promise<Runtime> {
  readRuntime ??= buildReadRuntime(loadConfig()).catch((error: unknown) => {
    readRuntime = undefined;
    throw error;
  });
  return readRuntime;
}

export async function buildRuntime(config: Config): Promise<Runtime> {
  warnIfUnauthenticated(config);
  const secrets = new SecretStore(config.region, config.secretsEndpoint);
  const deps = {
    shards: shardsOf(config, await resolveDatabases(config, secrets), () => backgroundRedis(config)),
    ledger: new Ledger(ledgerClient(config, config.ledger.writes), config.tableName, config.ledgerPartitions),
    trigger: drainTrigger(config),
    drain: config.drain,
    admission: config.admission,
    cache: new CouponCache(config.admission),
    limiter: new RateLimiter(config.rateLimit),
    tally: new DecisionTally(),
  };
  return { ...deps, restorer: inProcessRestorer(deps), config, adminToken: () => secrets.resolve(config.adminToken) };
}

export async function buildReadRuntime(config: Config): Promise<Runtime> {
  warnIfUnauthenticated(config);
  const secrets = new SecretStore(config.region, config.secretsEndpoint);
  const shards = shardsOf(config, await resolveDatabases(config, secrets), () => requestPathRedis(config));
  const ledger = new Ledger(ledgerClient(config, config.ledger.reads), config.tableName, config.ledgerPartitions);
  const deps = {
    shards,
    ledger,
    trigger: scheduleOnly,
    drain: config.drain,
    admission: config.admission,
    cache: new CouponCache(config.admission),
    limiter: new RateLimiter(config.rateLimit),
    tally: new DecisionTally(),
  };
  const reader: CouponReader = { getCoupon: (couponId) => ledger.getCoupon(couponId, true) };
  // Without a restore function (tests that call a handler directly), the handler rebuilds in-process.
  const restorer = config.restoreFunctionName ? remoteRestorer(config, shards, reader) : inProcessRestorer(deps);
  return { ...deps, restorer, config, adminToken: () => secrets.resolve(config.adminToken) };
}

function ledgerClient(config: Config, bounds: LedgerClientSettings) {
  return createDynamo({
    region: config.region,
    endpoint: config.dynamodbEndpoint,
    maxAttempts: bounds.attempts,
    connectTimeoutMs: bounds.connectTimeoutMs,
    requestTimeoutMs: bounds.requestTimeoutMs,
  });
}
