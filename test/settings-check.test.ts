import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { capacityContradictions, environmentContradictions, functionTimeouts } from '../deploy/settings-check.js';
import { issueMaxMs, ledgerCallMaxMs, readMaxMs, restoreWaitMaxMs } from '../lib/budgets.js';
import { loadConfig } from '../lib/config.js';
import { PROJECT_ROOT } from '../localstack/processes.js';
import { packageRefusal, SERVERLESS } from './support/package.js';

const local = { UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:8079', UPSTASH_REDIS_REST_TOKEN: 't' };
const deployed = { STAGE: 'prod', TABLE_NAME: 't', UPSTASH_SECRET_ID: 'p/upstash', ADMIN_TOKEN_SECRET_ID: 'p/admin' };
const localCheck = (settings: Record<string, string>) => environmentContradictions({ ...local, ...settings }, functionTimeouts('local'));
const deployedCheck = (settings: Record<string, string>) => environmentContradictions({ ...deployed, ...settings }, functionTimeouts('deployed'));

describe("settings checked against each other and the functions' timeouts", () => {
  it('finds nothing to refuse in the defaults, locally or deployed', () => {
    expect(localCheck({})).toEqual([]);
    expect(deployedCheck({})).toEqual([]);
  });

  it('refuses a drain that would stop before it starts (DRAIN_STOP_BEFORE_TIMEOUT_MS at or near its timeout)', () => {
    for (const stop of ['120000', '119500']) {
      expect(deployedCheck({ DRAIN_STOP_BEFORE_TIMEOUT_MS: stop })).toEqual([
        `DRAIN_STOP_BEFORE_TIMEOUT_MS (${stop}) must leave the drain at least a second of its 120 s timeout, or every drain stops before its first claim and persists nothing.`,
      ]);
    }
    expect(deployedCheck({ DRAIN_STOP_BEFORE_TIMEOUT_MS: '119000' })).toEqual([]);
  });

  it("refuses a claim lease that a batch write can outlive (the ledger's attempts times its timeouts, plus the SDK's pauses)", () => {
    const writes = loadConfig(deployed).ledger.writes;
    // 3 attempts × 3 s + pauses of at most 1 s and 2 s.
    expect(ledgerCallMaxMs(writes)).toBe(12_000);
    expect(deployedCheck({ DRAIN_CLAIM_LEASE_MS: '12000' })[0]).toMatch(
      /^DRAIN_CLAIM_LEASE_MS \(12000\) must be longer than one ledger write can take \(12,000 ms/,
    );
    expect(deployedCheck({ DRAIN_CLAIM_LEASE_MS: '12001' })).toEqual([]);
    // More attempts or longer timeouts need a longer lease.
    expect(deployedCheck({ LEDGER_ATTEMPTS: '6', LEDGER_REQUEST_TIMEOUT_MS: '5000' })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^DRAIN_CLAIM_LEASE_MS \(30000\) must be longer than one ledger write can take \(61,000 ms/)]),
    );
  });

  it("refuses deadlines the functions' timeouts do not cover, so Lambda never cuts a request short of its 503", () => {
    expect(deployedCheck({ REDIS_DEADLINE_MS: '2000' })[0]).toMatch(
      /^The issue function's timeout \(15 s\) must exceed by a second the 29,675 ms an issue request can take/,
    );
    expect(deployedCheck({ REBUILD_WAIT_MS: '10000' })[0]).toMatch(/^The issue function's timeout/);
    expect(deployedCheck({ LEDGER_READ_ATTEMPTS: '5' })[0]).toMatch(/^The userCoupon function's timeout \(16 s\) must exceed/);
    expect(deployedCheck({ LEDGER_REQUEST_TIMEOUT_MS: '6000' })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^The adminCreateCoupon function's timeout \(25 s\)/)]),
    );
  });

  it('refuses an API function whose timeout API Gateway would not wait for', () => {
    const timeouts = { ...functionTimeouts('deployed'), adminReconcile: 30 };
    expect(environmentContradictions(deployed, timeouts)[0]).toBe(
      "The adminReconcile function's timeout (30 s) must be under the 30 s API Gateway waits for it, or API Gateway answers 503 while the function still runs.",
    );
  });

  it('reports a malformed setting as lib/config.ts words it', () => {
    expect(deployedCheck({ REDIS_DEADLINE_MS: 'fast' })).toEqual(['REDIS_DEADLINE_MS must be an integer in 50..10000, got "fast".']);
  });

  it("computes the worst cases from every call's own bound", () => {
    const config = loadConfig(deployed);
    // A slow HEXISTS uses up the rebuild wait; only the last one can overrun it.
    expect(restoreWaitMaxMs(1_500, 500)).toBe(2_375);
    // Secret read 3,450 + admit 500 + (coupon read 1,000 + 2 × 500 + restore start 500 + wait 2,375) + admit 500
    // + refills of the user's shard, the secret may name several (budget 500 + a transfer begun just before it,
    // 4 × 500, + a busy pause 50 + admit 500) + winners 500 + drain start 300.
    expect(issueMaxMs(config)).toBe(13_175);
    // Secret read 3,450 + ledger 2,600 (2 × 800 + a pause of at most 1 s) + (ledger 2,600 + 2 × 500 + 500 + 2,375) + 500.
    expect(readMaxMs(config)).toBe(13_025);
    // Locally the secrets are given, not read, and Redis' deadline is 3 s (one process serves every request).
    expect(issueMaxMs(loadConfig(local))).toBe(3_000 + (1_000 + 2 * 3_000 + 500 + 4_875) + 3_000 + 3_000 + 300);
  });

  it('refuses reservations that leave the account fewer than the 100 unreserved executions AWS requires, and provisioning above a reservation', () => {
    const reserved = { issue: 600, drain: 10, restore: 5, notFound: 5 };
    expect(capacityContradictions({ account: 1_000, reserved, provisioned: {} })).toEqual([]);
    expect(capacityContradictions({ account: 700, reserved, provisioned: {} })).toEqual([
      "The functions reserve 620 of the account's 700 concurrent executions (ACCOUNT_CONCURRENCY), leaving 80 where AWS requires at least 100 unreserved: lower ISSUE_CONCURRENCY (or the others), or raise the account's quota first.",
    ]);
    expect(capacityContradictions({ account: 1_000, reserved, provisioned: { issue: 601 } })).toEqual([
      "The issue function's provisioned concurrency (601) cannot exceed its reserved concurrency (600): raise the reservation or provision less.",
    ]);
    // A new account with a small pool reserves nothing.
    expect(capacityContradictions({ account: 50, reserved: { issue: undefined, drain: undefined }, provisioned: {} })).toEqual([]);
  });
});

describe('serverless package refuses contradicting settings with one sentence, before building anything', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-refusal-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(PROJECT_ROOT, `.esbuild-package-${process.pid}`), { recursive: true, force: true });
  });

  const refusals: [Record<string, string>, string][] = [
    [
      { DRAIN_STOP_BEFORE_TIMEOUT_MS: '120000' },
      'DRAIN_STOP_BEFORE_TIMEOUT_MS (120000) must leave the drain at least a second of its 120 s timeout, or every drain stops before its first claim and persists nothing.',
    ],
    [
      { DRAIN_CLAIM_LEASE_MS: '10000' },
      "DRAIN_CLAIM_LEASE_MS (10000) must be longer than one ledger write can take (12,000 ms: LEDGER_ATTEMPTS × LEDGER_REQUEST_TIMEOUT_MS + the SDK's pauses), or a batch still being written is claimed and written again by another drain.",
    ],
    [
      { ISSUE_CONCURRENCY: '950' },
      "The functions reserve 986 of the account's 1000 concurrent executions (ACCOUNT_CONCURRENCY), leaving 14 where AWS requires at least 100 unreserved: lower ISSUE_CONCURRENCY (or the others), or raise the account's quota first.",
    ],
    [{ DRAIN_BATCH_SIZE: '100' }, 'DRAIN_BATCH_SIZE must be an integer in 1..99, got "100".'],
    [
      { CORS_ALLOWED_ORIGINS: 'https://shop.example.com/' },
      'CORS_ALLOWED_ORIGINS holds "https://shop.example.com/", which is not an origin (scheme, host and port only, e.g. https://shop.example.com).',
    ],
    [
      { API_THROTTLE_RATE: '5000' },
      "API_THROTTLE_RATE is no longer read: the API's throttles are per route now (THROTTLE_ISSUE_RATE, THROTTLE_READ_RATE, ... see docs/deploy.md).",
    ],
  ];
  it('refuses a stage that verifies tokens without JWT_ISSUER_URL and JWT_AUDIENCE, naming what to set', () => {
    const { status, output } = packageRefusal(dir, { JWT_ISSUER_URL: '', JWT_AUDIENCE: ' ' });
    expect(status).toBe(1);
    expect(output).not.toMatch(/unsupported string format/);
    expect(output.split('\n')).toContainEqual(
      expect.stringMatching(/^Set JWT_ISSUER_URL and JWT_AUDIENCE to package or deploy stage prod: .*see docs\/deploy\.md\.$/),
    );
  }, 60_000);

  it('refuses an AUTH_MODE that is neither jwt nor none with one sentence', () => {
    const { status, output } = packageRefusal(dir, { AUTH_MODE: 'JWT', JWT_ISSUER_URL: 'https://issuer.example.com', JWT_AUDIENCE: 'a' });
    expect(status).toBe(1);
    expect(output.split('\n')).toContainEqual(
      'AUTH_MODE must be jwt (user routes verify tokens) or none (they trust the path\'s user id), got "JWT" for stage prod.',
    );
  }, 60_000);

  it('lets the local stage verify tokens with its own issuer and audience (AUTH_MODE=jwt npm start), without JWT settings', () => {
    const run = spawnSync(process.execPath, [SERVERLESS, 'print', '--stage', 'local', '--path', 'provider.environment.AUTH_MODE'], {
      cwd: PROJECT_ROOT,
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('JWT_'))), AUTH_MODE: 'jwt' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    expect(run.stdout.trim()).toBe('jwt');
  }, 60_000);

  for (const [settings, sentence] of refusals) {
    it(`refuses ${Object.entries(settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`, () => {
      const { status, output } = packageRefusal(dir, settings);
      expect(status).toBe(1);
      // osls prints "Error:" and the plugin's sentence on the next line, and nothing was bundled.
      expect(output.split('\n')).toContain(sentence);
      expect(output).not.toMatch(/Packaging .* \(.*\)\n.*esbuild|Compiling with esbuild/);
    }, 60_000);
  }
});
