/**
 * What the emulated cloud counted during a run, read from outside the processes that counted it:
 * - Upstash: each gateway's bill (GET /_fcfs/billing: every command as Upstash bills it, scripts' inner
 *   calls included, and the requests that waited for the database's cap);
 * - Redis itself: INFO commandstats, which counts every command redis-server ran, those a script ran
 *   included; used for the seed design, whose scheduler talks to redis-server over TCP (as its Spring
 *   scheduler does), past the gateway;
 * - DynamoDB: the quota proxy's units and throttled calls (GET /_fcfs/stats).
 */
import { Redis as IORedis } from 'ioredis';
import type { BillingSnapshot } from '../../localstack/gateway/billing.js';
import type { QuotaStats } from '../../localstack/dynamodb-quota-proxy.js';

export async function gatewayBill(url: string, token: string): Promise<BillingSnapshot> {
  const reply = await fetch(`${url}/_fcfs/billing`, { headers: { authorization: `Bearer ${token}` } });
  if (!reply.ok) throw new Error(`the gateway at ${url} answered ${reply.status} for its bill`);
  return (await reply.json()) as BillingSnapshot;
}

/** The bills of several databases (shards) summed. */
export async function gatewaysBill(urls: readonly string[], token: string): Promise<{ commands: number; throttledRequests: number }> {
  const bills = await Promise.all(urls.map((url) => gatewayBill(url, token)));
  return { commands: bills.reduce((n, b) => n + b.commands, 0), throttledRequests: bills.reduce((n, b) => n + b.throttledRequests, 0) };
}

/**
 * Commands redis-server ran, by INFO commandstats, less those Upstash does not bill (INFO, CONFIG,
 * PING, HELLO, AUTH, SELECT, COMMAND, CLIENT, QUIT, RESET: its pricing FAQ) and the script cache's
 * management (SCRIPT), which a client does once, not per request.
 */
export async function redisCommandsRun(port: number): Promise<number> {
  const redis = new IORedis({ port, lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const info = await redis.info('commandstats');
    let total = 0;
    for (const line of info.split('\n')) {
      const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
      if (!match) continue;
      const command = match[1]!.split('|')[0]!;
      if (UNBILLED.has(command)) continue;
      total += Number(match[2]);
    }
    return total;
  } finally {
    redis.disconnect();
  }
}

const UNBILLED = new Set(['info', 'config', 'ping', 'hello', 'auth', 'select', 'command', 'client', 'quit', 'reset', 'script']);

export interface DynamoUse {
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly throttled: number;
}

export async function dynamoUse(proxyUrl: string): Promise<DynamoUse> {
  const reply = await fetch(`${proxyUrl}/_fcfs/stats`);
  if (!reply.ok) throw new Error(`the quota proxy at ${proxyUrl} answered ${reply.status} for its stats`);
  const stats = (await reply.json()) as QuotaStats;
  return {
    writeUnits: stats.resources.reduce((n, r) => n + r.writeUnits, 0),
    readUnits: stats.resources.reduce((n, r) => n + r.readUnits, 0),
    throttled: stats.throttledRequests,
  };
}

export const minus = (after: DynamoUse, before: DynamoUse): DynamoUse => ({
  writeUnits: after.writeUnits - before.writeUnits,
  readUnits: after.readUnits - before.readUnits,
  throttled: after.throttled - before.throttled,
});
