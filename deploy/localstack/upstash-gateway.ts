/**
 * The Upstash stand-in of compose.localstack.yml: the project's own Upstash REST gateway
 * (localstack/upstash-gateway.ts) in a container, in front of the compose file's redis. Not a generic
 * Upstash-compatible container (serverless-redis-http): every script of lib/redis/scripts carries
 * Upstash's `#!lua flags=allow-key-locking`, which Redis refuses ("Unexpected flag in script shebang")
 * and only this gateway removes before Redis sees it (docs/local-upstash.md).
 *
 * UPSTASH_REDIS_REST_TOKEN (required), GATEWAY_PORT (8079), REDIS_HOST (redis), REDIS_PORT (6379).
 */
import { startGateway } from '../../localstack/upstash-gateway.js';

const env = process.env;
const token = env.UPSTASH_REDIS_REST_TOKEN;
if (!token) throw new Error('UPSTASH_REDIS_REST_TOKEN is required');

const gateway = await startGateway({
  port: Number(env.GATEWAY_PORT ?? 8079),
  host: '0.0.0.0',
  redisHost: env.REDIS_HOST ?? 'redis',
  redisPort: Number(env.REDIS_PORT ?? 6379),
  token,
});
console.log(`upstash-gateway listening on port ${env.GATEWAY_PORT ?? 8079}, in front of ${env.REDIS_HOST ?? 'redis'}:${env.REDIS_PORT ?? 6379}`);
const stop = () => void gateway.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
