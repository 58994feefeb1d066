import { LambdaInvoker } from './aws/lambda.js';
import { drainTrigger, remoteRestorer, requestPathRedis, warnIfUnauthenticated } from './composition.js';
import { loadConfig, type Config } from './config.js';
import { CouponCache } from './coupons/coupon-cache.js';
import { DecisionTally } from './coupons/decision-tally.js';
import type { IssueDeps } from './coupons/issue.js';
import { RateLimiter } from './coupons/rate-limiter.js';
import { DynamoCouponReader } from './ledger/coupon-reader.js';
import { resolveDatabases, shardsOf } from './redis/databases.js';
import { SecretStore } from './secrets.js';

export interface IssueRuntime extends IssueDeps {
  readonly config: Config;
}

let runtime: Promise<IssueRuntime> | undefined;

/**
 * The issue handler's composition root: Upstash, its own small AWS client (one Secrets Manager read at
 * cold start, Lambda invokes, one DynamoDB GetItem when Redis lost a coupon), and no AWS SDK, so that a
 * new container imports a small bundle in the opening second of a drop. The state Redis lost is rebuilt
 * by the restore function (RemoteRestorer), not in the request.
 */
export function getIssueRuntime(): Promise<IssueRuntime> {
  runtime ??= buildIssueRuntime(loadConfig()).catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}

export async function buildIssueRuntime(config: Config): Promise<IssueRuntime> {
  warnIfUnauthenticated(config);
  const secrets = new SecretStore(config.region, config.secretsEndpoint);
  // Every Redis call within REDIS_DEADLINE_MS, and a breaker per database that answers 503 at once while
  // that database hangs.
  const shards = shardsOf(config, await resolveDatabases(config, secrets), () => requestPathRedis(config));
  const lambda = new LambdaInvoker(config.region, config.drainTrigger.lambdaEndpoint);
  return {
    config,
    shards,
    trigger: drainTrigger(config, lambda),
    restorer: remoteRestorer(config, shards, new DynamoCouponReader(config.region, config.dynamodbEndpoint, config.tableName), lambda),
    drain: config.drain,
    cache: new CouponCache(config.admission),
    limiter: new RateLimiter(config.rateLimit),
    tally: new DecisionTally(),
  };
}
