import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCoupon } from '../lib/coupons/campaigns.js';
import { assertPortFree, freePort, PROJECT_ROOT, StackError } from '../localstack/processes.js';
import { reconcileAfterUncleanStop } from '../localstack/recover.js';
import { startStack, type Stack } from '../localstack/stack.js';
import { Ledger } from '../lib/ledger/ledger.js';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { services, testDeps, uniqueCouponId } from './support/deps.js';

describe('the local stack', () => {
  it('refuses a taken port with one clear sentence naming the variable that moves it', async () => {
    const port = await freePort();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', () => resolve()));
    try {
      const refusal = assertPortFree(port, 'DynamoDB Local', 'DYNAMODB_PORT');
      await expect(refusal).rejects.toThrow(StackError);
      await expect(refusal).rejects.toThrow(`Port ${port} (DynamoDB Local) is already in use: stop what holds it or set DYNAMODB_PORT to a free port.`);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    await expect(assertPortFree(port, 'DynamoDB Local', 'DYNAMODB_PORT')).resolves.toBeUndefined();
  });

  it('npm start refuses a bad handler setting with one sentence, before starting anything', () => {
    const { start, dataDir } = npmStart({ DRAIN_BATCH_SIZE: '100' });
    expect(start.status).toBe(1);
    expect(start.stderr.trim()).toBe('fcfs-coupons: DRAIN_BATCH_SIZE must be an integer in 1..99, got "100".');
    expect(existsSync(dataDir)).toBe(false);
  });

  it("npm start refuses settings that contradict each other or the functions' timeouts with one sentence, before starting anything", () => {
    const refusals: [Record<string, string>, string][] = [
      [
        { DRAIN_STOP_BEFORE_TIMEOUT_MS: '120000' },
        'fcfs-coupons: DRAIN_STOP_BEFORE_TIMEOUT_MS (120000) must leave the drain at least a second of its 120 s timeout, or every drain stops before its first claim and persists nothing.',
      ],
      [
        // Locally: 2 attempts of 10 s and a pause of at most 1 s.
        { DRAIN_CLAIM_LEASE_MS: '20000' },
        "fcfs-coupons: DRAIN_CLAIM_LEASE_MS (20000) must be longer than one ledger write can take (21,000 ms: LEDGER_ATTEMPTS × LEDGER_REQUEST_TIMEOUT_MS + the SDK's pauses), or a batch still being written is claimed and written again by another drain.",
      ],
    ];
    for (const [settings, sentence] of refusals) {
      const { start, dataDir } = npmStart(settings);
      expect(start.status).toBe(1);
      expect(start.stderr.trim()).toBe(sentence);
      expect(existsSync(dataDir)).toBe(false);
    }
  });

  it('npm start refuses a bad number of shards or quota scale with one sentence, before starting anything', () => {
    const refusals: [string[], Record<string, string>, string][] = [
      [['--shards', '0'], {}, 'fcfs-coupons: --shards must be a whole number of Upstash databases from 1 to 32, got "0".'],
      [['--shards', 'two'], {}, 'fcfs-coupons: --shards must be a whole number of Upstash databases from 1 to 32, got "two".'],
      [['--shards', '33'], {}, 'fcfs-coupons: --shards must be a whole number of Upstash databases from 1 to 32, got "33".'],
      [
        ['--shards', '2'],
        { UPSTASH_REDIS_REST_URL: 'https://example.upstash.io', UPSTASH_REDIS_REST_TOKEN: 't' },
        'fcfs-coupons: --shards starts local databases; with UPSTASH_REDIS_REST_URL set, list your databases there (comma-separated) instead.',
      ],
      [[], { QUOTA_SCALE: '0.5' }, 'fcfs-coupons: QUOTA_SCALE must be a number of at least 1 (the cloud\'s quotas are divided by it), got "0.5".'],
      [['--shard', '2'], {}, "fcfs-coupons: Unknown option '--shard'"],
    ];
    for (const [args, settings, sentence] of refusals) {
      const { start, dataDir } = npmStart(settings, undefined, args);
      expect(start.status).toBe(1);
      expect(start.stderr.split('\n')[0]).toBe(sentence);
      expect(existsSync(dataDir)).toBe(false);
    }
  });

  it('a stack of two Upstash databases (npm start -- --shards 2) issues a coupon over both and sells it out exactly, under emulated quotas', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fcfs-shards-'));
    const stack = await startStack({
      dataDir,
      ports: {
        api: await freePort(),
        lambda: await freePort(),
        dynamodb: await freePort(),
        gateway: await freePort(),
        redis: await freePort(),
        moreShards: [{ gateway: await freePort(), redis: await freePort() }],
        dynamodbProxy: await freePort(),
      },
      tableName: services().tableName,
      adminToken: 'shards-admin',
      upstashToken: 'shards-upstash',
      redisKeyPrefix: `shards-${Date.now().toString(36)}`,
      offline: true,
      offlineLog: join(dataDir, 'offline.log'),
      shards: 2,
      quotaScale: 10,
      externalDynamo: { endpoint: services().dynamodbEndpoint },
    });
    try {
      expect(stack.redisUrls).toHaveLength(2);
      expect(stack.env.UPSTASH_REDIS_REST_URL!.split(',')).toEqual(stack.redisUrls);
      expect(stack.env.DYNAMODB_ENDPOINT).toBe(stack.quotaProxyUrl);
      const couponId = uniqueCouponId('shards');
      const admin = { authorization: 'Bearer shards-admin', 'content-type': 'application/json' };
      const created = await fetch(`${stack.apiUrl}/api/v2/admin/coupons`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ couponId, name: 'two shards', totalQuantity: 20 }),
      });
      expect(created.status).toBe(201);
      const answers = await Promise.all(
        Array.from({ length: 60 }, async (_, i) => {
          const reply = await fetch(`${stack.apiUrl}/api/v2/users/user-${i}/coupons/${couponId}/issue`, { method: 'POST' });
          return { userId: `user-${i}`, status: reply.status, body: (await reply.json()) as { result?: string; error?: string } };
        }),
      );
      const winners = answers.filter((a) => a.body.result === 'ACCEPTED').map((a) => a.userId);
      expect(winners).toHaveLength(20);
      expect(answers.filter((a) => a.body.error === 'SOLD_OUT')).toHaveLength(40);
      // Both databases decided some of them.
      for (const url of stack.redisUrls) {
        const bill = (await (await fetch(`${url}/_fcfs/billing`, { headers: { authorization: 'Bearer shards-upstash' } })).json()) as {
          byCommand: Record<string, number>;
        };
        expect(bill.byCommand.EVALSHA ?? 0).toBeGreaterThan(0);
      }
      let view: { remaining: number; issued: number; queued: number; inflight: number; deadLettered: number } = {
        remaining: -1,
        issued: -1,
        queued: -1,
        inflight: -1,
        deadLettered: -1,
      };
      for (let i = 0; i < 120 && !(view.issued === 20 && view.queued + view.inflight === 0); i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        view = (await (await fetch(`${stack.apiUrl}/api/v2/admin/coupons/${couponId}`, { headers: admin })).json()) as typeof view;
      }
      expect(view).toMatchObject({ remaining: 0, issued: 20, queued: 0, inflight: 0, deadLettered: 0 });
      const ledger = new Ledger(createDynamo({ region: 'us-east-1', endpoint: services().dynamodbEndpoint }), services().tableName);
      const persisted: string[] = [];
      for await (const page of ledger.issuancesOf(couponId)) persisted.push(...page.map((issuance) => issuance.userId));
      expect(persisted.sort()).toEqual([...winners].sort());
      // The handlers wrote through the quota proxy, which accounted the ledger's writes.
      const stats = (await (await fetch(`${stack.quotaProxyUrl}/_fcfs/stats`)).json()) as { resources: { writeUnits: number }[] };
      expect(stats.resources.reduce((n, r) => n + r.writeUnits, 0)).toBeGreaterThan(0);
    } finally {
      await stack.stop();
    }
  }, 180_000);

  it('npm start refuses shard ports above 65535 with one sentence, before starting anything', () => {
    const { start, dataDir } = npmStart({ GATEWAY_PORT: 65_500 }, undefined, ['--shards', '2']);
    expect(start.status).toBe(1);
    expect(start.stderr.split('\n')[0]).toBe(
      'fcfs-coupons: shard 2 would need gateway port 65600, above 65535 (shard i uses REDIS_PORT + i and GATEWAY_PORT + 100 × i): lower GATEWAY_PORT or REDIS_PORT, or run fewer --shards.',
    );
    expect(existsSync(dataDir)).toBe(false);
  });

  it("npm start refuses a --shards other than the one DATA_DIR's state was made with (or an older start's redis-N folders tell), before starting anything", async () => {
    for (const [made, args, had, asked] of [
      [(dataDir: string) => writeFileSync(join(dataDir, 'shards'), '2\n'), [], 2, 1],
      [
        (dataDir: string) =>
          ['redis', 'redis-2', 'redis-3'].forEach((d) => {
            mkdirSync(join(dataDir, d));
          }),
        ['--shards', '2'],
        3,
        2,
      ],
    ] as const) {
      const dataDir = join(mkdtempSync(join(tmpdir(), 'fcfs-start-')), 'data');
      mkdirSync(dataDir);
      made(dataDir);
      const before = readdirSync(dataDir).sort();
      const { start } = npmStart(await freePorts(), undefined, [...args], dataDir);
      expect(start.status).toBe(1);
      expect(start.stderr.trim()).toBe(
        `fcfs-coupons: ${dataDir} holds the state of ${had} shards, not ${asked}: a coupon's units are split per shard, so start with --shards ${had}, or run npm run reset to begin again with ${asked}.`,
      );
      expect(readdirSync(dataDir).sort()).toEqual(before);
    }
  });

  it('npm start records its shards, says the seed coupon already exists on a restart, refuses other --shards then, and npm run reset wipes a multi-shard DATA_DIR', async () => {
    const ports = await freePorts();
    const dataDir = join(mkdtempSync(join(tmpdir(), 'fcfs-restart-')), 'data');
    try {
      const first = await runningStart(ports, dataDir, ['--shards', '2']);
      expect(first.output).toContain('Seed               coupon 1 created with 10000 units');
      await first.stop();
      expect(readFileSync(join(dataDir, 'shards'), 'utf8').trim()).toBe('2');

      const fewer = npmStart(ports, undefined, [], dataDir).start;
      expect(fewer.status).toBe(1);
      expect(fewer.stderr.trim()).toMatch(/holds the state of 2 shards, not 1/);

      const again = await runningStart(ports, dataDir, ['--shards', '2']);
      expect(again.output).toContain('Seed               coupon 1 already exists (kept as it is)');
      await again.stop();

      const reset = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'localstack', 'reset.ts')], {
        cwd: PROJECT_ROOT,
        env: { ...process.env, DATA_DIR: dataDir },
        encoding: 'utf8',
      });
      expect(reset.stderr).toBe('');
      expect(reset.status).toBe(0);
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      killLeftovers(ports);
    }
  }, 300_000);

  it("a second npm start refused for a taken API port leaves the running stack's function bundles alone", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fcfs-bundles-'));
    const api = await freePort();
    const stack = await startStack({
      dataDir,
      ports: { api, lambda: await freePort(), dynamodb: await freePort(), gateway: await freePort(), redis: await freePort() },
      tableName: services().tableName,
      adminToken: 'bundles-admin',
      upstashToken: 'bundles-upstash',
      redisKeyPrefix: `bundles-${Date.now().toString(36)}`,
      offline: true,
      offlineLog: join(dataDir, 'offline.log'),
      externalDynamo: { endpoint: services().dynamodbEndpoint },
    });
    const ports = { ...(await freePorts()), API_PORT: api };
    try {
      const { start } = npmStart(ports);
      expect(start.status).toBe(1);
      expect(lastLine(start.stderr)).toBe(
        `fcfs-coupons: Port ${api} (the API (serverless offline)) is already in use: stop what holds it or set API_PORT to a free port.`,
      );
      expect(existsSync(join(PROJECT_ROOT, `.esbuild-${api}`))).toBe(true);
      const created = await fetch(`${stack.apiUrl}/api/v2/admin/coupons`, {
        method: 'POST',
        headers: { authorization: 'Bearer bundles-admin', 'content-type': 'application/json' },
        body: JSON.stringify({ couponId: uniqueCouponId('bundles'), name: 'still served', totalQuantity: 1 }),
      });
      expect(created.status).toBe(201);
    } finally {
      await stack.stop();
      killLeftovers(ports);
    }
    expect(existsSync(join(PROJECT_ROOT, `.esbuild-${api}`))).toBe(false);
  }, 180_000);

  it('npm start refuses a bad seed coupon with one sentence, before starting anything', () => {
    const refusals: [Record<string, string>, string][] = [
      [{ SEED_COUPON_QUANTITY: 'lots' }, 'fcfs-coupons: SEED_COUPON_QUANTITY must be a whole number (0 = no seed coupon), got "lots".'],
      [{ SEED_COUPON_QUANTITY: '-5' }, 'fcfs-coupons: SEED_COUPON_QUANTITY must be a whole number (0 = no seed coupon), got "-5".'],
      [
        { SEED_COUPON_ID: 'spring sale!' },
        'fcfs-coupons: seed coupon (SEED_COUPON_ID, SEED_COUPON_QUANTITY): couponId must be 1 to 64 characters of A-Z, a-z, 0-9, "_" or "-".',
      ],
    ];
    for (const [settings, sentence] of refusals) {
      const { start, dataDir } = npmStart(settings);
      expect(start.status).toBe(1);
      expect(start.stderr.trim()).toBe(sentence);
      expect(existsSync(dataDir)).toBe(false);
    }
  });

  it('npm start without java says how to install it, before starting anything', async () => {
    const ports = await freePorts();
    try {
      const { start } = npmStart(ports, pathWith({}));
      expect(start.status).toBe(1);
      expect(lastLine(start.stderr)).toMatch(
        /^fcfs-coupons: java was not found on PATH\. Java 17 is needed for DynamoDB Local: install it \(.+\) and try again\.$/,
      );
      await expectFree(ports.REDIS_PORT, ports.GATEWAY_PORT);
    } finally {
      killLeftovers(ports);
    }
  });

  it('npm start whose DynamoDB Local dies while starting says so and stops what had started (redis-server, the gateway)', async () => {
    const ports = await freePorts();
    try {
      const { start } = npmStart(ports, pathWith({ java: '#!/bin/sh\nexit 1\n' }));
      expect(start.status).toBe(1);
      expect(lastLine(start.stderr)).toBe(`fcfs-coupons: DynamoDB Local exited with code 1 before listening on port ${ports.DYNAMODB_PORT}; see its log.`);
      await expectFree(ports.REDIS_PORT, ports.GATEWAY_PORT);
    } finally {
      killLeftovers(ports);
    }
  });

  it('after an unclean stop, a coupon whose reconcile cannot be reached, fails or cannot finish counts as failed (npm start then keeps its marker)', async () => {
    const couponId = uniqueCouponId('unclean');
    await createCoupon(testDeps(), { couponId, name: 'n', totalQuantity: 1, startsAt: undefined, endsAt: undefined });
    const stackAt = (apiUrl: string) =>
      ({ apiUrl, dynamodbEndpoint: services().dynamodbEndpoint, env: { TABLE_NAME: services().tableName, AWS_REGION: 'us-east-1' } }) as unknown as Stack;

    const unreachable = await reconcileAfterUncleanStop(stackAt(`http://127.0.0.1:${await freePort()}`), 'token');
    expect(unreachable.failed).toBeGreaterThanOrEqual(1);
    expect(unreachable.lines).toContainEqual(
      expect.stringMatching(new RegExp(`^coupon ${couponId}: reconcile failed \\(.+\\); run npm run reconcile -- --coupon ${couponId}$`)),
    );

    const broken = createHttpServer((_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"INTERNAL","message":"boom"}'));
    const port = await freePort();
    await new Promise<void>((resolve) => broken.listen(port, '127.0.0.1', () => resolve()));
    try {
      const failing = await reconcileAfterUncleanStop(stackAt(`http://127.0.0.1:${port}`), 'token');
      expect(failing.failed).toBeGreaterThanOrEqual(1);
      expect(failing.lines).toContainEqual(`coupon ${couponId}: reconcile failed (500 boom); run npm run reconcile -- --coupon ${couponId}`);
    } finally {
      await new Promise<void>((resolve) => broken.close(() => resolve()));
    }

    // A reconcile that could not finish (a counter moved while it was checked) is not done either.
    const moving = createHttpServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ summary: { WINNER_NOT_TRACKED: 2 }, retry: true })),
    );
    const movingPort = await freePort();
    await new Promise<void>((resolve) => moving.listen(movingPort, '127.0.0.1', () => resolve()));
    try {
      const unfinished = await reconcileAfterUncleanStop(stackAt(`http://127.0.0.1:${movingPort}`), 'token');
      expect(unfinished.failed).toBeGreaterThanOrEqual(1);
      expect(unfinished.lines).toContainEqual(
        `coupon ${couponId}: found 2 WINNER_NOT_TRACKED, not finished, state moved meanwhile; run npm run reconcile -- --coupon ${couponId}`,
      );
    } finally {
      await new Promise<void>((resolve) => moving.close(() => resolve()));
    }
  });
});

