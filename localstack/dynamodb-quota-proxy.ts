/**
 * A quota-faithful DynamoDB in front of DynamoDB Local: an HTTP proxy that accounts the read and write
 * units of every data-plane call per partition key value, for each table and each global secondary index,
 * by AWS's rules, and (given limits) throttles a partition that goes over them exactly as DynamoDB
 * answers. It also plays the faults a chaos run needs: an outage (every call fails, nothing changes) and
 * added latency. The rules, their sources and what is not emulated: docs/quota-emulation.md.
 *
 * Off unless started: in-process with startDynamoQuotaProxy, or on its own:
 *
 *   TARGET=http://127.0.0.1:8000 PORT=8001 SCALE=100 node --import tsx localstack/dynamodb-quota-proxy.ts
 *
 * (or WRITE_UNITS_PER_SECOND / READ_UNITS_PER_SECOND / BURST_SECONDS instead of SCALE; LATENCY_MS).
 * Paths DynamoDB does not use drive it from another process:
 *
 *   GET  /_fcfs/stats     what every table, index and partition consumed and how often it was throttled
 *   POST /_fcfs/reset     forget the counts, refill every partition
 *   POST /_fcfs/outage    {"on": true | false}
 *   POST /_fcfs/latency   {"ms": 50}
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Backend, type BackendReply } from './dynamodb-quota/backend.js';
import type { Charge } from './dynamodb-quota/capacity.js';
import { accountedOperation, type Operation } from './dynamodb-quota/operations.js';
import { PartitionLedger, type PartitionLimits, type ResourceStats } from './dynamodb-quota/partitions.js';
import { internalServerError, throttledOperation, throttledTransaction, type ProxyReply } from './dynamodb-quota/responses.js';
import { schemaFromDescription, type TableSchema } from './dynamodb-quota/table-schema.js';

export type { PartitionLimits, PartitionStats, ResourceStats } from './dynamodb-quota/partitions.js';

/**
 * DynamoDB's per-partition maximum: "each partition ... 3,000 read units per second and 1,000 write
 * units per second" (developer guide, bp-partition-key-design; throttling-key-range-limit-exceeded).
 */
export const DYNAMODB_PARTITION_LIMITS = { writeUnitsPerSecond: 1_000, readUnitsPerSecond: 3_000 } as const;

/**
 * The partition limits divided by one scale factor, so that a 2-core machine, which cannot send 1,000
 * writes a second to one key, still shows where a hot key throttles: at scale 100, 10 write units and
 * 30 read units per second per partition key value.
 */
export function scaledDynamoLimits(scale: number): Required<Pick<PartitionLimits, 'writeUnitsPerSecond' | 'readUnitsPerSecond'>> {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`the scale factor must be a positive number, got ${scale}`);
  return {
    writeUnitsPerSecond: DYNAMODB_PARTITION_LIMITS.writeUnitsPerSecond / scale,
    readUnitsPerSecond: DYNAMODB_PARTITION_LIMITS.readUnitsPerSecond / scale,
  };
}

export interface DynamoQuotaProxyOptions {
  /** DynamoDB Local's URL. */
  readonly target: string;
  readonly port?: number;
  readonly host?: string;
  /** Per partition key value; undefined: accounting only, nothing is throttled. */
  readonly limits?: PartitionLimits;
  /** Added to every call before it is handled. */
  readonly latencyMs?: number;
  /** Milliseconds now (tests freeze time with it); default Date.now. */
  readonly clock?: () => number;
}

export interface QuotaStats {
  readonly limits: PartitionLimits | undefined;
  /** Accounted calls (throttled ones included). */
  readonly requests: number;
  readonly throttledRequests: number;
  /** Calls an outage failed. */
  readonly outageFailures: number;
  /** Calls whose connection the proxy reset because it could not complete them (DynamoDB unreachable). */
  readonly unanswered: number;
  /** One entry per table and per index that consumed units or was throttled. */
  readonly resources: readonly ResourceStats[];
}

