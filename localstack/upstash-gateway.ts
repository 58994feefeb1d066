/**
 * A local stand-in for one Upstash Redis database's REST API, in front of a real redis-server, answering
 * as Upstash documents it (docs/local-upstash.md: what is emulated, what is not, and the sources):
 *
 *   POST /                   body ["CMD", "arg", ...]                 -> {"result": ...} | {"error": "..."}
 *   POST /pipeline           body [["CMD", ...], ...]                 -> [{"result"}|{"error"}, ...]
 *   POST /multi-exec         body [["CMD", ...], ...] (MULTI/EXEC)    -> [{"result"}|{"error"}, ...] | {"error"}
 *   GET|POST|PUT|HEAD /cmd/arg/…?OPT=value   path-style; a POST or PUT body is the next argument, then
 *                            the query's options (EX=100 -> "EX", "100")
 *   POST /subscribe/<channel>, /psubscribe/<pattern>   Server-Sent Events (gateway/streams.ts)
 *   GET /_fcfs/billing, POST /_fcfs/billing/reset       this database's bill (not Upstash's API)
 *
 * Auth: `Authorization: Bearer <token>` or `?_token=`, else 401; an optional read-only token runs read
 * commands only. Other methods than HEAD, GET, POST, PUT answer 405. `Upstash-Encoding: base64` encodes
 * every string of a result in base64 except a bare top-level "OK". Integers are exact.
 *
 * Every command is billed as Upstash bills it (gateway/execution.ts), and with `commandsPerSecond` the
 * database is capped as Upstash caps it: requests over the budget wait, none fails.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { Bill, CommandBudget, type BillingSnapshot } from './gateway/billing.js';
import { refusal } from './gateway/commands.js';
import { runCommand, runPipeline, runTransaction, type Answer, type Database } from './gateway/execution.js';
import { connect } from './gateway/redis-link.js';
import { errorBody } from './gateway/reply.js';
import { ScriptCache } from './gateway/scripts.js';
import { subscribe } from './gateway/streams.js';

export interface GatewayOptions {
  readonly port: number;
  readonly host?: string;
  readonly redisHost?: string;
  readonly redisPort: number;
  readonly token: string;
  /** A second token that may run read commands only (Upstash's "Read Only" token). */
  readonly readOnlyToken?: string;
  /** The database's cap; requests over it wait (undefined: no cap). */
  readonly commandsPerSecond?: number;
}

export interface Gateway {
  readonly url: string;
  /** What this database has billed since it started or was last reset. */
  billing(): BillingSnapshot;
  resetBilling(): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;
const METHODS = new Set(['HEAD', 'GET', 'POST', 'PUT']);
const BILLING_PATH = '/_fcfs/billing';

type Access = 'full' | 'read';

class RequestError extends Error {}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? '127.0.0.1';
  const redisHost = options.redisHost ?? '127.0.0.1';
  if (options.commandsPerSecond !== undefined && !(options.commandsPerSecond > 0)) {
    throw new RangeError(`commandsPerSecond must be a positive number, not ${options.commandsPerSecond}`);
  }
  const redis = connect(redisHost, options.redisPort);
  redis.on('error', () => {
    /* reconnects by itself; every request meanwhile answers 503 */
  });
  const db: Database = {
    redis,
    scripts: new ScriptCache(),
    bill: new Bill(),
    budget: options.commandsPerSecond === undefined ? undefined : new CommandBudget(options.commandsPerSecond),
  };
  const fullToken = Buffer.from(`Bearer ${options.token}`);
  const readToken = options.readOnlyToken === undefined ? undefined : Buffer.from(`Bearer ${options.readOnlyToken}`);

