import { parseDatabases, type Config, type UpstashDatabase } from '../config.js';
import type { SecretStore } from '../secrets.js';
import type { RedisClientOptions } from '../composition.js';
import { createRedis } from './client.js';
import { CouponStore } from './coupon-store.js';
import { Shards } from './shards.js';

/** The deployment's Upstash databases: given, or read from their secret (once per container). */
export async function resolveDatabases(config: Config, secrets: SecretStore): Promise<UpstashDatabase[]> {
  const ref = config.redis.databases;
  if ('given' in ref) return [...ref.given];
  return parseDatabases(await secrets.read(ref.secretId), `secret ${ref.secretId}`);
}

/** One coupon store per database, in the configured order (a shard's index is its position). */
export function shardsOf(config: Config, databases: readonly UpstashDatabase[], clientOptions: () => RedisClientOptions): Shards {
  return new Shards(databases.map((db) => new CouponStore(createRedis({ url: db.url, token: db.token, ...clientOptions() }), config.redis.keyPrefix)));
}
