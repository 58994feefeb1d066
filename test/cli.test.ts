/**
 * The operator's command-line tools refuse a bad command line with one sentence, before they start,
 * ask or delete anything.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, PROJECT_ROOT } from '../localstack/processes.js';

// As package.json runs them (the Lua loader lets the store's scripts be imported).
const run = (script: string, args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', '--import', './localstack/lua-loader.mjs', join(PROJECT_ROOT, script), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });

/** The same, without blocking this process: for a tool that talks to a server this test runs. */
const runAsync = (script: string, args: string[]) =>
  new Promise<{ status: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './localstack/lua-loader.mjs', join(PROJECT_ROOT, script), ...args], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (status) => resolve({ status, stderr }));
  });

describe('npm run bench', () => {
  it.each([
    [['--systems', 'fcfs'], 'bench: --systems names "fcfs", not one of fcfs-coupons, seed-redis, pessimistic-lock, dynamodb-sync.'],
    [['--quick', '--scenarios', 'burst,bursty'], 'bench: --scenarios names "bursty", not one of seed-profile, max-throughput, burst, constant-rate, drop.'],
    [['--fast'], "bench: Unknown option '--fast'"],
  ])('refuses %j with one sentence (exit 2), writing no results', (args, sentence) => {
    const results = join(PROJECT_ROOT, 'bench', 'results');
    const before = existsSync(results) ? readdirSync(results) : [];
    const bench = run('bench/run.ts', args);
    expect(bench.status).toBe(2);
    expect(bench.stderr.split('\n')[0]).toBe(sentence);
    expect(bench.stderr).toContain('Usage: npm run bench [-- --quick] [--systems a,b] [--scenarios x,y]');
    expect(existsSync(results) ? readdirSync(results) : []).toEqual(before);
  });
});

describe('npm run chaos', () => {
  it('refuses an unknown option with one sentence (exit 2), starting nothing', () => {
    const chaos = run('test/faults/chaos.ts', ['--fast']);
    expect(chaos.status).toBe(2);
    expect(chaos.stderr.split('\n')[0]).toBe("chaos: Unknown option '--fast'");
  });
});

describe('npm run reconcile', () => {
  it('refuses a bad coupon id, a bad --api or an unknown option with one sentence, asking nothing of the API', async () => {
    let requests = 0;
    const api = createServer((_req, res) => {
      requests += 1;
      res.writeHead(500).end();
    });
    const port = await freePort();
    await new Promise<void>((resolve) => api.listen(port, '127.0.0.1', () => resolve()));
    try {
      const cases: [string[], string][] = [
        [
          ['--coupon', 'bad!id', '--api', `http://127.0.0.1:${port}`],
          'reconcile: --coupon must be 1 to 64 characters of A-Z, a-z, 0-9, "_" or "-", got "bad!id"',
        ],
        [['--coupon', '1', '--api', 'ftp://example.com'], 'reconcile: --api must be an http(s) URL, got "ftp://example.com"'],
        [['--coupon', '1', '--repair', '--api', `http://127.0.0.1:${port}`], "reconcile: Unknown option '--repair'"],
        [['--api', `http://127.0.0.1:${port}`], 'reconcile: --coupon <couponId> is required, e.g. npm run reconcile -- --coupon 1'],
      ];
      for (const [args, sentence] of cases) {
        const reconcile = run('localstack/reconcile.ts', args);
        expect(reconcile.status).toBe(1);
        expect(reconcile.stderr.split('\n')[0]).toBe(sentence);
      }
      expect(requests).toBe(0);
    } finally {
      await new Promise<void>((resolve) => api.close(() => resolve()));
    }
  });
});

describe('npm run reconcile against a server that is not the stack', () => {
  it("says what it reached instead of printing the foreign server's status and body", async () => {
    // Some other server on the port (here one answering 501 with an empty JSON body, as one did).
    const other = createServer((_req, res) => res.writeHead(501, { 'content-type': 'application/json' }).end('{}'));
    const port = await freePort();
    await new Promise<void>((resolve) => other.listen(port, '127.0.0.1', () => resolve()));
    try {
      const reconcile = await runAsync('localstack/reconcile.ts', ['--coupon', '1', '--api', `http://127.0.0.1:${port}`]);
      expect(reconcile.status).toBe(1);
      expect(reconcile.stderr.trim()).toBe(
        `reconcile: http://127.0.0.1:${port} answered 501 without the admin API's error body: is it the stack (npm start) or the stage you meant? Check --api and API_PORT.`,
      );
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });
});

describe('npm run reset', () => {
  it('refuses an unknown option with one sentence (exit 2), removing nothing', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fcfs-reset-bogus-'));
    mkdirSync(join(dataDir, 'redis'));
    const reset = run('localstack/reset.ts', ['--bogus'], { DATA_DIR: dataDir });
    expect(reset.status).toBe(2);
    expect(reset.stderr.split('\n')[0]).toBe("reset: Unknown option '--bogus'");
    expect(reset.stderr).toContain('Usage: npm run reset');
    expect(readdirSync(dataDir)).toEqual(['redis']);
  });

  it("wipes the local stack's state, and refuses a DATA_DIR that holds anything else", () => {
    const parent = mkdtempSync(join(tmpdir(), 'fcfs-reset-'));
    const dataDir = join(parent, 'data');
    mkdirSync(join(dataDir, 'redis'), { recursive: true });
    writeFileSync(join(dataDir, 'notes.txt'), 'not the stack state');
    const refused = run('localstack/reset.ts', [], { DATA_DIR: dataDir });
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim()).toBe(`fcfs-coupons: ${dataDir} holds more than the local stack's state (notes.txt); not removing it. Check DATA_DIR.`);
    expect(readdirSync(dataDir).sort()).toEqual(['notes.txt', 'redis']);

    const ours = join(parent, 'ours');
    // What npm start -- --shards 3 leaves: a redis folder per shard and the shard count.
    for (const dir of ['redis', 'redis-2', 'redis-3', 'dynamodb', 'logs']) mkdirSync(join(ours, dir), { recursive: true });
    writeFileSync(join(ours, 'reconcile-needed'), 'x');
    writeFileSync(join(ours, 'shards'), '3\n');
    const reset = run('localstack/reset.ts', [], { DATA_DIR: ours });
    expect(reset.status).toBe(0);
    expect(existsSync(ours)).toBe(false);
  });
});
