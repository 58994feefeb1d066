/**
 * The drop's systems, each behind the emulated quotas (QUOTA_SCALE): fcfs-coupons on stacks of 1, 2 and
 * 4 Upstash databases, each database a redis-server and a gateway capped at 10,000 / QUOTA_SCALE
 * commands a second, the handlers' DynamoDB behind a quota proxy at 1,000 / QUOTA_SCALE write units a
 * second per partition; the baselines under their own serverless offline, with a capped gateway and a
 * quota proxy of their own (so that each system's bill is its own).
 */
import { join } from 'node:path';
import type pg from 'pg';
import { createDynamo } from '../../lib/ledger/dynamo.js';
import { freePort } from '../../localstack/processes.js';
import { startStack, type Stack } from '../../localstack/stack.js';
import { ensureTable } from '../../localstack/table.js';
import { startBaselines, startSeedScheduler } from '../baselines.js';
import { dynamodbSyncSystem, fcfsSystem, pessimisticLockSystem, seedRedisSystem, type System, type SystemName } from '../systems.js';
import { QUOTA_SCALE } from './shape.js';

export const ADMIN_TOKEN = 'bench-admin-token';
export const UPSTASH_TOKEN = 'bench-upstash-token';
export const FCFS_TABLE = 'fcfs-coupons-drop';

export interface DropContext {
  readonly quick: boolean;
  readonly systems: readonly SystemName[];
  readonly dataDir: string;
  readonly log: (message: string) => void;
  readonly logFile: (name: string) => number;
  /** A DynamoDB Local already running (the classic scenarios'), or undefined: the drop starts one. */
  readonly dynamodbEndpoint: string | undefined;
  /** PostgreSQL for pessimistic-lock (undefined: it is not run). */
  readonly pool: pg.Pool | undefined;
  readonly pgUrl: string;
  /** Registers what to stop when the bench ends (in reverse order), Ctrl-C included. */
  readonly onStop: (stop: () => Promise<void>) => void;
}

/** A system of the drop, and where its quotas are counted. */
export interface DropSystem {
  readonly system: System;
  /** The gateways of its Upstash databases (none for systems without Redis). */
  readonly gateways: readonly string[];
  /** redis-server of the seed design, whose scheduler bypasses the gateway: billed by INFO commandstats. */
  readonly redisPort?: number;
  /** Its DynamoDB quota proxy (none for pessimistic-lock). */
  readonly quotaProxy?: string;
  /** fcfs-coupons only. */
  readonly stack?: Stack;
}

export interface DropSystems {
  readonly selected: DropSystem[];
  /** fcfs-coupons with 1, 2 and 4 databases (1 is the drop's own). */
  readonly scaleOut: Map<number, DropSystem>;
  /** DynamoDB itself, for the bench's own reads (not counted by any proxy). */
  readonly dynamodbEndpoint: string;
}

export const SCALE_OUT_SHARDS = [1, 2, 4] as const;

/** Start every stack the drop needs, in parallel where they do not depend on each other. */
export async function startDropSystems(ctx: DropContext): Promise<DropSystems> {
  const withFcfs = ctx.systems.includes('fcfs-coupons');
  const first = await fcfsStack(ctx, 'drop-1-shard', 1, ctx.dynamodbEndpoint);
  const dynamodbEndpoint = first.dynamodbEndpoint!;
  const direct = createDynamo({ region: 'us-east-1', endpoint: dynamodbEndpoint });
  const fcfs = (stack: Stack): DropSystem => ({
    system: fcfsSystem(stack.apiUrl, ADMIN_TOKEN, direct, FCFS_TABLE),
    gateways: stack.redisUrls,
    quotaProxy: stack.quotaProxyUrl,
    stack,
  });
  const [more, baselines] = await Promise.all([
    withFcfs ? Promise.all(SCALE_OUT_SHARDS.filter((n) => n > 1).map((n) => fcfsStack(ctx, `drop-${n}-shards`, n, dynamodbEndpoint))) : Promise.resolve([]),
    startBaselineSystems(ctx, dynamodbEndpoint),
  ]);
  const scaleOut = new Map<number, DropSystem>();
  if (withFcfs) {
    scaleOut.set(1, fcfs(first));
    for (const stack of more) scaleOut.set(stack.redisUrls.length, fcfs(stack));
  }
  const selected = [...(withFcfs ? [scaleOut.get(1)!] : []), ...baselines];
  return { selected, scaleOut, dynamodbEndpoint };
}

