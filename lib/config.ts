import { ConfigError } from './errors.js';
import type { SecretRef } from './secrets.js';

/** An Upstash database's REST endpoint. */
export interface UpstashDatabase {
  readonly url: string;
  readonly token: string;
}

export type DatabasesRef = { readonly given: readonly UpstashDatabase[] } | { readonly secretId: string };
import { DEFAULT_ISSUANCE_PARTITIONS, MAX_ISSUANCE_PARTITIONS } from './ledger/model.js';

/**
 * Every setting of the system, read from the environment and validated once per cold start.
 * Secrets may be given directly (local runs) or as the id of a Secrets Manager secret holding a JSON
 * object (`*_SECRET_ID`, deployed stages); `lib/secrets.ts` reads the latter, once per container.
 */
export interface Config {
  readonly stage: string;
  readonly region: string;
  readonly tableName: string;
  /** Partition key values a new coupon's issuances are spread over (lib/ledger/model.ts). */
  readonly ledgerPartitions: number;
  /** Set for DynamoDB Local; unset in AWS. */
  readonly dynamodbEndpoint: string | undefined;
  readonly redis: {
    /**
     * The Upstash databases (shards): given (UPSTASH_REDIS_REST_URL and _TOKEN, comma-separated lists
     * for several), or a secret holding {"url", "token"} or {"shards": [{"url", "token"}, ...]}.
     */
    readonly databases: DatabasesRef;
    /** Prefix of every key this system writes, so one Redis can host several stages or test runs. */
    readonly keyPrefix: string;
    /** Retries of a REST request that never reached Redis before the caller is answered 503. */
    readonly retries: number;
    /**
     * The whole of one REST call on the API's request path (issue and read handlers): connecting, the
     * retries of a request that never left, and the reply. Past it the caller is answered 503.
     */
    readonly deadlineMs: number;
    /** The same for the drain, the restore and the admin handlers, whose scripts can be larger. */
    readonly timeoutMs: number;
    /** The request path's circuit breaker (lib/redis/circuit-breaker.ts); failures 0 turns it off. */
    readonly breaker: BreakerSettings;
  };
  /** The ledger's DynamoDB clients: every call bounded by its attempts and timeouts (lib/budgets.ts). */
  readonly ledger: {
    /** The drain's, the restore's and the admin handlers' client. */
    readonly writes: LedgerClientSettings;
    /** The read handlers' client: a request waits briefly for the ledger, then is answered 503. */
    readonly reads: LedgerClientSettings;
  };
  /** Given, or the field "adminToken" of a secret; read only by the admin handlers. */
  readonly adminToken: SecretRef;
  /** Set for a local Secrets Manager stand-in; unset in AWS. */
  readonly secretsEndpoint: string | undefined;
  readonly drain: DrainSettings;
  readonly drainTrigger: {
    /** Function that drains a queue, invoked asynchronously when an admission finds no drain running. */
    readonly functionName: string | undefined;
    /** Set for serverless-offline's invoke endpoint; unset in AWS. */
    readonly lambdaEndpoint: string | undefined;
  };
  /** Function that rebuilds a coupon's state from the ledger, started by the admission path (RemoteRestorer). */
  readonly restoreFunctionName: string | undefined;
  readonly authMode: 'none' | 'jwt';
  readonly rateLimit: RateLimitSettings;
  readonly admission: AdmissionSettings;
}

/**
 * After `failures` consecutive calls that timed out or found Redis unreachable, a container answers 503
 * at once for `openMs`, then lets one call through to see whether Redis is back.
 */
export interface BreakerSettings {
  readonly failures: number;
  readonly openMs: number;
}

/** One DynamoDB client's bounds: what one call can cost at most is computed in lib/budgets.ts. */
export interface LedgerClientSettings {
  /** Attempts per call (the SDK retries throttling, 5xx and network errors with jittered backoff). */
  readonly attempts: number;
  /** Waiting for a connection, per attempt (within the request timeout). */
  readonly connectTimeoutMs: number;
  /** One attempt from its start to its reply's end, connecting included. */
  readonly requestTimeoutMs: number;
}

