import { Redis } from '@upstash/redis';
import { UnavailableError } from '../errors.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { NodeRequester } from './node-requester.js';

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
 * The Upstash REST client, set deliberately:
 * - no auto-pipelining: every call is its own request, so an admission is exactly one EVALSHA and its
 *   latency is not tied to unrelated commands batched with it;
 * - few retries, and only of requests that never reached Redis: a caller waiting on an HTTP answer gets
 *   503 in well under a second instead of after the default five retries (about 4 s), and a script that
 *   may have run is never run twice;
 * - a deadline for the whole request, connecting included, which the default lacks, so a hung
 *   connection cannot hold a Lambda until its own timeout; on the request path, a circuit breaker
 *   answers at once while Redis keeps missing it;
 * - no automatic JSON deserialization: script replies are parsed by their own typed readers;
 * - the transport is NodeRequester (node:http keep-alive) instead of fetch: same protocol, a fraction of
 *   the CPU per request.
 */
export function createRedis(connection: RedisConnection): Redis {
  return new UpstashRedis(
    new NodeRequester({
      url: connection.url,
      token: connection.token,
      retries: connection.retries,
      timeoutMs: connection.timeoutMs ?? 2_000,
      ...(connection.breaker ? { breaker: connection.breaker } : {}),
    }),
  );
}

/** @upstash/redis with our options and our transport (its constructor takes one or the other). */
class UpstashRedis extends Redis {
  constructor(requester: NodeRequester) {
    super({ url: 'http://transport.invalid', token: 'unused', enableAutoPipelining: false, automaticDeserialization: false, enableTelemetry: false, readYourWrites: false });
    this.client = requester;
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
