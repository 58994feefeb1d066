import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Requester, UpstashRequest, UpstashResponse } from '@upstash/redis';
import type { CircuitBreaker } from './circuit-breaker.js';

/** Pooled connections idle this long are closed (below any usual server keep-alive timeout). */
const IDLE_SOCKET_TIMEOUT_MS = 4_000;

export interface NodeRequesterOptions {
  readonly url: string;
  readonly token: string;
  /** Retries of a request that surely never reached Redis (connection refused), within the deadline. */
  readonly retries: number;
  /** The whole call: connecting, every attempt, the pauses between them and the reply. */
  readonly timeoutMs: number;
  /** Fails calls at once while Redis keeps timing out (the request path's containers). */
  readonly breaker?: CircuitBreaker;
}

export type { Requester };

/** Redis (or the REST endpoint in front of it) answered with an error: the message is its own. */
export class RedisReplyError extends Error {
  override readonly name = 'RedisReplyError';
}

/** The call's deadline passed: the request may or may not have reached Redis. */
export class RedisDeadlineError extends Error {
  override readonly name = 'RedisDeadlineError';
}

/**
 * The Upstash REST transport over node:http(s) with a keep-alive agent. It implements @upstash/redis's
 * public Requester interface: the functions' own client (client.ts) sends through it, and so can the SDK
 * (`new Redis(requester)`, its documented constructor) where a tool wants every command. It speaks exactly what the default transport speaks (POST of the
 * JSON command to /, /pipeline or /multi-exec, Bearer token, `Upstash-Encoding: base64` with the same
 * decoding, UpstashError on an error reply), but without WHATWG fetch, whose streams, abort signals and
 * allocations cost several times this transport's CPU per call (docs/decisions/0002 and 0013).
 */
export class NodeRequester implements Requester {
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;
  private readonly authorization: string;

  constructor(private readonly options: NodeRequesterOptions) {
    this.url = new URL(options.url.replace(/\/$/, ''));
    const secure = this.url.protocol === 'https:';
    // An idle pooled connection is closed by us before the server may close it (Node's default is 5 s,
    // proxies 60 s): reusing a socket the server is closing at that instant fails the request with
    // "socket hang up", and such a request is not retried (it may have reached Redis).
    const pool = { keepAlive: true, maxSockets: 256, timeout: IDLE_SOCKET_TIMEOUT_MS };
    this.agent = secure ? new HttpsAgent(pool) : new HttpAgent(pool);
    this.send = secure ? httpsRequest : httpRequest;
    this.authorization = `Bearer ${options.token}`;
  }

  async request<TResult = unknown>(req: UpstashRequest): Promise<UpstashResponse<TResult>> {
    const breaker = this.options.breaker;
    breaker?.admit();
    let reply: { status: number; text: string };
    try {
      reply = await this.attempts(req);
    } catch (error) {
      breaker?.failed();
      throw error;
    }
    // An answer from behind Redis' REST endpoint that is no answer of Redis' (a proxy's 5xx).
    if (reply.status >= 500 && !reply.text.startsWith('{')) breaker?.failed();
    else breaker?.succeeded();
    return this.parse<TResult>(req, reply);
  }

  /** The request's attempts, all within one deadline that starts before connecting. */
  private async attempts(req: UpstashRequest): Promise<{ status: number; text: string }> {
    const path = `${this.url.pathname === '/' ? '' : this.url.pathname}/${(req.path ?? []).join('/')}`;
    const body = JSON.stringify(req.body);
    const deadline = Date.now() + this.options.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.post(path, body, req.headers, deadline - Date.now());
      } catch (error) {
        // Retried only when the request surely never reached Redis: a script that timed out may have
        // run, and running admit or claim twice would not be harmless.
        const pause = 25 * 2 ** attempt + Math.random() * 25;
        if (attempt >= this.options.retries || !neverSent(error) || Date.now() + pause >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  private parse<TResult>(req: UpstashRequest, reply: { status: number; text: string }): UpstashResponse<TResult> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(reply.text);
    } catch (error) {
      throw new RedisReplyError(`${reply.text.slice(0, 200)} (HTTP ${reply.status}, not JSON)`, { cause: error });
    }
    if (reply.status < 200 || reply.status > 299) {
      // The command's name only: its arguments (user ids, whole scripts after NOSCRIPT) stay out of logs.
      const command = Array.isArray(req.body) ? String(req.body[0]) : (req.path ?? []).join('/');
      throw new RedisReplyError(`${(parsed as { error?: string }).error}, command was: ${command}`);
    }
    if (Array.isArray(parsed)) {
      return parsed.map(({ result, error }: UpstashResponse<unknown>) => ({ result: decode(result), error })) as unknown as UpstashResponse<TResult>;
    }
    const { result, error } = parsed as UpstashResponse<unknown>;
    return { result: decode(result) as TResult, error };
  }

  private post(path: string, body: string, headers: Record<string, string> = {}, timeoutMs: number): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const request = this.send(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port || undefined,
          path,
          method: 'POST',
          agent: this.agent,
          headers: {
            ...headers,
            authorization: this.authorization,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'upstash-encoding': 'base64',
          },
        },
        (response: IncomingMessage) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            clearTimeout(timer);
            resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
          });
          response.on('error', fail);
        },
      );
      // One timer for connecting, sending and the whole reply: a socket's own timeout would start only
      // once connected, and restart with every chunk.
      const timer = setTimeout(
        () => request.destroy(new RedisDeadlineError(`Redis REST request did not complete within ${this.options.timeoutMs} ms`)),
        Math.max(0, timeoutMs),
      );
      function fail(error: Error) {
        clearTimeout(timer);
        reject(error);
      }
      request.on('error', fail);
      request.end(body);
    });
  }
}

function neverSent(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

/** Strings come base64-encoded (except a bare "OK"); numbers and nulls as they are; arrays recursively. */
function decode(value: unknown): unknown {
  if (typeof value === 'string') return value === 'OK' ? value : Buffer.from(value, 'base64').toString('utf8');
  if (Array.isArray(value)) return value.map(decode);
  return value;
}
