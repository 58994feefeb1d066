/**
 * How the bench drives and inspects each system: create a coupon, wait until what was accepted is
 * persisted, and read back what each store holds (who, when requested, when persisted).
 */
import { GetItemCommand, PutItemCommand, QueryCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type pg from 'pg';
import { Ledger } from '../lib/ledger/ledger.js';
import { createRedis } from '../lib/redis/client.js';
import { POSTGRESQL } from './cpu.js';
import { seedKeys } from './systems/seed-redis.js';

export type SystemName = 'fcfs-coupons' | 'seed-redis' | 'pessimistic-lock' | 'dynamodb-sync';

export interface Persisted {
  readonly users: string[];
  readonly requestedAt: number[];
  readonly issuedAt: number[];
}

/** The processes the bench runs, named as its CPU accounting (bench/cpu.ts) names them. */
export const ROLE = {
  loadGenerator: 'bench (load generator)',
  fcfsOffline: 'serverless offline (fcfs-coupons)',
  baselinesOffline: 'serverless offline (baselines, ceiling)',
  seedScheduler: 'seed-redis scheduler',
  gateway: 'upstash-gateway',
  redis: 'redis-server',
  dynamodbLocal: 'dynamodb-local',
  postgresql: POSTGRESQL,
} as const;

export interface System {
  readonly name: SystemName;
  /** The processes whose CPU a request of this system costs (the load generator's included). */
  readonly processes: readonly string[];
  /** Base URL plus path prefix before /api/v2/... */
  readonly baseUrl: string;
  readonly prefix: string;
  /** A coupon of `units`, open from `opensAt` (epoch ms; now when not given, and always for the baselines, which have no opening time). */
  createCoupon(couponId: string, units: number, opensAt?: number): Promise<void>;
  /** Everything persisted for the coupon. */
  persisted(couponId: string): Promise<Persisted>;
  /**
   * How many are persisted, from one cheap read (a counter, not the items), for polling while a run
   * settles: reading every item four times a second would load the store the system is writing to.
   */
  count(couponId: string): Promise<number>;
  /** Still accepted but not yet persisted (0 for synchronous systems). */
  pending(couponId: string): Promise<number>;
}

/** The pages of a coupon's issuance items. */
async function* issuancePages(dynamo: DynamoDBClient, table: string, couponId: string) {
  let start: Record<string, any> | undefined;
  do {
    const page = await dynamo.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :issue)',
        ExpressionAttributeValues: { ':pk': { S: `COUPON#${couponId}` }, ':issue': { S: 'ISSUE#' } },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    yield page;
    start = page.LastEvaluatedKey;
  } while (start);
}

async function queryItems(dynamo: DynamoDBClient, table: string, couponId: string): Promise<Persisted> {
  const out: Persisted = { users: [], requestedAt: [], issuedAt: [] };
  for await (const page of issuancePages(dynamo, table, couponId)) {
    for (const item of page.Items ?? []) {
      out.users.push(item.userId!.S!);
      out.requestedAt.push(Date.parse(item.requestedAt!.S!));
      out.issuedAt.push(Date.parse(item.issuedAt!.S!));
    }
  }
  return out;
}

export function fcfsSystem(apiUrl: string, adminToken: string, dynamo: DynamoDBClient, tableName: string): System {
  const ledger = new Ledger(dynamo, tableName);
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' } });
  return {
    name: 'fcfs-coupons',
    processes: [ROLE.loadGenerator, ROLE.fcfsOffline, ROLE.gateway, ROLE.redis, ROLE.dynamodbLocal],
    baseUrl: apiUrl,
    prefix: '',
    async createCoupon(couponId, units, opensAt) {
      const startsAt = opensAt === undefined ? undefined : new Date(opensAt).toISOString();
      const reply = await admin('/api/v2/admin/coupons', {
        method: 'POST',
        body: JSON.stringify({ couponId, name: couponId, totalQuantity: units, startsAt }),
      });
      if (reply.status !== 201) throw new Error(`fcfs-coupons: creating ${couponId} answered ${reply.status} ${await reply.text()}`);
    },
    // Every partition of the coupon's issuances (lib/ledger/model.ts), not only PK=COUPON#<couponId>.
    async persisted(couponId) {
      const out: Persisted = { users: [], requestedAt: [], issuedAt: [] };
      for await (const page of ledger.issuancesOf(couponId)) {
        for (const issuance of page) {
          out.users.push(issuance.userId);
          out.requestedAt.push(issuance.requestedAt);
          out.issuedAt.push(issuance.issuedAt);
        }
      }
      return out;
    },
    // The coupon's issuedCount moves in the same transaction as its items.
    count: async (couponId) => (await ledger.getCoupon(couponId, true))?.issuedCount ?? 0,
    async pending(couponId) {
      const view = (await (await admin(`/api/v2/admin/coupons/${couponId}`)).json()) as { queued: number; inflight: number };
      return view.queued + view.inflight;
    },
  };
}

