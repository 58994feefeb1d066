import { UnavailableError } from '../errors.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import type { RedisClient } from './coupon-store.js';
import { NodeRequester, RedisReplyError, type Requester } from './node-requester.js';

export interface RedisConnection {
  readonly url: string;
  readonly token: string;
  /** Retries of a request that never reached Redis (connection refused), after a short backoff. */
  readonly retries: number;
  /** Abort a request that has not been answered after this long, connecting and retries included. */
  readonly timeoutMs?: number;
  /** The request path's breaker: calls fail at once while Redis keeps timing out. */
  readonly breaker?: CircuitBreaker;
}

/**
 * The Upstash REST client of the functions: the few commands the coupon store sends, each its own
 * request, over NodeRequester (see docs/decisions/0013-upstash-client-transport.md for why not the SDK):
 * - no auto-pipelining: every call is its own request, so an admission is exactly one EVALSHA and its
 *   latency is not tied to unrelated commands batched with it;
 * - few retries, and only of requests that never reached Redis: a caller waiting on an HTTP answer gets
 *   503 in well under a second, and a script that may have run is never run twice;
 * - a deadline for the whole request, connecting included, so a hung connection cannot hold a Lambda
 *   until its own timeout; on the request path, a circuit breaker answers at once while Redis keeps
 *   missing it;
 * - replies as Redis sent them (no JSON deserialization): script replies are parsed by their own
 *   typed readers, and a user id "123" or "null" stays a string.
 */
export function createRedis(connection: RedisConnection): UpstashClient {
  return new UpstashClient(requesterFor(connection));
}

/** The transport of one connection: Upstash's REST API over node:http, with its deadline, retries and breaker. */
export function requesterFor(connection: RedisConnection): NodeRequester {
  return new NodeRequester({
    url: connection.url,
    token: connection.token,
    retries: connection.retries,
    timeoutMs: connection.timeoutMs ?? 2_000,
    ...(connection.breaker ? { breaker: connection.breaker } : {}),
  });
}

type Argument = string | number;

/** Upstash's REST API, one command per request: the command as a JSON array, its reply as it is. */
export class UpstashClient implements RedisClient {
  constructor(private readonly requester: Requester) {}

  /** Any command and its raw reply (tools and tests use those the coupon store does not name). */
  async command(command: readonly Argument[]): Promise<unknown> {
    const { result, error } = await this.requester.request({ body: command });
    if (error !== undefined) throw new RedisReplyError(error);
    return result;
  }

  evalsha(sha1: string, keys: string[], args: Argument[]): Promise<unknown> {
    return this.command(['EVALSHA', sha1, keys.length, ...keys, ...args]);
  }

  eval(script: string, keys: string[], args: Argument[]): Promise<unknown> {
    return this.command(['EVAL', script, keys.length, ...keys, ...args]);
  }

  evalshaRo(sha1: string, keys: string[], args: Argument[]): Promise<unknown> {
    return this.command(['EVALSHA_RO', sha1, keys.length, ...keys, ...args]);
  }

  evalRo(script: string, keys: string[], args: Argument[]): Promise<unknown> {
    return this.command(['EVAL_RO', script, keys.length, ...keys, ...args]);
  }

  set(key: string, value: string, options: { nx: true; px: number }): Promise<unknown> {
    return this.command(['SET', key, value, ...(options.nx ? ['NX'] : []), 'PX', options.px]);
  }

  sadd(key: string, member: string, ...members: string[]): Promise<number> {
    return this.command(['SADD', key, member, ...members]) as Promise<number>;
  }

  smembers(key: string): Promise<string[]> {
    return this.command(['SMEMBERS', key]) as Promise<string[]>;
  }

  hexists(key: string, field: string): Promise<number> {
    return this.command(['HEXISTS', key, field]) as Promise<number>;
  }

  hget(key: string, field: string): Promise<unknown> {
    return this.command(['HGET', key, field]);
  }

  hgetall(key: string): Promise<unknown> {
    return this.command(['HGETALL', key]);
  }

  del(...keys: string[]): Promise<number> {
    return this.command(['DEL', ...keys]) as Promise<number>;
  }

  hscan(key: string, cursor: string | number, options: { match?: string; count: number }): Promise<[string | number, (string | number)[]]> {
    const match = options.match === undefined ? [] : ['MATCH', options.match];
    return this.command(['HSCAN', key, cursor, ...match, 'COUNT', options.count]) as Promise<[string | number, (string | number)[]]>;
  }

  zscan(key: string, cursor: string | number, options: { count: number }): Promise<[string | number, (string | number)[]]> {
    return this.command(['ZSCAN', key, cursor, 'COUNT', options.count]) as Promise<[string | number, (string | number)[]]>;
  }

  zrange(key: string, min: number, max: number, options: { withScores: true }): Promise<(string | number)[]> {
    return this.command(['ZRANGE', key, min, max, ...(options.withScores ? ['WITHSCORES'] : [])]) as Promise<(string | number)[]>;
  }

  hmget(key: string, ...fields: string[]): Promise<unknown> {
    return this.command(['HMGET', key, ...fields]);
  }

  hset(key: string, values: Record<string, string>): Promise<number> {
    return this.command(['HSET', key, ...Object.entries(values).flat()]) as Promise<number>;
  }
}

/**
 * Replies that mean the command ran and failed for a reason of its own (a script error, an unknown
 * command, a wrong type: a bug) or that the credentials are wrong (a misconfiguration) are faults.
 * Anything else (connection refused, timeout, a proxy's 5xx, LOADING, BUSY, READONLY, CLUSTERDOWN, a
 * provider's "max ... exceeded" limit) means Redis could not be asked now: the caller may retry, and
 * nothing was half-applied because every state change is one script.
 */
const FAULT_REPLY =
  /^(ERR (Error running script|user_script|unknown command|wrong number of arguments|syntax error|value is not)|WRONGTYPE|NOSCRIPT|NOPERM|WRONGPASS|Unauthorized)/i;

export function asRedisFault(error: unknown, operation: string): Error {
  // Already an answer for the caller (the circuit breaker's, with its own Retry-After).
  if (error instanceof UnavailableError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (FAULT_REPLY.test(message)) {
    return error instanceof Error ? error : new Error(message);
  }
  return new UnavailableError(`Redis is unavailable (${operation})`, 1, { cause: error });
}