  function access(req: IncomingMessage, query: URLSearchParams | undefined): Access | undefined {
    const header = req.headers.authorization ?? (query?.has('_token') ? `Bearer ${query.get('_token')}` : '');
    const given = Buffer.from(header);
    if (given.length === fullToken.length && timingSafeEqual(given, fullToken)) return 'full';
    if (readToken && given.length === readToken.length && timingSafeEqual(given, readToken)) return 'read';
    return undefined;
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      console.error('upstash-gateway: request failed', error);
      reply(res, { status: 500, body: errorBody('ERR the local gateway failed to handle the request') });
    });
  });
  server.keepAliveTimeout = 65_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!METHODS.has(req.method ?? '')) {
      req.resume();
      return reply(res, { status: 405, body: errorBody(`ERR method ${req.method} is not allowed: use HEAD, GET, POST or PUT`) });
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = (q < 0 ? url : url.slice(0, q)).replace(/\/+$/, '');
    const query = q < 0 ? undefined : new URLSearchParams(url.slice(q + 1));
    const who = access(req, query);
    if (!who) {
      req.resume();
      return reply(res, { status: 401, body: errorBody('Unauthorized') });
    }
    const body = await readBody(req);
    if (body === undefined) return reply(res, { status: 413, body: errorBody('ERR max request size exceeded') });
    if (path === BILLING_PATH || path === `${BILLING_PATH}/reset`) return billing(res, req, path, who);
    const format = String(req.headers['upstash-response-format'] ?? 'json').toLowerCase();
    if (format !== 'json') {
      return reply(res, {
        status: 400,
        body: errorBody(
          format === 'resp2' ? 'ERR the local gateway does not emulate Upstash-Response-Format: resp2' : `ERR invalid response format: ${format}`,
        ),
      });
    }
    if (redis.status !== 'ready') return reply(res, { status: 503, body: errorBody('Redis is unavailable: connection not ready') });
    const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
    const readOnly = who === 'read';
    db.bill.request();
    try {
      if (path === '') return reply(res, await runCommand(db, parseCommand(parseJson(body)), readOnly, base64));
      if (path === '/pipeline') return reply(res, await runPipeline(db, parseCommands(parseJson(body)), readOnly, base64));
      if (path === '/multi-exec') return reply(res, await runTransaction(db, parseCommands(parseJson(body)), readOnly, base64));
      const segments = decodeSegments(path);
      if (segments[0] === 'subscribe' || segments[0] === 'psubscribe') return await stream(res, segments, readOnly);
      if ((req.method === 'POST' || req.method === 'PUT') && body.length > 0) segments.push(body.toString('utf8'));
      for (const [option, value] of query ?? []) {
        if (option === '_token') continue;
        segments.push(option);
        if (value !== '') segments.push(value);
      }
      return reply(res, await runCommand(db, parseCommand(segments), readOnly, base64));
    } catch (error) {
      if (error instanceof RequestError) return reply(res, { status: 400, body: errorBody(error.message) });
      throw error;
    }
  }

  async function stream(res: ServerResponse, segments: string[], readOnly: boolean): Promise<void> {
    const kind = segments[0] as 'subscribe' | 'psubscribe';
    const targets = segments.slice(1);
    if (targets.length === 0) return reply(res, { status: 400, body: errorBody(`ERR wrong number of arguments for '${kind}' command`) });
    if (readOnly) return reply(res, { status: 400, body: errorBody(refusal(kind.toUpperCase(), targets, true)!.error) });
    if (db.budget) {
      const waited = await db.budget.take(targets.length);
      if (waited > 0) db.bill.waited(waited);
    }
    db.bill.command(kind.toUpperCase(), targets.length);
    await subscribe(res, { host: redisHost, port: options.redisPort }, kind, targets);
  }

  function billing(res: ServerResponse, req: IncomingMessage, path: string, who: Access): void {
    if (who !== 'full') {
      reply(res, { status: 401, body: errorBody('Unauthorized') });
    } else if (path.endsWith('/reset') && req.method !== 'POST') {
      reply(res, { status: 405, body: errorBody('ERR use POST to reset the bill') });
    } else {
      if (path.endsWith('/reset')) db.bill.reset();
      reply(res, { status: 200, body: JSON.stringify(db.bill.snapshot()) });
    }
  }

  // Give Redis a moment to accept the connection, so the first request is not answered 503 needlessly;
  // a Redis that is down still lets the gateway start (it answers 503 until Redis is back).
  await Promise.race([new Promise((resolve) => redis.once('ready', resolve)), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  return {
    url: `http://${host}:${options.port}`,
    billing: () => db.bill.snapshot(),
    resetBilling: () => db.bill.reset(),
    close: async () => {
      db.budget?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      redis.disconnect();
    },
  };
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new RequestError('ERR the request body is not valid JSON');
  }
}

function parseCommand(raw: unknown): string[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new RequestError('ERR a command is a non-empty JSON array');
  return raw.map((part) => {
    if (typeof part === 'string') return part;
    if (typeof part === 'number' || typeof part === 'boolean') return String(part);
    throw new RequestError('ERR command arguments must be strings or numbers');
  });
}

function parseCommands(raw: unknown): string[][] {
  if (!Array.isArray(raw) || raw.length === 0) throw new RequestError('ERR a pipeline is a non-empty JSON array of commands');
  return raw.map(parseCommand);
}

function decodeSegments(path: string): string[] {
  try {
    return path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw new RequestError('ERR the request path is not valid percent-encoding');
  }
}

function reply(res: ServerResponse, answer: Answer): void {
  if (res.headersSent) return;
  res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer.body) });
  res.end(answer.body);
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
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A positive number from the environment, or undefined when unset; anything else stops the start. */
function positiveNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new RangeError(`${name} must be a positive number of commands per second, not "${value}"`);
  return n;
}

/** `node --import tsx localstack/upstash-gateway.ts`: run on its own (used by npm start). */
if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env;
  const gateway = await startGateway({
    port: Number(env.GATEWAY_PORT ?? 8079),
    redisPort: Number(env.REDIS_PORT ?? 6380),
    token: env.UPSTASH_REDIS_REST_TOKEN ?? 'local-upstash-token',
    readOnlyToken: env.GATEWAY_READ_ONLY_TOKEN || undefined,
    commandsPerSecond: positiveNumber('GATEWAY_COMMANDS_PER_SECOND', env.GATEWAY_COMMANDS_PER_SECOND),
  });
  const cap = env.GATEWAY_COMMANDS_PER_SECOND ? `, capped at ${env.GATEWAY_COMMANDS_PER_SECOND} commands/s` : '';
  console.log(`upstash-gateway listening on ${gateway.url}${cap}${env.GATEWAY_READ_ONLY_TOKEN ? ', with a read-only token' : ''}`);
  const stop = () => void gateway.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
