/**
 * The whole local system, Docker-free: redis-server (append-only, fsync always), the Upstash REST
 * gateway in front of it (one pair per Upstash database when the stack runs several shards), DynamoDB
 * Local with the ledger table, and `serverless offline` serving the API, the scheduled drain and the
 * Lambda invoke endpoint. With `quotaScale`, the cloud's quotas are emulated, divided by that factor
 * (docs/quota-emulation.md): every gateway caps its database's commands per second and the handlers
 * reach DynamoDB through the quota proxy. `npm start`, the tests and the bench all build it here.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createDynamo } from '../lib/ledger/dynamo.js';
import {
  assertPortFree,
  PROJECT_ROOT,
  requireBinary,
  spawnLogged,
  StackError,
  startDynamo,
  startRedis,
  stopChild,
  waitForPort,
  type Spawned,
} from './processes.js';
import { ensureTable } from './table.js';

/** Upstash's cap on one database's commands per second (most plans; docs/local-upstash.md). */
export const UPSTASH_COMMANDS_PER_SECOND = 10_000;

export interface StackOptions {
  readonly dataDir: string;
  readonly ports: {
    api: number;
    lambda: number;
    dynamodb: number;
    gateway: number;
    redis: number;
    /** The redis-server and gateway of each shard after the first (shards - 1 entries). */
    moreShards?: readonly { gateway: number; redis: number }[];
    /** The DynamoDB quota proxy's port (with quotaScale). */
    dynamodbProxy?: number;
  };
  /** Upstash databases (shards) to run, each its own redis-server and gateway; 1 unless given. */
  readonly shards?: number;
  /**
   * Emulate the cloud's quotas divided by this factor: each gateway capped at 10,000 / quotaScale
   * commands a second, the handlers' DynamoDB behind the quota proxy at 1,000 / quotaScale write and
   * 3,000 / quotaScale read units a second per partition. Undefined: no quota (the default).
   */
  readonly quotaScale?: number;
  readonly tableName: string;
  readonly adminToken: string;
  readonly upstashToken: string;
  readonly redisKeyPrefix?: string;
  /** Start `serverless offline` too (the API, the schedule and the invoke endpoint). */
  readonly offline: boolean;
  /** Use this Upstash (URL and token) instead of a local redis-server and gateway. */
  readonly externalRedis?: { url: string; token: string };
  /** Use AWS DynamoDB ('aws', credentials from the default chain) or a running DynamoDB (its URL). */
  readonly externalDynamo?: 'aws' | { endpoint: string };
  /** Environment variables for the handlers (drain tuning, log level...). */
  readonly extraEnv?: Record<string, string>;
  /** Where serverless offline writes its output; undefined = this process's stdout/stderr. */
  readonly offlineLog?: string;
  readonly onChildExit?: (name: string, code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface Stack {
  readonly apiUrl: string;
  /** The first database's REST URL. */
  readonly redisUrl: string;
  /** Every database's REST URL, in shard order. */
  readonly redisUrls: readonly string[];
  /** The redis-server port of each shard (none with an external Upstash). */
  readonly redisPorts: readonly number[];
  /** DynamoDB itself: what tools read without going through the quota proxy. */
  readonly dynamodbEndpoint: string | undefined;
  /** The quota proxy the handlers write through (with quotaScale); its stats at GET /_fcfs/stats. */
  readonly quotaProxyUrl: string | undefined;
  /** The environment the handlers see; also what lets a script use lib/ against this stack. */
  readonly env: Record<string, string>;
  readonly children: readonly Spawned[];
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const { ports } = options;
  const children: Spawned[] = [];
  const logs = join(options.dataDir, 'logs');
  const buildFolder = ports.api === 8080 ? undefined : join(PROJECT_ROOT, `.esbuild-${ports.api}`);
  let stopped = false;
  /**
   * Set once this start's ports proved free and it spawned serverless offline: before that the folder
   * may be a running stack's on the same API_PORT (a second start refused for that port must not
   * delete its bundles).
   */
  let ownsBuildFolder = false;
  const stop = async () => {
    stopped = true;
    for (const child of [...children].reverse()) await stopChild(child);
    if (buildFolder && ownsBuildFolder) rmSync(buildFolder, { recursive: true, force: true });
  };
  const watch = (spawned: Spawned) => {
    children.push(spawned);
    // The children stop() ends did not exit unexpectedly.
    spawned.child.once('exit', (code, signal) => stopped || options.onChildExit?.(spawned.name, code, signal));
    return spawned;
  };

  try {
    const shardCount = options.externalRedis ? 1 : (options.shards ?? 1);
    const databases = [{ redis: ports.redis, gateway: ports.gateway }, ...(ports.moreShards ?? [])].slice(0, shardCount);
    if (databases.length < shardCount) throw new StackError(`${shardCount} shards need ${shardCount - 1} more redis-server and gateway ports`);
    const scale = options.quotaScale;
    if (scale !== undefined && !(scale >= 1 && Number.isFinite(scale)))
      throw new StackError(`the quota scale factor must be a number of at least 1, got ${scale}`);
    if (scale !== undefined && !ports.dynamodbProxy) throw new StackError('the quota proxy needs a port (ports.dynamodbProxy)');
    const checks: Promise<void>[] = [];
    if (!options.externalRedis) {
      databases.forEach((db, i) => {
        const which = i === 0 ? '' : ` of shard ${i + 1}`;
        checks.push(assertPortFree(db.redis, `redis-server${which}`, 'REDIS_PORT'));
        checks.push(assertPortFree(db.gateway, `Upstash REST gateway${which}`, 'GATEWAY_PORT'));
      });
    }
    if (scale !== undefined) checks.push(assertPortFree(ports.dynamodbProxy!, 'the DynamoDB quota proxy', 'DYNAMODB_PROXY_PORT'));
    if (!options.externalDynamo) checks.push(assertPortFree(ports.dynamodb, 'DynamoDB Local', 'DYNAMODB_PORT'));
    if (options.offline) {
      checks.push(assertPortFree(ports.api, 'the API (serverless offline)', 'API_PORT'));
      checks.push(assertPortFree(ports.lambda, 'the Lambda invoke endpoint (serverless offline)', 'LAMBDA_PORT'));
    }
    await Promise.all(checks);
    // Both binaries before either starts: a missing one must not leave the other running.
    if (!options.externalRedis) requireBinary('redis-server');
    if (!options.externalDynamo) requireBinary('java');

    const redisUrls = options.externalRedis ? options.externalRedis.url.split(',') : databases.map((db) => `http://127.0.0.1:${db.gateway}`);
    const redisToken = options.externalRedis?.token ?? options.upstashToken;
    const commandsPerSecond = scale === undefined ? undefined : UPSTASH_COMMANDS_PER_SECOND / scale;
    const starting: Promise<unknown>[] = [];
    if (!options.externalRedis) {
      databases.forEach((db, i) => {
        // The first shard keeps the names a one-database stack always had (its data survives).
        const suffix = i === 0 ? '' : `-${i + 1}`;
        starting.push(
          startRedis({ port: db.redis, dataDir: join(options.dataDir, `redis${suffix}`), logFile: join(logs, `redis${suffix}.log`) }).then(async (redis) => {
            watch(redis);
            const gateway = watch(
              spawnLogged('upstash-gateway', process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'localstack', 'upstash-gateway.ts')], {
                logFile: join(logs, `gateway${suffix}.log`),
                env: {
                  ...process.env,
                  GATEWAY_PORT: String(db.gateway),
                  REDIS_PORT: String(db.redis),
                  UPSTASH_REDIS_REST_TOKEN: redisToken,
                  GATEWAY_COMMANDS_PER_SECOND: commandsPerSecond === undefined ? '' : String(commandsPerSecond),
                },
              }),
            );
            await waitForPort(db.gateway, 'the Upstash REST gateway', gateway.child, 30_000);
          }),
        );
      });
    }
    const external = options.externalDynamo;
    const dynamodbEndpoint = external === 'aws' ? undefined : external ? external.endpoint : `http://127.0.0.1:${ports.dynamodb}`;
    if (!external) {
      starting.push(startDynamo({ port: ports.dynamodb, dataDir: join(options.dataDir, 'dynamodb'), logFile: join(logs, 'dynamodb.log') }).then(watch));
    }
    let quotaProxyUrl: string | undefined;
    if (scale !== undefined) {
      if (!dynamodbEndpoint)
        throw new StackError('the quota proxy emulates DynamoDB in front of DynamoDB Local, not AWS (unset LOCAL_DYNAMODB=false or QUOTA_SCALE)');
      quotaProxyUrl = `http://127.0.0.1:${ports.dynamodbProxy}`;
      const proxy = watch(
        spawnLogged('dynamodb-quota-proxy', process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'localstack', 'dynamodb-quota-proxy.ts')], {
          logFile: join(logs, 'dynamodb-quota-proxy.log'),
          env: { ...process.env, TARGET: dynamodbEndpoint, PORT: String(ports.dynamodbProxy), SCALE: String(scale) },
        }),
      );
      starting.push(waitForPort(ports.dynamodbProxy!, 'the DynamoDB quota proxy', proxy.child, 30_000));
    }
    // Every start settles before the first failure is thrown (a DynamoDB Local still starting can take
    // up to its 90 s timeout), so that stop() below sees every child that did start; a start that fails
    // stops its own child.
    const failed = (await Promise.allSettled(starting)).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const region = process.env.AWS_REGION ?? 'us-east-1';
    await ensureTable(createDynamo({ region, endpoint: dynamodbEndpoint }), options.tableName);

    const env: Record<string, string> = {
      STAGE: 'local',
      AWS_REGION: region,
      TABLE_NAME: options.tableName,
      // One URL per database, comma-separated (lib/config.ts), each with the same token here.
      UPSTASH_REDIS_REST_URL: redisUrls.join(','),
      UPSTASH_REDIS_REST_TOKEN: options.externalRedis ? redisToken : redisUrls.map(() => redisToken).join(','),
      ADMIN_TOKEN: options.adminToken,
      REDIS_KEY_PREFIX: options.redisKeyPrefix ?? 'fcfs',
      API_PORT: String(ports.api),
      LAMBDA_PORT: String(ports.lambda),
      // Lambda runs nodejs22.x; the SDK's notice about local Node 20 is noise here.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // Set by Lambda, not by serverless offline (which passes AWS_* variables on): without it Powertools
      // never reports a cold start.
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      // Empty means AWS DynamoDB: left unset, serverless.yml's local stage would point the handlers at
      // 127.0.0.1:8000.
      DYNAMODB_ENDPOINT: quotaProxyUrl ?? dynamodbEndpoint ?? '',
      ...options.extraEnv,
    };

    if (options.offline) {
      ownsBuildFolder = true;
      const offline = watch(
        spawnLogged(
          'serverless-offline',
          process.execPath,
          [join(PROJECT_ROOT, 'node_modules', 'osls', 'bin', 'serverless.js'), 'offline', 'start', '--stage', 'local'],
          {
            logFile: options.offlineLog,
            env: {
              ...process.env,
              ...env,
              SLS_TELEMETRY_DISABLED: '1',
              SLS_NOTIFICATIONS_MODE: 'off',
              // serverless offline prints three lines per invocation at its default level: noise at a
              // drop's scale, and CPU a trivial handler notices (docs/decisions/0012). Warnings and errors
              // still show; SLS_LOG_LEVEL=notice brings them back.
              SLS_LOG_LEVEL: process.env.SLS_LOG_LEVEL ?? 'warning',
              // npm start keeps the default folder; a stack on other ports (tests, bench) gets its own.
              ...(buildFolder ? { ESBUILD_WORK_FOLDER: `.esbuild-${ports.api}` } : {}),
            },
            inherit: options.offlineLog === undefined,
          },
        ),
      );
      await waitForPort(ports.api, 'serverless offline', offline.child, 120_000);
      await waitForPort(ports.lambda, 'serverless offline (Lambda endpoint)', offline.child, 30_000);
    }
    return {
      apiUrl: `http://127.0.0.1:${ports.api}`,
      redisUrl: redisUrls[0]!,
      redisUrls,
      redisPorts: options.externalRedis ? [] : databases.map((db) => db.redis),
      dynamodbEndpoint,
      quotaProxyUrl,
      env,
      children,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