export function seedRedisSystem(baselineUrl: string, redisUrl: string, redisToken: string, dynamo: DynamoDBClient, table: string): System {
  const redis = createRedis({ url: redisUrl, token: redisToken, retries: 1 });
  return {
    name: 'seed-redis',
    processes: [ROLE.loadGenerator, ROLE.baselinesOffline, ROLE.gateway, ROLE.redis, ROLE.seedScheduler, ROLE.dynamodbLocal],
    baseUrl: baselineUrl,
    prefix: '/seed-redis',
    async createCoupon(couponId, units) {
      await redis.command(['SET', seedKeys(couponId).stock, units]);
      await redis.sadd('seed:active-coupons', couponId);
    },
    persisted: (couponId) => queryItems(dynamo, table, couponId),
    // The scheduler adds a user to the issued set just before its insert (and removes it if the insert
    // fails): an upper bound that meets the ledger's count once the scheduler is idle.
    count: async (couponId) => Number(await redis.command(['SCARD', seedKeys(couponId).issued])),
    pending: async (couponId) => Number(await redis.command(['ZCARD', seedKeys(couponId).queue])),
  };
}

export function dynamodbSyncSystem(baselineUrl: string, dynamo: DynamoDBClient, table: string): System {
  return {
    name: 'dynamodb-sync',
    processes: [ROLE.loadGenerator, ROLE.baselinesOffline, ROLE.dynamodbLocal],
    baseUrl: baselineUrl,
    prefix: '/dynamodb-sync',
    async createCoupon(couponId, units) {
      await dynamo.send(
        new PutItemCommand({
          TableName: table,
          Item: { PK: { S: `COUPON#${couponId}` }, SK: { S: 'META' }, total: { N: String(units) }, stock: { N: String(units) } },
        }),
      );
    },
    persisted: (couponId) => queryItems(dynamo, table, couponId),
    // Each issuance decrements the stock in its own transaction: one item read, not a count of every
    // issuance four times a second, which would load the JVM the system writes to.
    async count(couponId) {
      const meta = await dynamo.send(
        new GetItemCommand({ TableName: table, Key: { PK: { S: `COUPON#${couponId}` }, SK: { S: 'META' } }, ConsistentRead: true }),
      );
      return meta.Item ? Number(meta.Item.total!.N) - Number(meta.Item.stock!.N) : 0;
    },
    pending: async () => 0,
  };
}

export function pessimisticLockSystem(baselineUrl: string, pool: pg.Pool): System {
  return {
    name: 'pessimistic-lock',
    processes: [ROLE.loadGenerator, ROLE.baselinesOffline, ROLE.postgresql],
    baseUrl: baselineUrl,
    prefix: '/pessimistic-lock',
    async createCoupon(couponId, units) {
      await pool.query('INSERT INTO bench_coupons (id, total, stock) VALUES ($1, $2, $2)', [couponId, units]);
    },
    async persisted(couponId) {
      const rows = await pool.query(
        'SELECT user_id, extract(epoch from requested_at) * 1000 AS r, extract(epoch from issued_at) * 1000 AS i FROM bench_issuances WHERE coupon_id = $1',
        [couponId],
      );
      return {
        users: rows.rows.map((row) => row.user_id as string),
        requestedAt: rows.rows.map((row) => Number(row.r)),
        issuedAt: rows.rows.map((row) => Number(row.i)),
      };
    },
    // The stock moves in the same transaction as each issuance: one row read, not a count of every
    // issuance four times a second on the PostgreSQL the system runs on.
    async count(couponId) {
      const rows = await pool.query('SELECT total - stock AS n FROM bench_coupons WHERE id = $1', [couponId]);
      return (rows.rows[0]?.n as number | undefined) ?? 0;
    },
    pending: async () => 0,
  };
}
