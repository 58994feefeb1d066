import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../localstack/processes.js';
import { startStack, type Stack } from '../localstack/stack.js';
import { services } from './support/deps.js';
import { api, eventually } from './support/http.js';

const ISSUER = 'https://issuer.e2e.invalid';
const AUDIENCE = 'fcfs-coupons-e2e';
const SHOP = 'https://shop.example.com';

/** Subjects as the common identity providers issue them (the JWT's `sub`). */
const SUBJECTS = {
  auth0: 'auth0|5f1c2e3d4a5b6c7d8e9f0a1b',
  auth0Social: 'google-oauth2|104857329876543210987',
  auth0Enterprise: 'samlp|corp-sso|j.doe@corp.example',
  google: '104857329876543210987',
  cognitoUserPool: 'a1b2c3d4-5e6f-4a8b-9c0d-1e2f3a4b5c6d',
  cognitoIdentity: 'us-east-1:7d3c1f2e-9a8b-4c5d-8e7f-6a5b4c3d2e1f',
  okta: '00u1a2b3c4D5e6F7g8h9',
  apple: '001234.0a1b2c3d4e5f60718293a4b5c6d7e8f9.1234',
  azureAd: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
  email: 'jane.doe+coupons@example.com',
};

/**
 * What no user id may hold: each would split or confuse a key or a path (lib/coupons/ids.ts). (A user
 * id of dots only is refused too, test/ids.test.ts: a URL's client resolves it away before sending.)
 */
const UNSAFE = {
  ledgerSeparator: 'team#42',
  slash: 'org/user',
  backslash: 'org\\user',
  space: 'jane doe',
  tab: 'jane\tdoe',
  newline: 'jane\ndoe',
  percent: 'fifty%off',
  question: 'who?',
  quote: 'o"neil',
  nonAscii: 'josé',
  tooLong: 'x'.repeat(129),
};

/** An unsigned token: serverless offline checks issuer, audience and expiry, not the signature (API Gateway does). */
function token(sub: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3_600 })}.c2lnbmF0dXJl`;
}

/** Real identity providers' subjects through serverless offline with AUTH_MODE=jwt, into the ledger's user index and back. */
describe('users of real identity providers, end to end', () => {
  const adminToken = 'identity-admin-token';
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-identity-'));
  let stack: Stack;
  let admin: ReturnType<typeof api>;
  const as = (sub: string) => api(stack.apiUrl, token(sub));
  const userPath = (userId: string) => `/api/v2/users/${encodeURIComponent(userId)}`;

  beforeAll(async () => {
    const s = services();
    stack = await startStack({
      dataDir: dir,
      ports: { api: await freePort(), lambda: await freePort(), dynamodb: 0, gateway: 0, redis: 0 },
      tableName: s.tableName,
      adminToken,
      upstashToken: s.gatewayToken,
      redisKeyPrefix: `id${Date.now().toString(36)}`,
      offline: true,
      externalRedis: { url: s.gatewayUrl, token: s.gatewayToken },
      externalDynamo: { endpoint: s.dynamodbEndpoint },
      offlineLog: join(dir, 'offline.log'),
      extraEnv: { LOG_LEVEL: 'warn', AUTH_MODE: 'jwt', JWT_ISSUER_URL: ISSUER, JWT_AUDIENCE: AUDIENCE, CORS_ALLOWED_ORIGINS: SHOP },
    });
    admin = api(stack.apiUrl, adminToken);
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("issues to every provider's subject (percent-encoded in the path), reads its status, and lists its coupons from the ledger's user index page by page", async () => {
    const coupons = [`id-a-${Date.now()}`, `id-b-${Date.now()}`];
    for (const couponId of coupons) expect((await admin.createCoupon({ couponId, name: 'identity', totalQuantity: 100 })).status).toBe(201);

    for (const [provider, sub] of Object.entries(SUBJECTS)) {
      for (const couponId of coupons) {
        const issued = await as(sub).call('POST', `${userPath(sub)}/coupons/${couponId}/issue`);
        expect(issued.status, `${provider}: ${JSON.stringify(issued.body)}`).toBe(200);
        expect(issued.body).toMatchObject({ result: 'ACCEPTED', userId: sub, couponId });
        // Someone else's token for this user: refused.
        expect((await as(`${sub}x`).call('POST', `${userPath(sub)}/coupons/${couponId}/issue`)).status).toBe(403);
      }
    }
    for (const couponId of coupons) {
      await eventually(
        () => admin.adminCoupon(couponId),
        (r) => r.body.issued === Object.keys(SUBJECTS).length,
        60_000,
        `${couponId} persisted`,
      );
    }

    for (const [provider, sub] of Object.entries(SUBJECTS)) {
      const status = await as(sub).call('GET', `${userPath(sub)}/coupons/${coupons[0]}`);
      expect(status.body, provider).toMatchObject({ userId: sub, status: 'ISSUED', ticket: expect.any(Number) });
      // Two coupons, one per page: the cursor is the user index's key, which holds the user id.
      const first = await as(sub).call('GET', `${userPath(sub)}/coupons?limit=1`);
      expect(first.status, `${provider}: ${JSON.stringify(first.body)}`).toBe(200);
      expect(first.body.items).toHaveLength(1);
      const second = await as(sub).call('GET', `${userPath(sub)}/coupons?limit=1&cursor=${encodeURIComponent(first.body.cursor)}`);
      expect(second.status, `${provider}: ${JSON.stringify(second.body)}`).toBe(200);
      expect([...first.body.items, ...second.body.items].map((item: { couponId: string }) => item.couponId).sort()).toEqual([...coupons].sort());
      // A cursor belongs to its user.
      const stolen = await as(SUBJECTS.okta).call('GET', `${userPath(SUBJECTS.okta)}/coupons?limit=1&cursor=${encodeURIComponent(first.body.cursor)}`);
      if (sub !== SUBJECTS.okta) expect(stolen.status, provider).toBe(400);
    }
  }, 180_000);

  it('refuses user ids that are unsafe in a key or a path with 400, whoever the token names', async () => {
    for (const [what, userId] of Object.entries(UNSAFE)) {
      const reply = await as(userId).call('POST', `${userPath(userId)}/coupons/any-coupon/issue`);
      expect(reply.status, `${what}: ${JSON.stringify(reply.body)}`).toBe(400);
      expect(reply.body).toEqual({ error: 'INVALID_REQUEST', message: expect.any(String) });
    }
    // Decoded once: "%25" is a percent sign, which no user id holds.
    const doubleEncoded = await as('a%b').call('POST', '/api/v2/users/a%2525b/coupons/any-coupon/issue');
    expect(doubleEncoded.status).toBe(400);
  });

  it("answers a browser's preflight for a configured origin without a handler, and not for another origin", async () => {
    const preflight = (origin: string) =>
      fetch(`${stack.apiUrl}${userPath(SUBJECTS.auth0)}/coupons/any/issue`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
      });
    const allowed = await preflight(SHOP);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
    expect((await preflight('https://elsewhere.example')).headers.get('access-control-allow-origin')).toBeNull();
  });
});
