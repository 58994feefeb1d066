/**
 * The gateway's connection to redis-server, speaking commands as the client sent them and handing back
 * replies as parsed, untouched: no ioredis reply transformer (which turns a lower-case `hgetall`'s reply
 * into an object), integers as decimal strings (`stringNumbers`, so 2^63-1 stays exact), strings as
 * buffers (binary-safe), nested errors as Error objects.
 */
import { Command, Redis as IORedis } from 'ioredis';
import type { Reply } from './reply.js';

class RawCommand extends Command {
  override transformReply(result: Buffer | Buffer[]): Buffer | Buffer[] {
    return result;
  }
}

export function connect(host: string, port: number, options: { subscriber?: boolean } = {}): IORedis {
  return new IORedis({
    host,
    port,
    // Fail fast while Redis is down instead of queueing: the caller turns that into 503 + Retry-After.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    stringNumbers: true,
    lazyConnect: options.subscriber ?? false,
    // A subscription's connection is not re-established: its stream ends and the client subscribes again.
    retryStrategy: options.subscriber ? () => null : (times) => Math.min(50 * times, 500),
  });
}

/** Sends one command now (commands sent in one synchronous run are written back to back). */
export function send(redis: IORedis, command: readonly string[]): Promise<Reply> {
  const raw = new RawCommand(command[0]!, command.slice(1), { replyEncoding: null });
  return (redis.sendCommand(raw) as Promise<Reply>).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
}

/** The error is the connection's (the command may or may not have reached Redis), not Redis's answer. */
export function isConnectionError(error: Error): boolean {
  return (
    error.name !== 'ReplyError' &&
    /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|enableOfflineQueue|max retries per request/i.test(error.message)
  );
}
