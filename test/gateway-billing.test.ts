/**
 * The gateway bills as Upstash bills (docs/local-upstash.md): every command, each command of a pipeline
 * or transaction, a script as EVAL/EVALSHA plus every redis.call and redis.pcall it made; and caps a
 * database's commands per second as Upstash does, by making requests wait rather than fail.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Redis as IORedis } from 'ioredis';
import { freePort, PROJECT_ROOT, startRedis, stopChild, waitForPort, type Spawned } from '../localstack/processes.js';
import { startGateway, type Gateway, type GatewayOptions } from '../localstack/upstash-gateway.js';

const TOKEN = 'billing-token';

describe('billed commands, as Upstash bills them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-gw-billing-'));
  let redisServer: Spawned;
  let redisPort: number;
  let gateway: Gateway;
  const started: Gateway[] = [];
  let n = 0;
  const key = () => `bill-${++n}`;

  const start = async (options: Partial<GatewayOptions> = {}) => {
    const g = await startGateway({ port: await freePort(), redisPort, token: TOKEN, ...options });
    started.push(g);
    return g;
  };
  const post = async (path: string, body: unknown, on: Gateway = gateway) => {
    const response = await fetch(`${on.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as { result?: unknown; error?: string } };
  };

  beforeAll(async () => {
    redisPort = await freePort();
    redisServer = await startRedis({ port: redisPort, dataDir: dir, durable: false });
    gateway = await start();
  });
  afterAll(async () => {
    for (const g of started) await g.close();
    await stopChild(redisServer);
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => gateway.resetBilling());

  it('bills a command once, and not the operational commands Upstash does not charge (PING, INFO)', async () => {
    await post('/', ['SET', key(), 'v']);
    await post('/', ['PING']);
    await post('/', ['INFO', 'server']);
    expect(gateway.billing()).toMatchObject({ commands: 1, requests: 3, byCommand: { SET: 1 }, scriptCalls: 0 });
  });

  it('bills a script as its EVAL plus each redis.call and redis.pcall it made: 3 calls and 1 pcall are 5 commands', async () => {
    const script = `
      redis.call('SET', KEYS[1], '1')
      redis.call('INCR', KEYS[1])
      redis.pcall('HGET', KEYS[1], 'not-a-hash')
      return redis.call('GET', KEYS[1])`;
    expect(await post('/', ['EVAL', script, '1', key()])).toEqual({ status: 200, body: { result: '2' } });
    expect(gateway.billing()).toMatchObject({ commands: 5, byCommand: { EVAL: 1 }, scriptCalls: 4 });
    const sha = (await post('/', ['SCRIPT', 'LOAD', script])).body.result;
    gateway.resetBilling();
    expect(await post('/', ['EVALSHA', sha, '1', key()])).toEqual({ status: 200, body: { result: '2' } });
    expect(gateway.billing()).toMatchObject({ commands: 5, byCommand: { EVALSHA: 1 }, scriptCalls: 4 });
  });

  it("bills each command of a pipeline of 3 and of a transaction of 3, a script's calls inside them too", async () => {
    const k = key();
    await post('/pipeline', [
      ['SET', k, '1'],
      ['INCR', k],
      ['GET', k],
    ]);
    expect(gateway.billing()).toMatchObject({ commands: 3, requests: 1 });
    gateway.resetBilling();
    await post('/multi-exec', [
      ['SET', k, '1'],
      ['INCR', k],
      ['GET', k],
    ]);
    expect(gateway.billing()).toMatchObject({ commands: 3, requests: 1 });
    gateway.resetBilling();
    await post('/multi-exec', [
      ['INCR', k],
      ['EVAL', "redis.call('INCR', KEYS[1]) return redis.call('GET', KEYS[1])", '1', k],
    ]);
    expect(gateway.billing()).toMatchObject({ commands: 4, scriptCalls: 2 });
  });

  it('bills an EVALSHA that missed (NOSCRIPT) as one command, then the EVAL that follows with its calls', async () => {
    const script = "redis.call('SET', KEYS[1], 'a') return redis.call('GET', KEYS[1])";
    const sha = '0123456789abcdef0123456789abcdef01234567';
    expect((await post('/', ['EVALSHA', sha, '1', key()])).body.error).toMatch(/^NOSCRIPT/);
    await post('/', ['EVAL', script, '1', key()]);
    expect(gateway.billing()).toMatchObject({ commands: 4, byCommand: { EVALSHA: 1, EVAL: 1 }, scriptCalls: 2 });
  });

  it('bills the calls a script made before it failed, whose writes stay', async () => {
    const k = key();
    const failing = await post('/', ['EVAL', "redis.call('SET', KEYS[1], 'kept') redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1], 'never')", '1', k]);
    expect(failing.status).toBe(400);
    expect(failing.body.error).toMatch(/^ERR value is not an integer or out of range script: [0-9a-f]{40}, on @user_script:1\.$/);
    expect(gateway.billing()).toMatchObject({ commands: 3, scriptCalls: 2 });
    expect((await post('/', ['GET', k])).body.result).toBe('kept');
  });

  it('bills nothing for what Upstash refuses nor for a transaction discarded as a whole', async () => {
    await post('/', ['CONFIG', 'SET', 'maxmemory', '1']);
    await post('/', ['NOSUCHCOMMAND']);
    await post('/multi-exec', [
      ['SET', key(), '1'],
      ['BLPOP', 'k', '0'],
    ]);
    await post('/multi-exec', [['SET', key(), '1'], ['GET']]);
    await post('/pipeline', [['SET', key(), '1'], ['SHUTDOWN']]);
    expect(gateway.billing()).toMatchObject({ commands: 1, requests: 5, byCommand: { SET: 1 } });
  });

  it("keeps each database's bill apart: two gateways in one process count on their own", async () => {
    const other = await start();
    await post('/', ['SET', key(), 'v'], other);
    await post(
      '/pipeline',
      [
        ['GET', key()],
        ['GET', key()],
      ],
      other,
    );
    await post('/', ['SET', key(), 'v']);
    expect(other.billing()).toMatchObject({ commands: 3, requests: 2 });
    expect(gateway.billing()).toMatchObject({ commands: 1, requests: 1 });
  });

  it('counts every run of a script exactly while many run at once', async () => {
    const script = 'for i = 1, tonumber(ARGV[1]) do redis.call("INCR", KEYS[1]) end return 0';
    const runs = Array.from({ length: 40 }, (_, i) => i % 5);
    await Promise.all(runs.map((calls) => post('/', ['EVAL', script, '1', key(), String(calls)])));
    const calls = runs.reduce((a, b) => a + b, 0);
    expect(gateway.billing()).toMatchObject({ commands: runs.length + calls, scriptCalls: calls });
  });

  it('serves the bill over HTTP to the standard token only, and resets it', async () => {
    const withReadOnly = await start({ readOnlyToken: 'read-only' });
    await post('/', ['SET', key(), 'v'], withReadOnly);
    const url = `${withReadOnly.url}/_fcfs/billing`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer read-only' } })).status).toBe(401);
    const bill = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await bill.json()).toEqual(withReadOnly.billing());
    expect(withReadOnly.billing()).toMatchObject({ commands: 1, requests: 1 });
    const reset = await fetch(`${url}/reset`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await reset.json()).toMatchObject({ commands: 0, requests: 0 });
    expect(withReadOnly.billing()).toMatchObject({ commands: 0 });
  });

  describe('a commands-per-second cap', () => {
    it('makes requests over the cap wait, and every one of them succeeds', async () => {
      const capped = await start({ commandsPerSecond: 50 });
      const k = key();
      const replies = await Promise.all(Array.from({ length: 120 }, () => post('/', ['INCR', k], capped)));
      expect(replies.every((r) => r.status === 200)).toBe(true);
      expect(replies.map((r) => Number(r.body.result)).sort((a, b) => a - b)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
      const bill = capped.billing();
      expect(bill.commands).toBe(120);
      expect(bill.throttledRequests).toBeGreaterThan(0);
      expect(bill.throttledMs).toBeGreaterThan(0);
    });

    it("charges a script's calls after it ran, so the next request waits for them", async () => {
      const capped = await start({ commandsPerSecond: 100 });
      const direct = new IORedis({ port: redisPort });
      try {
        const k = key();
        const heavy = await post('/', ['EVAL', 'for i = 1, 150 do redis.call("INCR", KEYS[1]) end return redis.call("GET", KEYS[1])', '1', k], capped);
        expect(heavy).toEqual({ status: 200, body: { result: '150' } });
        expect(capped.billing()).toMatchObject({ commands: 152, throttledRequests: 0 });
        expect(await post('/', ['INCR', k], capped)).toEqual({ status: 200, body: { result: 151 } });
        expect(capped.billing().throttledRequests).toBe(1);
        expect(capped.billing().throttledMs).toBeGreaterThan(0);
        expect(await direct.get(k)).toBe('151');
      } finally {
        direct.disconnect();
      }
    });

    it('is off unless configured: the same burst waits for nothing', async () => {
      const k = key();
      await Promise.all(Array.from({ length: 120 }, () => post('/', ['INCR', k])));
      expect(gateway.billing()).toMatchObject({ commands: 120, throttledRequests: 0, throttledMs: 0 });
    });
  });

  describe('the standalone gateway (npm start)', () => {
    const entry = ['--import', 'tsx', 'localstack/upstash-gateway.ts'];
    const env = (extra: Record<string, string>) => ({ ...process.env, REDIS_PORT: String(redisPort), UPSTASH_REDIS_REST_TOKEN: TOKEN, ...extra });

    it('refuses to start with a cap that is not a positive number, saying which setting', async () => {
      const port = String(await freePort());
      const run = spawnSync(process.execPath, entry, {
        cwd: PROJECT_ROOT,
        env: env({ GATEWAY_PORT: port, GATEWAY_COMMANDS_PER_SECOND: 'fast' }),
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('GATEWAY_COMMANDS_PER_SECOND must be a positive number');
    });

    it('reads its commands-per-second cap and read-only token from the environment', async () => {
      const port = await freePort();
      const child = spawn(process.execPath, entry, {
        cwd: PROJECT_ROOT,
        env: env({ GATEWAY_PORT: String(port), GATEWAY_COMMANDS_PER_SECOND: '20', GATEWAY_READ_ONLY_TOKEN: 'standalone-read-only' }),
        stdio: 'ignore',
      });
      const spawned: Spawned = { child, name: 'upstash-gateway', logFile: undefined };
      try {
        await waitForPort(port, 'the standalone gateway', child, 60_000);
        const url = `http://127.0.0.1:${port}`;
        const k = key();
        const send = (body: unknown, token = TOKEN) =>
          fetch(`${url}/`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
        expect((await send(['SET', k, 'v'], 'standalone-read-only')).status).toBe(400);
        expect(await (await send(['GET', k], 'standalone-read-only')).json()).toEqual({ result: null });
        const replies = await Promise.all(Array.from({ length: 40 }, () => send(['INCR', k])));
        expect(replies.every((r) => r.status === 200)).toBe(true);
        const bill = (await (await fetch(`${url}/_fcfs/billing`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
          commands: number;
          throttledRequests: number;
        };
        expect(bill.commands).toBe(41);
        expect(bill.throttledRequests).toBeGreaterThan(0);
      } finally {
        await stopChild(spawned);
      }
    });
  });
});
