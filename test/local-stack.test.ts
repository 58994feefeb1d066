import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCoupon } from '../lib/coupons/campaigns.js';
import { assertPortFree, freePort, PROJECT_ROOT, StackError } from '../localstack/processes.js';
import { reconcileAfterUncleanStop } from '../localstack/recover.js';
import type { Stack } from '../localstack/stack.js';
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

  it('npm start refuses settings that contradict each other or the functions\' timeouts with one sentence, before starting anything', () => {
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

  it('npm start refuses a bad seed coupon with one sentence, before starting anything', () => {
    const refusals: [Record<string, string>, string][] = [
      [{ SEED_COUPON_QUANTITY: 'lots' }, 'fcfs-coupons: SEED_COUPON_QUANTITY must be a whole number (0 = no seed coupon), got "lots".'],
      [{ SEED_COUPON_QUANTITY: '-5' }, 'fcfs-coupons: SEED_COUPON_QUANTITY must be a whole number (0 = no seed coupon), got "-5".'],
      [{ SEED_COUPON_ID: 'spring sale!' }, 'fcfs-coupons: seed coupon (SEED_COUPON_ID, SEED_COUPON_QUANTITY): couponId must be 1 to 64 characters of A-Z, a-z, 0-9, "_" or "-".'],
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
      expect(lastLine(start.stderr)).toMatch(/^fcfs-coupons: java was not found on PATH\. Java 17 is needed for DynamoDB Local: install it \(.+\) and try again\.$/);
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
    expect(unreachable.lines).toContainEqual(expect.stringMatching(new RegExp(`^coupon ${couponId}: reconcile failed \\(.+\\); run npm run reconcile -- --coupon ${couponId}$`)));

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
const STACK_SETTINGS = /^(DRAIN_|RATE_LIMIT_|REDIS_|LEDGER_|SEED_COUPON_|UPSTASH_|AUTH_|JWT_|SLS_)|^(LOCAL_DYNAMODB|TABLE_NAME|DATA_DIR|STAGE|ADMIN_TOKEN|GATEWAY_TOKEN|DYNAMODB_ENDPOINT|[A-Z]+_PORT)$/;

/** `npm start` (its script, run directly) with only the given settings, in a data directory of its own. */
function npmStart(settings: Record<string, string | number>, path?: string) {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'fcfs-start-')), 'data');
  const env: Record<string, string> = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !STACK_SETTINGS.test(k))) as Record<string, string>;
  for (const [k, v] of Object.entries(settings)) env[k] = String(v);
  const start = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'localstack', 'start.ts')], {
    cwd: PROJECT_ROOT,
    env: { ...env, DATA_DIR: dataDir, ...(path ? { PATH: path } : {}) },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { start, dataDir };
}

async function freePorts() {
  return { API_PORT: await freePort(), LAMBDA_PORT: await freePort(), DYNAMODB_PORT: await freePort(), GATEWAY_PORT: await freePort(), REDIS_PORT: await freePort() };
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
