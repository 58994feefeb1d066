/**
 * A local stand-in for Upstash's Redis REST API, in front of a real redis-server, speaking everything
 * @upstash/redis sends:
 *
 *   POST /              body ["CMD", "arg", ...]                -> {"result": ...} | {"error": "..."}
 *   POST /pipeline      body [["CMD", ...], ...]                -> [{"result"}|{"error"}, ...]
 *   POST /multi-exec    body [["CMD", ...], ...] (MULTI/EXEC)   -> [{"result"}|{"error"}, ...] | {"error"}
 *   GET|POST /cmd/arg/… path-style command; a POST body is appended as the last argument
 *
 * Auth: `Authorization: Bearer <token>` (or `?_token=`), else 401. With `Upstash-Encoding: base64`, every
 * string in a result is base64-encoded except a bare "OK", as the client expects.
 * Redis errors answer 400 with the Redis message; an unreachable Redis answers 503.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { Redis as IORedis } from 'ioredis';

export interface GatewayOptions {
  readonly port: number;
  readonly host?: string;
  readonly redisHost?: string;
  readonly redisPort: number;
  readonly token: string;
}

export interface Gateway {
  readonly url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Commands that would block or take over the one shared connection. */
const REFUSED = new Set([
  'BLPOP', 'BRPOP', 'BRPOPLPUSH', 'BLMOVE', 'BZPOPMIN', 'BZPOPMAX', 'BLMPOP', 'BZMPOP', 'XREAD', 'XREADGROUP',
  'WAIT', 'SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'MONITOR', 'SYNC', 'PSYNC', 'MULTI', 'EXEC', 'DISCARD',
  'WATCH', 'UNWATCH', 'SELECT', 'QUIT', 'SHUTDOWN', 'DEBUG',
]);

type Reply = Buffer | string | number | null | Reply[];
type Encoded = string | number | null | Encoded[];

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? '127.0.0.1';
  const redis = new IORedis({
    host: options.redisHost ?? '127.0.0.1',
    port: options.redisPort,
    // Fail fast while Redis is down instead of queueing: the caller turns that into 503 + Retry-After.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(50 * times, 500),
    lazyConnect: false,
  });
  redis.on('error', () => {
    /* reconnects by itself; every request meanwhile answers 503 */
  });
  const expected = Buffer.from(`Bearer ${options.token}`);

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { error: `gateway error: ${String(error)}` }));
  });
  server.keepAliveTimeout = 65_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const auth = req.headers.authorization ?? (url.searchParams.has('_token') ? `Bearer ${url.searchParams.get('_token')}` : '');
    const given = Buffer.from(auth);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      req.resume();
      return send(res, 401, { error: 'Unauthorized' });
    }
    const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, { error: 'ERR request body too large' });
    if (redis.status !== 'ready') return send(res, 503, { error: 'Redis is unavailable: connection not ready' });

    const path = url.pathname.replace(/\/+$/, '');
    try {
      if (req.method === 'POST' && (path === '' || path === '/')) {
        const command = parseCommand(JSON.parse(body.toString('utf8')));
        return await single(res, command, base64);
      }
      if (req.method === 'POST' && (path === '/pipeline' || path === '/multi-exec')) {
        const commands = parseCommands(JSON.parse(body.toString('utf8')));
        return path === '/pipeline' ? await pipeline(res, commands, base64) : await multiExec(res, commands, base64);
      }
      const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
      if (segments.length === 0) return send(res, 400, { error: 'ERR no command given' });
      if (req.method === 'POST' && body.length > 0) segments.push(body.toString('utf8'));
      return await single(res, parseCommand(segments), base64);
    } catch (error) {
      if (error instanceof SyntaxError) return send(res, 400, { error: `ERR invalid request body: ${error.message}` });
      if (error instanceof RequestError) return send(res, 400, { error: error.message });
      throw error;
    }
  }

  async function single(res: ServerResponse, command: string[], base64: boolean): Promise<void> {
    try {
      const reply = (await redis.callBuffer(command[0]!, ...command.slice(1))) as Reply;
      send(res, 200, { result: encode(reply, base64) });
    } catch (error) {
      sendRedisError(res, error);
    }
  }

  async function pipeline(res: ServerResponse, commands: string[][], base64: boolean): Promise<void> {
    const p = redis.pipeline();
    for (const [name, ...args] of commands) p.callBuffer(name!, ...args);
    const results = await p.exec();
    if (!results) return send(res, 503, { error: 'Redis is unavailable: pipeline not run' });
    if (results.every(([error]) => error && isConnectionError(error))) return sendRedisError(res, results[0]![0]);
    send(res, 200, results.map(([error, reply]) => (error ? { error: error.message } : { result: encode(reply as Reply, base64) })));
  }

  async function multiExec(res: ServerResponse, commands: string[][], base64: boolean): Promise<void> {
    const m = redis.multi();
    for (const [name, ...args] of commands) m.callBuffer(name!, ...args);
    try {
      const results = await m.exec();
      if (!results) return send(res, 400, { error: 'EXECABORT Transaction discarded' });
      send(res, 200, results.map(([error, reply]) => (error ? { error: error.message } : { result: encode(reply as Reply, base64) })));
    } catch (error) {
      sendRedisError(res, error);
    }
  }

  // Give Redis a moment to accept the connection, so the first request is not answered 503 needlessly;
  // a Redis that is down still lets the gateway start (it answers 503 until Redis is back).
  await Promise.race([
    new Promise((resolve) => redis.once('ready', resolve)),
    new Promise((resolve) => setTimeout(resolve, 5_000)),
  ]);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  return {
    url: `http://${host}:${options.port}`,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      redis.disconnect();
    },
  };
}

class RequestError extends Error {}

function parseCommand(raw: unknown): string[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new RequestError('ERR a command is a non-empty JSON array');
  const command = raw.map((part) => {
    if (typeof part === 'string') return part;
    if (typeof part === 'number' || typeof part === 'boolean') return String(part);
    throw new RequestError('ERR command arguments must be strings or numbers');
  });
  if (REFUSED.has(command[0]!.toUpperCase())) {
    throw new RequestError(`ERR ${command[0]} is not supported over REST`);
  }
  return command;
}

function parseCommands(raw: unknown): string[][] {
  if (!Array.isArray(raw) || raw.length === 0) throw new RequestError('ERR a pipeline is a non-empty JSON array of commands');
  return raw.map(parseCommand);
}

function encode(reply: Reply, base64: boolean): Encoded {
  if (reply === null || typeof reply === 'number') return reply;
  if (Array.isArray(reply)) return reply.map((r) => encode(r, base64));
  const buffer = Buffer.isBuffer(reply) ? reply : Buffer.from(reply);
  if (!base64) return buffer.toString('utf8');
  return buffer.length === 2 && buffer.toString() === 'OK' ? 'OK' : buffer.toString('base64');
}

function isConnectionError(error: Error): boolean {
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|enableOfflineQueue/i.test(error.message);
}

function sendRedisError(res: ServerResponse, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  if (isConnectionError(e)) send(res, 503, { error: `Redis is unavailable: ${e.message}` });
  else send(res, 400, { error: e.message });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** `node --import tsx localstack/upstash-gateway.ts`: run on its own (used by npm start). */
if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env;
  const gateway = await startGateway({
    port: Number(env.GATEWAY_PORT ?? 8079),
    redisPort: Number(env.REDIS_PORT ?? 6380),
    token: env.UPSTASH_REDIS_REST_TOKEN ?? 'local-upstash-token',
  });
  console.log(`upstash-gateway listening on ${gateway.url}`);
  const stop = () => void gateway.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