async function fcfsStack(ctx: DropContext, name: string, shards: number, dynamodbEndpoint: string | undefined): Promise<Stack> {
  const moreShards = [];
  for (let i = 1; i < shards; i++) moreShards.push({ redis: await freePort(), gateway: await freePort() });
  const stack = await startStack({
    dataDir: join(ctx.dataDir, name),
    ports: {
      api: await freePort(),
      lambda: await freePort(),
      dynamodb: await freePort(),
      gateway: await freePort(),
      redis: await freePort(),
      moreShards,
      dynamodbProxy: await freePort(),
    },
    tableName: FCFS_TABLE,
    adminToken: ADMIN_TOKEN,
    upstashToken: UPSTASH_TOKEN,
    offline: true,
    offlineLog: join(ctx.dataDir, 'logs', `${name}-offline.log`),
    extraEnv: { LOG_LEVEL: 'warn' },
    shards,
    quotaScale: QUOTA_SCALE,
    externalDynamo: dynamodbEndpoint ? { endpoint: dynamodbEndpoint } : undefined,
  });
  ctx.onStop(() => stack.stop());
  return stack;
}

/** The baselines' Redis (a capped gateway) and quota proxy, their serverless offline and the seed scheduler. */
async function startBaselineSystems(ctx: DropContext, dynamodbEndpoint: string): Promise<DropSystem[]> {
  const wanted = ctx.systems.filter((name) => name !== 'fcfs-coupons' && (name !== 'pessimistic-lock' || ctx.pool));
  if (wanted.length === 0) return [];
  const infra = await startStack({
    dataDir: join(ctx.dataDir, 'drop-baselines'),
    ports: {
      api: await freePort(),
      lambda: await freePort(),
      dynamodb: await freePort(),
      gateway: await freePort(),
      redis: await freePort(),
      dynamodbProxy: await freePort(),
    },
    tableName: 'bench-dynamodb-sync',
    adminToken: ADMIN_TOKEN,
    upstashToken: UPSTASH_TOKEN,
    offline: false,
    quotaScale: QUOTA_SCALE,
    externalDynamo: { endpoint: dynamodbEndpoint },
  });
  ctx.onStop(() => infra.stop());
  const direct = createDynamo({ region: 'us-east-1', endpoint: dynamodbEndpoint });
  await ensureTable(direct, 'bench-seed-redis');
  const baselines = await startBaselines(
    { UPSTASH_REDIS_REST_URL: infra.redisUrl, UPSTASH_REDIS_REST_TOKEN: UPSTASH_TOKEN, DYNAMODB_ENDPOINT: infra.quotaProxyUrl!, BENCH_PG_URL: ctx.pgUrl },
    ctx.logFile('drop-baselines-offline.log'),
  );
  ctx.onStop(async () => {
    baselines.child.kill('SIGTERM');
    if (baselines.child.exitCode === null) await new Promise((resolve) => baselines.child.once('exit', resolve));
    baselines.cleanUp();
  });
  const systems: DropSystem[] = [];
  for (const name of wanted) {
    if (name === 'seed-redis') {
      const scheduler = startSeedScheduler(baselines, infra.redisPorts[0]!, ctx.logFile('drop-seed-scheduler.log'));
      ctx.onStop(async () => {
        scheduler.kill('SIGTERM');
        if (scheduler.exitCode === null) await new Promise((resolve) => scheduler.once('exit', resolve));
      });
      systems.push({
        system: seedRedisSystem(baselines.url, infra.redisUrl, UPSTASH_TOKEN, direct, 'bench-seed-redis'),
        gateways: [infra.redisUrl],
        redisPort: infra.redisPorts[0],
        quotaProxy: infra.quotaProxyUrl,
      });
    }
    if (name === 'pessimistic-lock') systems.push({ system: pessimisticLockSystem(baselines.url, ctx.pool!), gateways: [] });
    if (name === 'dynamodb-sync')
      systems.push({ system: dynamodbSyncSystem(baselines.url, direct, 'bench-dynamodb-sync'), gateways: [], quotaProxy: infra.quotaProxyUrl });
  }
  return systems;
}