/** What a container answers by itself (lib/coupons/coupon-cache.ts). */
export interface AdmissionSettings {
  /** Around startsAt and endsAt, Redis' clock decides within this margin until the container has measured its offset. */
  readonly clockMarginMs: number;
  /** SOLD_OUT is answered without Redis this long after Redis last said so. */
  readonly soldOutRecheckMs: number;
  /**
   * A request that finds the coupon's state being rebuilt by another waits this long at most (a few
   * HEXISTS at growing intervals), then is answered 503 with Retry-After.
   */
  readonly rebuildWaitMs: number;
}

/** Counted per container (lib/coupons/rate-limiter.ts), per coupon, in one-second windows; 0 turns a limit off. */
export interface RateLimitSettings {
  readonly userPerSecond: number;
  readonly ipPerSecond: number;
}

export interface DrainSettings {
  /** Items written per DynamoDB transaction: at most 99 Puts plus the coupon counter update. */
  readonly batchSize: number;
  /** How long a claimed item stays in flight before another drain may take it back. */
  readonly claimLeaseMs: number;
  /** Claims of one item before it is dead-lettered. */
  readonly maxAttempts: number;
  /** How long an admission's "a drain is running" mark lives without being refreshed by the drain. */
  readonly triggerLeaseMs: number;
  /** A drain stops claiming when less than this is left of its invocation. */
  readonly stopBeforeTimeoutMs: number;
  /**
   * When a claim leaves the queue empty, the drain waits this long before claiming again, so that the
   * admissions of the next moments share one transaction instead of costing one (and one drain) each.
   * Shorter than triggerLeaseMs, so admissions still see the drain running while it waits.
   */
  readonly lingerMs: number;
  /**
   * After a ledger write fails for a reason that may pass (throttling, a 5xx, no connection), no drain
   * claims the coupon again for backoffBaseMs, doubling with each further failure up to backoffMaxMs.
   */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Connecting to DynamoDB in the region takes milliseconds; these bound a connection that hangs. */
const WRITE_CONNECT_TIMEOUT_MS = 1_000;
const READ_CONNECT_TIMEOUT_MS = 300;

export function loadConfig(env: Env = process.env): Config {
  const stage = env.STAGE ?? 'local';
  const triggerLeaseMs = integer(env, 'DRAIN_TRIGGER_LEASE_MS', 10_000, 100, 600_000);
  return {
    stage,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    tableName: env.TABLE_NAME ?? (stage === 'local' ? 'fcfs-coupons-local' : required(env, 'TABLE_NAME')),
    ledgerPartitions: integer(env, 'LEDGER_PARTITIONS', DEFAULT_ISSUANCE_PARTITIONS, 1, MAX_ISSUANCE_PARTITIONS),
    dynamodbEndpoint: optionalUrl(env, 'DYNAMODB_ENDPOINT'),
    redis: {
      ...upstash(env),
      // Per stage by default: two stages sharing one Upstash database must not share coupon state.
      keyPrefix: matching(env, 'REDIS_KEY_PREFIX', /^[A-Za-z0-9_.:-]{1,64}$/, stage === 'local' ? 'fcfs' : `fcfs-${stage}`),
      retries: integer(env, 'REDIS_RETRIES', 1, 0, 5),
      // Locally one process serves every request on cores it shares with Redis, DynamoDB Local and the
      // load generator: a call can wait seconds for its event loop without anything being wrong.
      deadlineMs: integer(env, 'REDIS_DEADLINE_MS', stage === 'local' ? 3_000 : 500, 50, 10_000),
      timeoutMs: integer(env, 'REDIS_TIMEOUT_MS', 2_000, 100, 60_000),
      breaker: {
        failures: integer(env, 'REDIS_BREAKER_FAILURES', 3, 0, 1_000),
        openMs: integer(env, 'REDIS_BREAKER_OPEN_MS', 2_000, 100, 60_000),
      },
    },
    ledger: {
      // DynamoDB answers a 99-item transaction in tens of ms; DynamoDB Local, on cores the whole local
      // stack shares, can take seconds: fewer, longer attempts there (both stay inside the claim lease).
      writes: {
        attempts: integer(env, 'LEDGER_ATTEMPTS', stage === 'local' ? 2 : 3, 1, 10),
        connectTimeoutMs: WRITE_CONNECT_TIMEOUT_MS,
        requestTimeoutMs: integer(env, 'LEDGER_REQUEST_TIMEOUT_MS', stage === 'local' ? 10_000 : 3_000, 100, 60_000),
      },
      reads: {
        attempts: integer(env, 'LEDGER_READ_ATTEMPTS', 2, 1, 10),
        connectTimeoutMs: READ_CONNECT_TIMEOUT_MS,
        requestTimeoutMs: integer(env, 'LEDGER_READ_REQUEST_TIMEOUT_MS', stage === 'local' ? 1_500 : 800, 100, 60_000),
      },
    },
    adminToken: adminToken(env, stage),
    secretsEndpoint: optionalUrl(env, 'AWS_ENDPOINT_URL_SECRETS_MANAGER'),
    drain: {
      batchSize: integer(env, 'DRAIN_BATCH_SIZE', 99, 1, 99),
      claimLeaseMs: integer(env, 'DRAIN_CLAIM_LEASE_MS', 30_000, 100, 900_000),
      maxAttempts: integer(env, 'DRAIN_MAX_ATTEMPTS', 5, 1, 100),
      triggerLeaseMs,
      stopBeforeTimeoutMs: integer(env, 'DRAIN_STOP_BEFORE_TIMEOUT_MS', 5_000, 0, 600_000),
      lingerMs: integer(env, 'DRAIN_LINGER_MS', Math.min(100, triggerLeaseMs - 1), 0, triggerLeaseMs - 1),
      ...backoff(env),
    },
    drainTrigger: {
      functionName: env.DRAIN_FUNCTION_NAME || undefined,
      lambdaEndpoint: optionalUrl(env, 'LAMBDA_ENDPOINT'),
    },
    restoreFunctionName: env.RESTORE_FUNCTION_NAME || undefined,
    authMode: oneOf(env, 'AUTH_MODE', ['none', 'jwt'] as const, stage === 'local' ? 'none' : 'jwt'),
    rateLimit: {
      userPerSecond: integer(env, 'RATE_LIMIT_USER_PER_SECOND', 10, 0, 100_000),
      // One IP can be a whole office or a mobile carrier's NAT: generous in AWS, off for local load tests.
      ipPerSecond: integer(env, 'RATE_LIMIT_IP_PER_SECOND', stage === 'local' ? 0 : 300, 0, 1_000_000),
    },
    admission: {
      clockMarginMs: integer(env, 'ADMISSION_CLOCK_MARGIN_MS', 1_000, 0, 60_000),
      soldOutRecheckMs: integer(env, 'SOLD_OUT_RECHECK_MS', 2_000, 0, 60_000),
      rebuildWaitMs: integer(env, 'REBUILD_WAIT_MS', 1_500, 0, 30_000),
    },
  };
}

function backoff(env: Env): Pick<DrainSettings, 'backoffBaseMs' | 'backoffMaxMs'> {
  const backoffMaxMs = integer(env, 'DRAIN_BACKOFF_MAX_MS', 30_000, 10, 600_000);
  const backoffBaseMs = integer(env, 'DRAIN_BACKOFF_BASE_MS', Math.min(500, backoffMaxMs), 10, backoffMaxMs);
  return { backoffBaseMs, backoffMaxMs };
}

function required(env: Env, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new ConfigError(`${name} is required`);
  return value;
}

const SSM_SETTINGS = ['UPSTASH_REDIS_REST_URL_PARAM', 'UPSTASH_REDIS_REST_TOKEN_PARAM', 'ADMIN_TOKEN_PARAM'];

/**
 * UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (comma-separated lists of one length for several
 * databases), or UPSTASH_SECRET_ID naming a secret with the same (see parseDatabases).
 */
function upstash(env: Env): { databases: DatabasesRef } {
  refuseSsm(env);
  const { UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: token, UPSTASH_SECRET_ID: secretId } = env;
  if (url && token) {
    const urls = url.split(',').map((u) => u.trim());
    const tokens = token.split(',').map((t) => t.trim());
    if (urls.length !== tokens.length)
      throw new ConfigError(`UPSTASH_REDIS_REST_URL names ${urls.length} database(s) but UPSTASH_REDIS_REST_TOKEN ${tokens.length}`);
    return {
      databases: {
        given: parseDatabases(
          urls.map((u, i) => ({ url: u, token: tokens[i] })),
          'UPSTASH_REDIS_REST_URL',
        ),
      },
    };
  }
  if (secretId) return { databases: { secretId } };
  throw new ConfigError(
    'UPSTASH_REDIS_REST_URL (with UPSTASH_REDIS_REST_TOKEN, or UPSTASH_SECRET_ID naming a Secrets Manager secret that holds {"url", "token"}) is required',
  );
}

/** Most Upstash databases one deployment spreads its coupons over. */
export const MAX_SHARDS = 32;

/**
 * The databases of a secret ({"url", "token"}, or {"shards": [{"url", "token"}, ...]}) or of the
 * environment: each an http(s) URL and a token, one to MAX_SHARDS of them.
 */
export function parseDatabases(raw: unknown, source: string): UpstashDatabase[] {
  const list = Array.isArray(raw) ? raw : typeof raw === 'object' && raw !== null && 'shards' in raw ? (raw as { shards: unknown }).shards : [raw];
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_SHARDS) throw new ConfigError(`${source} must name 1 to ${MAX_SHARDS} Upstash databases`);
  return list.map((entry: unknown, i) => {
    const { url, token } = (entry ?? {}) as { url?: unknown; token?: unknown };
    if (typeof url !== 'string' || !/^https?:\/\/\S+$/.test(url)) throw new ConfigError(`${source}: database ${i + 1} needs an http(s) "url"`);
    if (typeof token !== 'string' || token === '') throw new ConfigError(`${source}: database ${i + 1} needs a "token"`);
    return { url, token };
  });
}

