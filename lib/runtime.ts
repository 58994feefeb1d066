import { LambdaInvoker } from './aws/lambda.js';
import { loadConfig, type Config } from './config.js';
import { CouponCache } from './coupons/coupon-cache.js';
import { DecisionTally } from './coupons/decision-tally.js';
import { inProcessRestorer } from './coupons/coupon-state.js';
import type { Deps } from './coupons/deps.js';
import { RateLimiter } from './coupons/rate-limiter.js';
import { LambdaDrainTrigger, scheduleOnly, type DrainTrigger } from './drain/trigger.js';
import { createDynamo } from './ledger/dynamo.js';
import { Ledger } from './ledger/ledger.js';
import { log } from './log.js';
import { resolveDatabases, shardsOf } from './redis/databases.js';
import { SecretStore } from './secrets.js';

export interface Runtime extends Deps {
  readonly config: Config;
  /** The admin token, read (once per container) only by the handlers that need it. */
  adminToken(): Promise<string>;
}

let runtime: Promise<Runtime> | undefined;

/**
 * The composition root of every handler but the issue handler (lib/issue-runtime.ts): configuration
 * validated, secrets resolved and clients built once per container (cold start), then shared by every
 * invocation. A failed build is not cached, so the next invocation retries it (a hiccup of the secret
 * store must not poison a container).
 */
export function getRuntime(): Promise<Runtime> {
  runtime ??= buildRuntime(loadConfig()).catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}

export async function buildRuntime(config: Config): Promise<Runtime> {
  warnIfUnauthenticated(config);
  const secrets = new SecretStore(config.region, config.secretsEndpoint);
  const deps = {
    shards: shardsOf(config, await resolveDatabases(config, secrets)),
    ledger: new Ledger(createDynamo({ region: config.region, endpoint: config.dynamodbEndpoint }), config.tableName, config.ledgerPartitions),
    trigger: drainTrigger(config),
    drain: config.drain,
    admission: config.admission,
    cache: new CouponCache(config.admission),
    limiter: new RateLimiter(config.rateLimit),
    tally: new DecisionTally(),
  };
  return { ...deps, restorer: inProcessRestorer(deps), config, adminToken: () => secrets.resolve(config.adminToken) };
}

/** The drain trigger of a configuration: a Lambda invoke, or none (the schedule alone drains). */
export function drainTrigger(config: Config, lambda = new LambdaInvoker(config.region, config.drainTrigger.lambdaEndpoint)): DrainTrigger {
  return config.drainTrigger.functionName ? new LambdaDrainTrigger(config.drainTrigger.functionName, lambda) : scheduleOnly;
}

export function warnIfUnauthenticated(config: Config): void {
  if (config.authMode === 'none' && config.stage !== 'local') {
    log.warn('AUTH_MODE=none on a deployed stage: user routes trust the userId in the path. For benchmarks only.', { stage: config.stage });
  }
}
