/**
 * Operating a drop, end to end through serverless offline: the live operator page in a real browser
 * (Debian's chromium driven by playwright-core) while a burst runs, and the metrics the handlers print
 * in CloudWatch's embedded metric format (EMF) during that burst.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../localstack/processes.js';
import { startStack, type Stack } from '../localstack/stack.js';
import { ARTIFACTS_DIR, launchChromium } from './support/browser.js';
import { services } from './support/deps.js';
import { api, eventually, inParallel } from './support/http.js';

const UNITS = 1_500;
const REQUESTS = 4_500;
const USERS = 3_000;

describe('operating a drop through serverless offline', () => {
  const adminToken = 'operate-admin-token';
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-operate-'));
  const offlineLog = join(dir, 'offline.log');
  const couponId = `operate-${Date.now().toString(36)}`;
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  let client: ReturnType<typeof api>;
  /** Every answer of the burst, by HTTP status and result. */
  let answers: { status: number; result: string }[] = [];
  /** What the page showed while the burst ran. */
  const samples: { remaining: number; decided: number }[] = [];

  beforeAll(async () => {
    const s = services();
    [stack, browser] = await Promise.all([
      startStack({
        dataDir: dir,
        ports: { api: await freePort(), lambda: await freePort(), dynamodb: 0, gateway: 0, redis: 0 },
        tableName: s.tableName,
        adminToken,
        upstashToken: s.gatewayToken,
        redisKeyPrefix: `op${Date.now().toString(36)}`,
        offline: true,
        externalRedis: { url: s.gatewayUrl, token: s.gatewayToken },
        externalDynamo: { endpoint: s.dynamodbEndpoint },
        offlineLog,
        // Metrics are off locally by default (an EMF line per request is console noise): on here.
        extraEnv: { LOG_LEVEL: 'info', POWERTOOLS_METRICS_DISABLED: 'false' },
      }),
      launchChromium(),
    ]);
    client = api(stack.apiUrl, adminToken);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const metric = async (name: string): Promise<string | undefined> =>
    (await page.locator(`[data-metric="${name}"]`).first().getAttribute('data-value')) ?? undefined;
  const cookies = () => page.evaluate('document.cookie');
  const decidedOnPage = async () => {
    let total = 0;
    for (const outcome of ['ACCEPTED', 'ALREADY_ACCEPTED', 'SOLD_OUT', 'RATE_LIMITED', 'UNAVAILABLE']) total += Number(await metric(`total-${outcome}`));
    return total;
  };

  it('the page asks for the token in the page (never in the URL), refuses a wrong one, and watches a coupon', async () => {
    expect((await client.createCoupon({ couponId, name: 'Operator page drop', totalQuantity: UNITS })).status).toBe(201);
    const served = await page.goto(`${stack.apiUrl}/admin#coupon=${couponId}`);
    expect(served?.status()).toBe(200);
    expect(served?.headers()['content-security-policy']).toContain("default-src 'none'");

    await page.fill('#token-input', 'not-the-token');
    await page.click('button[type=submit]');
    // Refused by the admin authorizer at the gateway, in API Gateway's words.
    await expect.poll(() => page.textContent('#message')).toMatch(/not authorized|not valid/);

    await page.fill('#token-input', adminToken);
    await page.click('button[type=submit]');
    await expect.poll(() => page.getAttribute('#status', 'data-value'), { timeout: 15_000 }).toBe('OPEN');
    expect(await metric('remaining')).toBe(String(UNITS));
    expect(page.url()).not.toContain(adminToken);
    // The token stays in the tab's session storage only.
    expect(await cookies()).toBe('');
  });

  it('during a burst the numbers move, and once it is persisted they agree with the admin view', async () => {
    const anonymous = api(stack.apiUrl);
    const users = Array.from({ length: REQUESTS }, (_, i) => `user${(i * 7_919) % USERS}`);
    let bursting = true;
    const sampling = (async () => {
      while (bursting) {
        samples.push({ remaining: Number(await metric('remaining')), decided: await decidedOnPage() });
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    // Paced so that the burst lasts a few of the page's refreshes on any machine.
    const replies = await inParallel(users.length, 24, async (i) => {
      const reply = await anonymous.issue(users[i]!, couponId);
      if (i % 300 === 299) await new Promise((resolve) => setTimeout(resolve, 150));
      return reply;
    });
    answers = replies.map((r) => ({ status: r.status, result: String(r.body.result ?? r.body.error) }));
    // One more reading after the last answers, then stop sampling.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    bursting = false;
    await sampling;

    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    expect(answers.filter((a) => a.result === 'ACCEPTED')).toHaveLength(UNITS);
    const remainingSeen = new Set(samples.map((s) => s.remaining));
    expect(remainingSeen.size, `remaining values the page showed: ${[...remainingSeen].join(', ')}`).toBeGreaterThanOrEqual(2);
    expect(Math.max(...samples.map((s) => s.decided))).toBeGreaterThan(samples[0]!.decided);

    const admin = await eventually(
      () => client.adminCoupon(couponId),
      (r) => r.body.issued === UNITS,
      60_000,
      'every winner persisted',
    );
    await expect.poll(async () => Number(await metric('issued')), { timeout: 10_000 }).toBe(UNITS);
    await expect.poll(() => page.getAttribute('#status', 'data-value'), { timeout: 10_000 }).toBe(admin.body.status);
    for (const field of ['remaining', 'queued', 'inflight', 'issued', 'deadLettered'] as const) {
      expect({ field, page: Number(await metric(field)) }).toEqual({ field, page: admin.body[field] });
    }
    // Containers report their answers within about a second, alongside their requests: the page's
    // totals never exceed what was answered, and saw most of it.
    const accepted = Number(await metric('total-ACCEPTED'));
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThanOrEqual(UNITS);
    expect(await decidedOnPage()).toBeLessThanOrEqual(REQUESTS);
    expect(Number(await metric('persistLag'))).toBeGreaterThanOrEqual(0);
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'operator-page.png'), fullPage: true });
  });

  it('the handlers printed EMF lines during the burst: one namespace, low-cardinality dimensions, exact counts', async () => {
    const lines = readFileSync(offlineLog, 'utf8').split('\n');
    const emf = lines.filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>);
    expect(emf.length).toBeGreaterThan(0);
    const sums = new Map<string, number>();
    const values = new Map<string, number[]>();
    for (const doc of emf) {
      const aws = doc._aws as {
        Timestamp: number;
        CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[];
      };
      expect(aws.Timestamp).toBeTypeOf('number');
      for (const directive of aws.CloudWatchMetrics) {
        expect(directive.Namespace).toBe('fcfs-coupons');
        for (const set of directive.Dimensions) expect(['service', 'stage', 'function_name']).toEqual(expect.arrayContaining(set));
        for (const { Name } of directive.Metrics) {
          const raw = doc[Name] as number | number[];
          const list = Array.isArray(raw) ? raw : [raw];
          values.set(Name, [...(values.get(Name) ?? []), ...list]);
          sums.set(Name, (sums.get(Name) ?? 0) + list.reduce((a, b) => a + b, 0));
        }
      }
      expect(doc.stage).toBe('local');
      expect(doc.service).toBe('fcfs-coupons');
      // No coupon or user id as a dimension or a property: cardinality stays constant.
      expect(JSON.stringify(doc)).not.toContain(couponId);
    }
    // Every answer of the burst was counted exactly once, by outcome.
    const answered = (result: string) => answers.filter((a) => a.result === result).length;
    expect(sums.get('DecisionAccepted')).toBe(UNITS);
    expect(sums.get('DecisionSoldOut') ?? 0).toBe(answered('SOLD_OUT'));
    expect(sums.get('DecisionAlreadyAccepted') ?? 0).toBe(answered('ALREADY_ACCEPTED'));
    expect((sums.get('AnsweredWithoutRedis') ?? 0) + (values.get('RedisLatency')?.length ?? 0)).toBeGreaterThanOrEqual(REQUESTS);
    expect(sums.get('AnsweredWithoutRedis')).toBeGreaterThan(0);
    // The drains wrote each winner once, and told each one's lag from acceptance to the ledger.
    expect(sums.get('DrainIssued')).toBe(UNITS);
    expect(values.get('PersistLag')).toHaveLength(UNITS);
    expect(sums.get('ColdStart')).toBeGreaterThan(0);

    // Log lines are Powertools' JSON with the invocation's request id and cold start.
    const drained = lines
      .filter((line) => line.includes('"message":"drained"'))
      .map((line) => JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>);
    expect(drained.length).toBeGreaterThan(0);
    for (const entry of drained)
      expect(entry).toMatchObject({ level: 'INFO', service: 'fcfs-coupons', function_request_id: expect.any(String), cold_start: expect.any(Boolean) });
  });
});