/** ADMIN_TOKEN, or ADMIN_TOKEN_SECRET_ID naming {"adminToken"}; a default only locally. */
function adminToken(env: Env, stage: string): SecretRef {
  if (env.ADMIN_TOKEN) return { value: env.ADMIN_TOKEN };
  if (env.ADMIN_TOKEN_SECRET_ID) return { secretId: env.ADMIN_TOKEN_SECRET_ID, field: 'adminToken' };
  if (stage === 'local') return { value: 'local-admin-token' };
  throw new ConfigError('ADMIN_TOKEN (or ADMIN_TOKEN_SECRET_ID, a Secrets Manager secret holding {"adminToken"}) is required');
}

/** The SSM parameters of earlier versions are no longer read: refused, so that none is silently ignored. */
function refuseSsm(env: Env): void {
  const set = SSM_SETTINGS.filter((name) => env[name]);
  if (set.length > 0) {
    throw new ConfigError(
      `${set.join(', ')}: SSM parameters are no longer read; put the values in Secrets Manager and set UPSTASH_SECRET_ID and ADMIN_TOKEN_SECRET_ID (see docs/deploy.md)`,
    );
  }
}

function optionalUrl(env: Env, name: string): string | undefined {
  const value = env[name];
  if (!value) return undefined;
  if (!/^https?:\/\/\S+$/.test(value)) throw new ConfigError(`${name} must be an http(s) URL, got "${value}"`);
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  // Digits only: Number() would also take "1e3", "0x10" and " 5 ".
  const value = /^-?\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer in ${min}..${max}, got "${raw}"`);
  }
  return value;
}

function matching(env: Env, name: string, pattern: RegExp, fallback: string): string {
  const value = env[name] || fallback;
  if (!pattern.test(value)) throw new ConfigError(`${name} must match ${pattern}, got "${value}"`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = env[name] || fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}
