/**
 * The localstack stage's API end to end without LocalStack (no Docker engine here): `serverless offline
 * --stage localstack` serves the stage's REST API routes (API Gateway v1 events, as LocalStack sends them)
 * through functions/rest-api.ts, and every AWS call of the functions goes to one edge endpoint, as on
 * LocalStack's port 4566: a router of the test's own sends DynamoDB calls to DynamoDB Local, Secrets
 * Manager calls to the secrets emulator (holding the stage's two secrets) and Lambda invokes to serverless
 * offline. What this proves: the adapter and the stage's configuration carry a drop from the secrets read
 * at cold start to the drain's write, with a REST API's events. What it cannot: LocalStack itself.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, PROJECT_ROOT, spawnLogged, stopChild, waitForPort, type Spawned } from '../localstack/processes.js';
import { startSecretsEmulator, type SecretsEmulator } from '../localstack/secrets-emulator.js';
import { launchChromium } from './support/browser.js';

const ADMIN_TOKEN = `ls-admin-${randomBytes(6).toString('hex')}`;

describe("the localstack stage's REST API, served by serverless offline, with one edge endpoint for AWS", () => {
  const services = inject('services');
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-localstack-e2e-'));
  let secrets: SecretsEmulator;
  let edge: Server;
  let offline: Spawned;
  let api: string;
  let lambdaPort: number;
  const routed: Record<string, number> = {};
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

  beforeAll(async () => {
    secrets = await startSecretsEmulator({
      secrets: {
        'fcfs-coupons/localstack/upstash': JSON.stringify({ url: services.gatewayUrl, token: services.gatewayToken }),
        'fcfs-coupons/localstack/admin': JSON.stringify({ adminToken: ADMIN_TOKEN }),
      },
    });
    const [edgePort, apiPort] = [await freePort(), await freePort()];
    lambdaPort = await freePort();
    // LocalStack's edge: one port, each call to its service by its X-Amz-Target or path.
    const target = (req: IncomingMessage): string => {
      const amzTarget = String(req.headers['x-amz-target'] ?? '');
      if (amzTarget.startsWith('DynamoDB_')) return services.dynamodbEndpoint;
      if (amzTarget.startsWith('secretsmanager.')) return secrets.url;
      if (req.url?.startsWith('/2015-03-31/functions/')) return `http://127.0.0.1:${lambdaPort}`;
      throw new Error(`no service for ${req.method} ${req.url} (${amzTarget})`);
    };
    edge = createServer((req, res) => {
      let to: URL;
      try {
        to = new URL(req.url ?? '/', target(req));
      } catch (error) {
        res.writeHead(400).end(String(error));
        return;
      }
      routed[to.port] = (routed[to.port] ?? 0) + 1;
      const forward = request(to, { method: req.method, headers: { ...req.headers, host: to.host } }, (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
      });
      forward.on('error', (error) => res.writeHead(502).end(String(error)));
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => edge.listen(edgePort, '127.0.0.1', resolve));

    offline = spawnLogged(
      'serverless-offline',
      process.execPath,
      [join(PROJECT_ROOT, 'node_modules', 'osls', 'bin', 'serverless.js'), 'offline', 'start', '--stage', 'localstack', '--prefix', 'localstack'],
      {
        logFile: join(dir, 'offline.log'),
        cwd: PROJECT_ROOT,
        env: {
          ...process.env,
          LOCALSTACK_FUNCTIONS_ENDPOINT: `http://127.0.0.1:${edgePort}`,
          API_PORT: String(apiPort),
          LAMBDA_PORT: String(lambdaPort),
          TABLE_NAME: services.tableName,
          REDIS_KEY_PREFIX: `ls-${randomBytes(4).toString('hex')}`,
          // Two loaded cores serve every request of this process: the local stack's looser deadline.
          REDIS_DEADLINE_MS: '3000',
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
          AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          LOG_LEVEL: 'error',
          SLS_TELEMETRY_DISABLED: '1',
          SLS_NOTIFICATIONS_MODE: 'off',
          SLS_LOG_LEVEL: 'warning',
          ESBUILD_WORK_FOLDER: `.esbuild-localstack-e2e-${process.pid}`,
        },
      },
    );
    await waitForPort(apiPort, 'serverless offline', offline.child, 150_000);
    await waitForPort(lambdaPort, 'serverless offline (Lambda endpoint)', offline.child, 30_000);
    // LocalStack serves a REST API under its stage's name, as API Gateway does: /localstack/...
    api = `http://127.0.0.1:${apiPort}/localstack`;
  }, 180_000);

  afterAll(async () => {
    if (offline) await stopChild(offline);
    await new Promise<void>((resolve) => (edge ? edge.close(() => resolve()) : resolve()));
    await secrets?.close();
    rmSync(join(PROJECT_ROOT, `.esbuild-localstack-e2e-${process.pid}`), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it("sells, persists and shows a coupon: secrets from Secrets Manager, the ledger and the drain's invoke all through the edge", async () => {
    const couponId = `ls${randomBytes(4).toString('hex')}`;
    // No API Gateway authorizer on this stage: the admin handler itself refuses a request without the token.
    expect((await fetch(`${api}/api/v2/admin/coupons`, { method: 'POST', body: '{}' })).status).toBe(401);
    const created = await fetch(`${api}/api/v2/admin/coupons`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ couponId, name: 'LocalStack', totalQuantity: 2 }),
    });
    expect(created.status, await created.clone().text()).toBe(201);

    const issue = (userId: string) =>
      fetch(`${api}/api/v2/users/${userId}/coupons/${couponId}/issue`, { method: 'POST' }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as Record<string, unknown>,
      }));
    expect(await issue('u1')).toEqual({ status: 200, body: { result: 'ACCEPTED', couponId, userId: 'u1', ticket: 1 } });
    expect(await issue('u2')).toMatchObject({ status: 200, body: { result: 'ACCEPTED', ticket: 2 } });
    expect(await issue('u1')).toMatchObject({ status: 200, body: { result: 'ALREADY_ACCEPTED', ticket: 1 } });
    expect(await issue('u3')).toMatchObject({ status: 409, body: { error: 'SOLD_OUT' } });

    // The winners' requests started the drain through the edge's Lambda endpoint; it writes both.
    const deadline = Date.now() + 30_000;
    let status: unknown;
    while (Date.now() < deadline) {
      status = ((await (await fetch(`${api}/api/v2/users/u2/coupons/${couponId}`)).json()) as { status?: string }).status;
      if (status === 'ISSUED') break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(status).toBe('ISSUED');

    const live = await fetch(`${api}/api/v2/admin/coupons/${couponId}/live`, { headers: admin });
    expect(live.status).toBe(200);
    expect(await live.json()).toMatchObject({ couponId, remaining: 0, issued: 2 });

    // The operator page reads the live view by a path relative to itself, so it works under a stage prefix too.
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      expect((await page.goto(`${api}/admin#coupon=${couponId}`))?.status()).toBe(200);
      await page.fill('#token-input', ADMIN_TOKEN);
      await page.click('button[type=submit]');
      const metric = (name: string) => page.locator(`[data-metric="${name}"]`).first().getAttribute('data-value');
      await expect.poll(() => metric('issued'), { timeout: 15_000 }).toBe('2');
      expect(await metric('remaining')).toBe('0');
    } finally {
      await browser.close();
    }
    expect(secrets.stats().calls['secretsmanager.GetSecretValue']).toBeGreaterThanOrEqual(2);
    // Each service was reached through the edge: DynamoDB, Secrets Manager, and the drain's invoke.
    for (const service of [services.dynamodbEndpoint, secrets.url, `http://127.0.0.1:${lambdaPort}`])
      expect(routed[new URL(service).port], service).toBeGreaterThan(0);
  });

  it('answers unknown routes and wrong methods as the HTTP API does, through the catch-all REST routes', async () => {
    const missing = await fetch(`${api}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: 'NOT_FOUND' });
    const wrong = await fetch(`${api}/api/v2/admin/coupons`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
  });
});
