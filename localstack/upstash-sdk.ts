import { Redis } from '@upstash/redis';
import { type RedisConnection, requesterFor } from '../lib/redis/client.js';

/**
 * The whole @upstash/redis SDK for tools and tests that send commands the functions never do (FLUSHALL,
 * ZADD, SCRIPT FLUSH, ...), over the functions' transport through the SDK's public constructor
 * (`new Redis(requester)`). That constructor keeps the SDK's defaults: replies are JSON-deserialized
 * ("12" becomes 12), which is why the functions use their own client (lib/redis/client.ts).
 */
export function createSdkRedis(connection: RedisConnection): Redis {
  return new Redis(requesterFor(connection));
}