/** Settings a developer's shell may hold that would change what npm start does in these tests. */
const STACK_SETTINGS =
  /^(DRAIN_|RATE_LIMIT_|REDIS_|LEDGER_|SEED_COUPON_|UPSTASH_|AUTH_|JWT_|SLS_)|^(LOCAL_DYNAMODB|TABLE_NAME|DATA_DIR|STAGE|ADMIN_TOKEN|GATEWAY_TOKEN|DYNAMODB_ENDPOINT|QUOTA_SCALE|[A-Z_]+_PORT)$/;

/** `npm start` (its script, run directly) with only the given settings, in a data directory of its own. */
function npmStart(
  settings: Record<string, string | number>,
  path?: string,
  args: string[] = [],
  dataDir = join(mkdtempSync(join(tmpdir(), 'fcfs-start-')), 'data'),
) {
  const env = startEnv(settings);
  const start = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'localstack', 'start.ts'), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...env, DATA_DIR: dataDir, ...(path ? { PATH: path } : {}) },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { start, dataDir };
}

function startEnv(settings: Record<string, string | number>): Record<string, string> {
  const env: Record<string, string> = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !STACK_SETTINGS.test(k))) as Record<
    string,
    string
  >;
  for (const [k, v] of Object.entries(settings)) env[k] = String(v);
  return env;
}