export interface DynamoQuotaProxy {
  readonly url: string;
  stats(): QuotaStats;
  reset(): void;
  /** While on, every call fails as in a DynamoDB outage (a 500 or a reset connection) and changes nothing. */
  setOutage(on: boolean): void;
  setLatency(ms: number): void;
  close(): Promise<void>;
}

const CONTROL_PREFIX = '/_fcfs/';
const TARGET_PREFIX = 'DynamoDB_20120810.';
const SCHEMA_CHANGES = new Set(['CreateTable', 'DeleteTable', 'UpdateTable']);

export async function startDynamoQuotaProxy(options: DynamoQuotaProxyOptions): Promise<DynamoQuotaProxy> {
  const backend = new Backend(options.target);
  const ledger = new PartitionLedger(options.limits, options.clock ?? Date.now);
  const locks = new ItemLocks();
  const schemas = new Map<string, Promise<TableSchema | undefined>>();
  let outage = false;
  let latencyMs = options.latencyMs ?? 0;
  const counts = { requests: 0, throttledRequests: 0, outageFailures: 0, unanswered: 0 };

  const schema = (name: string): Promise<TableSchema | undefined> => {
    let known = schemas.get(name);
    if (!known) {
      known = backend.describeTable(name).then((table) => (table ? schemaFromDescription(table as never) : undefined));
      known.catch(() => schemas.delete(name));
      schemas.set(name, known);
    }
    return known;
  };

  const stats = (): QuotaStats => ({ limits: options.limits, ...counts, resources: ledger.stats() });
  const reset = () => {
    ledger.reset();
    Object.assign(counts, { requests: 0, throttledRequests: 0, outageFailures: 0, unanswered: 0 });
  };

  const server: Server = createServer((req, res) => {
    // DynamoDB unreachable (or a bug of ours): the client sees a reset connection, as from a dead endpoint.
    handle(req, res).catch(() => {
      counts.unanswered += 1;
      res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readAll(req);
    if (req.url?.startsWith(CONTROL_PREFIX)) return control(req.method ?? 'GET', req.url.slice(CONTROL_PREFIX.length), body, res);
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    if (outage) {
      counts.outageFailures += 1;
      // Half the calls get a 500, half lose their connection: both faults of a real outage.
      if (counts.outageFailures % 2 === 0) return void res.destroy();
      return send(res, internalServerError());
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    const operationName = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '';
    const forward = (payload: unknown) =>
      backend.forward(req.method ?? 'POST', req.url ?? '/', req.headers, payload === parsed ? body : Buffer.from(JSON.stringify(payload)));
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    if (SCHEMA_CHANGES.has(operationName) && typeof parsed?.TableName === 'string') schemas.delete(parsed.TableName);
    const operation = parsed ? await accountedOperation(operationName, parsed, { backend, schema, forward }) : undefined;
    if (!operation) return send(res, await backend.forward(req.method ?? 'POST', req.url ?? '/', req.headers, body));
    counts.requests += 1;
    send(res, await run(operation));
  }

  async function run(operation: Operation): Promise<BackendReply | ProxyReply> {
    const release = await locks.acquire(operation.itemIds);
    try {
      await operation.prepare();
      const estimates = operation.estimates();
      const admitted = estimates.map(() => true);
      let refused: Charge[];
      if (operation.admission === 'batch') {
        // DynamoDB takes a batch item by item: each is admitted on its own; the rest goes back unprocessed.
        refused = estimates.flatMap((charges, i) => {
          const short = ledger.admit(charges);
          if (short.length > 0) admitted[i] = false;
          return short;
        });
      } else {
        refused = ledger.admit(estimates.flat());
      }
      if (refused.length > 0) ledger.throttled(refused);
      if (refused.length > 0 && !(operation.admission === 'batch' && admitted.includes(true))) {
        counts.throttledRequests += 1;
        if (operation.admission !== 'transaction') return throttledOperation(refused);
        const short = new Set(refused);
        return throttledTransaction(estimates.map((charges) => charges.filter((charge) => short.has(charge))));
      }
      const reserved: Charge[] = estimates.filter((_, i) => admitted[i]).flat();
      let consumed: readonly Charge[] = [];
      try {
        const outcome = await operation.execute(admitted);
        consumed = outcome.consumed;
        return outcome.reply;
      } finally {
        ledger.settle(reserved, consumed);
      }
    } finally {
      release();
    }
  }

  function control(method: string, path: string, body: Buffer, res: ServerResponse): void {
    const json = (status: number, value: unknown) => send(res, { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });
    let input: Record<string, unknown> = {};
    try {
      input = body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    } catch {
      json(400, { error: 'the body is not JSON' });
      return;
    }
    if (method === 'GET' && path === 'stats') {
      json(200, stats());
    } else if (method === 'POST' && path === 'reset') {
      reset();
      json(200, { reset: true });
    } else if (method === 'POST' && path === 'outage' && typeof input.on === 'boolean') {
      outage = input.on;
      json(200, { outage });
    } else if (method === 'POST' && path === 'latency' && typeof input.ms === 'number' && input.ms >= 0) {
      latencyMs = input.ms;
      json(200, { latencyMs });
    } else {
      json(404, { error: `no ${method} /_fcfs/${path} (stats, reset, outage {on}, latency {ms})` });
    }
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    stats,
    reset,
    setOutage: (on) => {
      outage = on;
    },
    setLatency: (ms) => {
      latencyMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        backend.close();
      }),
  };
}

/**
 * Writes to one item wait for each other inside the proxy, so that the item read before a write and the
 * one read after it bracket exactly that write. Locks are taken in one order, so two writes never wait
 * for each other's second item.
 */
class ItemLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async acquire(ids: readonly string[]): Promise<() => void> {
    const releases: (() => void)[] = [];
    for (const id of [...new Set(ids)].sort()) {
      const previous = this.tails.get(id) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((resolve) => (release = resolve));
      const tail = previous.then(() => mine);
      this.tails.set(id, tail);
      await previous;
      releases.push(() => {
        release();
        if (this.tails.get(id) === tail) this.tails.delete(id);
      });
    }
    return () => {
      for (const release of releases) release();
    };
  }
}

function send(res: ServerResponse, reply: BackendReply | ProxyReply): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(reply.headers)) {
    if (value === undefined || ['content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(name.toLowerCase())) continue;
    headers[name] = value;
  }
  const body = typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body;
  res.writeHead(reply.status, { ...headers, 'content-length': String(body.length) });
  res.end(body);
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** `node --import tsx localstack/dynamodb-quota-proxy.ts`: run on its own (TARGET, PORT, SCALE or the units). */
if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env;
  const number = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : Number(env[name]));
  if (!env.TARGET) {
    console.error('TARGET is required: the URL of DynamoDB Local, e.g. TARGET=http://127.0.0.1:8000');
    process.exit(2);
  }
  const scale = number('SCALE');
  const limits: PartitionLimits | undefined =
    scale !== undefined
      ? { ...scaledDynamoLimits(scale), burstSeconds: number('BURST_SECONDS') }
      : number('WRITE_UNITS_PER_SECOND') !== undefined || number('READ_UNITS_PER_SECOND') !== undefined
        ? { writeUnitsPerSecond: number('WRITE_UNITS_PER_SECOND'), readUnitsPerSecond: number('READ_UNITS_PER_SECOND'), burstSeconds: number('BURST_SECONDS') }
        : undefined;
  const proxy = await startDynamoQuotaProxy({ target: env.TARGET, port: number('PORT') ?? 8001, limits, latencyMs: number('LATENCY_MS') });
  console.log(`dynamodb-quota-proxy on ${proxy.url} -> ${env.TARGET}, limits per partition: ${limits ? JSON.stringify(limits) : 'none (accounting only)'}`);
  const stop = () => void proxy.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
