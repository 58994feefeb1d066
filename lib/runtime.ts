import { loadConfig, type Config } from './config.js';
import { CouponCache } from './coupons/coupon-cache.js';
import { RateLimiter } from './coupons/rate-limiter.js';
import type { Deps } from './coupons/deps.js';
import { LambdaDrainTrigger, scheduleOnly } from './drain/trigger.js';
import { createDynamo } from './ledger/dynamo.js';
import { log } from './log.js';
import { Ledger } from './ledger/ledger.js';
import { createRedis } from './redis/client.js';
import { CouponStore } from './redis/coupon-store.js';
import { resolveSecret } from './secrets.js';

export interface Runtime extends Deps {
  readonly config: Config;
  readonly adminToken: string;
}

let runtime: Promise<Runtime> | undefined;

/**
 * The composition root: configuration validated, secrets resolved and clients built once per container
 * (cold start), then shared by every invocation. A failed build is not cached, so the next invocation
 * retries it (an SSM hiccup must not poison a container).
 */
export function getRuntime(): Promise<Runtime> {
  runtime ??= buildRuntime(loadConfig()).catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}

export async function buildRuntime(config: Config): Promise<Runtime> {
  if (config.authMode === 'none' && config.stage !== 'local') {
    log.warn('AUTH_MODE=none on a deployed stage: user routes trust the userId in the path. For benchmarks only.', { stage: config.stage });
  }
  const [redisUrl, redisToken, adminToken] = await Promise.all([
    resolveSecret(config.redis.url, config.region),
    resolveSecret(config.redis.token, config.region),
    resolveSecret(config.adminToken, config.region),
  ]);
  const redis = createRedis({ url: redisUrl, token: redisToken, retries: config.redis.retries });
  const dynamo = createDynamo({ region: config.region, endpoint: config.dynamodbEndpoint });
  const trigger = config.drainTrigger.functionName
    ? new LambdaDrainTrigger(config.drainTrigger.functionName, {
        region: config.region,
        endpoint: config.drainTrigger.lambdaEndpoint,
      })
    : scheduleOnly;
  return {
    config,
    adminToken,
    store: new CouponStore(redis, config.redis.keyPrefix),
    ledger: new Ledger(dynamo, config.tableName, config.ledgerPartitions),
    trigger,
    drain: config.drain,
    admission: config.admission,
    cache: new CouponCache(config.admission),
    limiter: new RateLimiter(config.rateLimit),
  };
}