/** `npm start` left running until it prints that it is up; stop() sends SIGTERM and waits for it to exit. */
async function runningStart(settings: Record<string, string | number>, dataDir: string, args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'localstack', 'start.ts'), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...startEnv(settings), DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await Promise.race([
    exited.then(() => {
      throw new Error(`npm start exited before it was up:\n${output}`);
    }),
    (async () => {
      while (!output.includes('Press Ctrl-C to stop.') && child.exitCode === null && child.signalCode === null)
        await new Promise((resolve) => setTimeout(resolve, 200));
    })(),
  ]);
  return {
    output,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function freePorts() {
  return {
    API_PORT: await freePort(),
    LAMBDA_PORT: await freePort(),
    DYNAMODB_PORT: await freePort(),
    GATEWAY_PORT: await freePort(),
    REDIS_PORT: await freePort(),
  };
}

/** A PATH of sh (which looks binaries up) and redis-server from this machine, plus the given scripts. */
function pathWith(scripts: Record<string, string>): string {
  const bin = mkdtempSync(join(tmpdir(), 'fcfs-bin-'));
  for (const name of ['sh', 'redis-server']) symlinkSync(spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim(), join(bin, name));
  for (const [name, script] of Object.entries(scripts)) writeFileSync(join(bin, name), script, { mode: 0o755 });
  return bin;
}

const lastLine = (text: string) => text.trim().split('\n').at(-1);

async function expectFree(...ports: number[]): Promise<void> {
  for (const port of ports) await expect(assertPortFree(port, 'a child of npm start', 'PORT')).resolves.toBeUndefined();
}

/** Whatever a test's outcome, no redis-server or gateway it started outlives it (Linux: read from /proc). */
function killLeftovers(ports: { REDIS_PORT: number; GATEWAY_PORT: number }): void {
  if (!existsSync('/proc')) return;
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const ours =
        (cmdline.includes('redis-server') && cmdline.includes(`:${ports.REDIS_PORT}`)) ||
        (cmdline.includes('upstash-gateway') && readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`GATEWAY_PORT=${ports.GATEWAY_PORT}`));
      if (ours) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
}
