import { LambdaInvoker } from './aws/lambda.js';
import { loadConfig, type Config } from './config.js';
import { CouponCache } from './coupons/coupon-cache.js';
import { DecisionTally } from './coupons/decision-tally.js';
import type { IssueDeps } from './coupons/issue.js';
import { RateLimiter } from './coupons/rate-limiter.js';
import { RemoteRestorer } from './coupons/restorer.js';
import { ConfigError } from './errors.js';
import { DynamoCouponReader } from './ledger/coupon-reader.js';
import { resolveDatabases, shardsOf } from './redis/databases.js';
import { drainTrigger, warnIfUnauthenticated } from './runtime.js';
import { SecretStore } from './secrets.js';

export interface IssueRuntime extends IssueDeps {
  readonly config: Config;
}

/** A restore cannot be asked of the restore function within this long: the rebuild runs on its own. */
const RESTORE_START_TIMEOUT_MS = 500;

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
  const shards = shardsOf(config, await resolveDatabases(config, secrets));
  const lambda = new LambdaInvoker(config.region, config.drainTrigger.lambdaEndpoint);
  const restoreFunction = config.restoreFunctionName;
  const startRestore = async (request: { couponId: string; shard?: number }) => {
    if (!restoreFunction) throw new ConfigError('RESTORE_FUNCTION_NAME is required to restore a coupon Redis lost');
    await lambda.invokeAsync(restoreFunction, request, RESTORE_START_TIMEOUT_MS);
  };
  return {
    config,
    shards,
    trigger: drainTrigger(config, lambda),
    restorer: new RemoteRestorer(new DynamoCouponReader(config.region, config.dynamodbEndpoint, config.tableName), shards, startRestore, config.admission.rebuildWaitMs),
    drain: config.drain,
    cache: new CouponCache(config.admission),
    limiter: new RateLimiter(config.rateLimit),
    tally: new DecisionTally(),
  };
}
