import type { Config, LedgerClientSettings } from './config.js';
import { DRAIN_START_TIMEOUT_MS } from './drain/trigger.js';
import { COUPON_READ_TIMEOUT_MS } from './ledger/coupon-reader.js';
import { REFILL_BUDGET_MS, REFILL_BUSY_WAIT_MAX_MS } from './coupons/issue.js';
import { REFILL_CALLS_AFTER_DEADLINE } from './coupons/rebalance.js';
import { SECRET_READ_MAX_MS } from './secrets.js';

/**
 * How long the request path can take at most. Every call it makes has a deadline of its own (Redis:
 * REDIS_DEADLINE_MS, the ledger: attempts and timeouts, Lambda invokes and Secrets Manager: fixed
 * budgets); a request's worst case is its slowest sequence of calls, each answering just before its
 * deadline. A function's timeout must cover that, or Lambda ends the invocation and API Gateway
 * answers 500 where the handler would have answered 503 (deploy/settings-check.ts refuses such
 * settings at `npm start` and at packaging time).
 */

/** The restore function is asked within this long, connection included (lib/issue-runtime.ts). */
export const RESTORE_START_TIMEOUT_MS = 500;

/** The AWS SDK's standard retry waits before retry i (from 0) at most min(20 s, base × 2^i); throttling's base, 1 s, is its largest. */
const SDK_RETRY_BASE_MS = 1_000;
const SDK_RETRY_CAP_MS = 20_000;

/**
 * One call of a ledger client: every attempt at its timeout (which runs from the attempt's start,
 * connecting included: lib/ledger/dynamo.ts), every pause between them at its longest.
 */
export function ledgerCallMaxMs(client: LedgerClientSettings): number {
  let total = client.attempts * client.requestTimeoutMs;
  for (let retry = 0; retry < client.attempts - 1; retry++) total += Math.min(SDK_RETRY_CAP_MS, SDK_RETRY_BASE_MS * 2 ** retry);
  return total;
}

/**
 * Waiting for another's rebuild of a coupon's state (RemoteRestorer, waitForRestore): pauses of 50 ms
 * doubling, each jittered by ±25 % and followed by one HEXISTS, while the next pause ends before waitMs.
 * A slow HEXISTS uses up the wait rather than adding to it: the last pause may overrun waitMs by a
 * quarter of itself, and the last HEXISTS take its whole deadline.
 */
export function restoreWaitMaxMs(waitMs: number, redisCallMs: number): number {
  return waitMs * 1.25 + redisCallMs;
}

/** A cold start's secret read: none when the secrets are given directly (local runs). */
function secretReadMs(config: Config): number {
  return 'secretId' in config.redis.databases ? SECRET_READ_MAX_MS : 0;
}

/**
 * With several shards (or a secret that may name several), the refills of the user's shard: none begins
 * a transfer past REFILL_BUDGET_MS, and one begun just before it finishes it (its calls), then a pause
 * of a busy refill and the admission again.
 */
function refillsMaxMs(config: Config): number {
  const databases = config.redis.databases;
  if ('given' in databases && databases.given.length === 1) return 0;
  const redis = config.redis.deadlineMs;
  return REFILL_BUDGET_MS + REFILL_CALLS_AFTER_DEADLINE * redis + REFILL_BUSY_WAIT_MAX_MS + redis;
}

/**
 * A request's path to a coupon Redis lost (RemoteRestorer): is the coupon in the ledger, is the state
 * there, mark the request, ask the restore function, wait for the state.
 */
function remoteRestoreMaxMs(config: Config, couponReadMs: number): number {
  const redis = config.redis.deadlineMs;
  return couponReadMs + 2 * redis + RESTORE_START_TIMEOUT_MS + restoreWaitMaxMs(config.admission.rebuildWaitMs, redis);
}

/**
 * An issue request (lib/coupons/issue.ts), its container's first: the secret read, the admission, the
 * restore of a coupon Redis lost and the admission again, the refills of its shard (several shards),
 * the read of a sold-out coupon's winners, and the drain's start for a winner.
 */
export function issueMaxMs(config: Config): number {
  const redis = config.redis.deadlineMs;
  return secretReadMs(config) + redis + remoteRestoreMaxMs(config, COUPON_READ_TIMEOUT_MS) + redis + refillsMaxMs(config) + redis + DRAIN_START_TIMEOUT_MS;
}

/**
 * The slowest read handler, its container's first request: the coupon view (lib/coupons/campaigns.ts)
 * reads the ledger and Redis at once, restores a coupon Redis lost, and reads Redis again; a user's
 * status does the same with Redis alone; a user's list is one ledger query.
 */
export function readMaxMs(config: Config): number {
  const redis = config.redis.deadlineMs;
  const ledger = ledgerCallMaxMs(config.ledger.reads);
  return secretReadMs(config) + Math.max(ledger, redis) + remoteRestoreMaxMs(config, ledger) + redis;
}

/**
 * What one admin request needs at least: its secrets, one ledger call and one Redis call. A reconcile
 * makes many; its timeout bounds it, and a reconcile cut short is run again (each repair is atomic on
 * its own, README "Reliability").
 */
export function adminCallMaxMs(config: Config): number {
  const adminSecret = 'secretId' in config.adminToken ? SECRET_READ_MAX_MS : 0;
  return Math.max(secretReadMs(config), adminSecret) + ledgerCallMaxMs(config.ledger.writes) + config.redis.timeoutMs;
}
