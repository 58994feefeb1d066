/**
 * The pieces the composition roots (lib/runtime.ts, lib/issue-runtime.ts) share. Nothing here imports the
 * AWS SDK: the issue handler's bundle carries none.
 */

import { LambdaInvoker } from './aws/lambda.js';
import { RESTORE_START_TIMEOUT_MS } from './budgets.js';
import type { Config } from './config.js';
import { RemoteRestorer, type Restorer, type RestoreRequest } from './coupons/restorer.js';
import { LambdaDrainTrigger, scheduleOnly, type DrainTrigger } from './drain/trigger.js';
import { ConfigError } from './errors.js';
import type { CouponReader } from './ledger/coupon-reader.js';
import { log } from './log.js';
import { CircuitBreaker } from './redis/circuit-breaker.js';
import type { RedisConnection } from './redis/client.js';
import type { Shards } from './redis/shards.js';

/** How a container's clients reach one Upstash database (see shardsOf). */
export type RedisClientOptions = Omit<RedisConnection, 'url' | 'token'>;

/**
 * The request path's Redis: every call within REDIS_DEADLINE_MS, and a breaker per container and
 * database (a new one for each call: one database hanging leaves the others' answers alone).
 */
export function requestPathRedis(config: Config): RedisClientOptions {
  return { retries: config.redis.retries, timeoutMs: config.redis.deadlineMs, breaker: new CircuitBreaker(config.redis.breaker) };
}

/** The drain's, the restore's and the admin handlers' Redis: longer calls, no breaker. */
export function backgroundRedis(config: Config): RedisClientOptions {
  return { retries: config.redis.retries, timeoutMs: config.redis.timeoutMs };
}

/** A restorer that asks the restore function and waits REBUILD_WAIT_MS for the state (lib/coupons/restorer.ts). */
export function remoteRestorer(
  config: Config,
  shards: Shards,
  reader: CouponReader,
  lambda = new LambdaInvoker(config.region, config.drainTrigger.lambdaEndpoint),
): Restorer {
  const restoreFunction = config.restoreFunctionName;
  const startRestore = async (request: RestoreRequest) => {
    if (!restoreFunction) throw new ConfigError('RESTORE_FUNCTION_NAME is required to restore a coupon Redis lost');
    await lambda.invokeAsync(restoreFunction, request, RESTORE_START_TIMEOUT_MS);
  };
  return new RemoteRestorer(reader, shards, startRestore, config.admission.rebuildWaitMs);
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
