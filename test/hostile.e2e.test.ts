import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { Redis as IORedis } from 'ioredis';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidUserId } from '../lib/coupons/ids.js';
import { couponKeys } from '../lib/redis/keys.js';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { freePort } from '../localstack/processes.js';
import { startStack, type Stack } from '../localstack/stack.js';
import { api, eventually, inParallel } from './support/http.js';

/**
 * Hostile clients against the whole stack (its own redis-server, gateway, DynamoDB Local and
 * serverless offline): every malformed or unauthorised request gets a 4xx with the JSON error shape,
 * none a 5xx, and Redis and the ledger are byte-for-byte unchanged. Then no secret reaches any log.
 */
describe('hostile input through serverless offline', () => {
  const adminToken = 'adm-9f8e7d6c5b4a39281706f5e4d3c2b1a0';
  const upstashToken = 'ups-0a1b2c3d4e5f60718293a4b5c6d7e8f9';
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-hostile-'));
  let stack: Stack;
  let redisPort: number;
  const couponId = 'hostile-coupon';

  beforeAll(async () => {
    redisPort = await freePort();
    stack = await startStack({
      dataDir: dir,
      ports: { api: await freePort(), lambda: await freePort(), dynamodb: await freePort(), gateway: await freePort(), redis: redisPort },
      tableName: 'fcfs-coupons-hostile',
      adminToken,
      upstashToken,
      offline: true,
      offlineLog: join(dir, 'logs', 'offline.log'),
      extraEnv: { LOG_LEVEL: 'debug', RATE_LIMIT_USER_PER_SECOND: '0' },
    });
    const admin = api(stack.apiUrl, adminToken);
    expect((await admin.createCoupon({ couponId, name: 'Hostile', totalQuantity: 100 })).status).toBe(201);
    for (let i = 0; i < 10; i++) expect((await admin.issue(`winner${i}`, couponId)).status).toBe(200);
    await eventually(
      () => admin.adminCoupon(couponId),
      (r) => r.body.issued === 10 && r.body.queued === 0 && r.body.inflight === 0,
      30_000,
      'the seed winners persisted',
    );
    // Let the drain mark of the last admission go: the state must be quiescent before the dump.
    await eventually(
      () => drainMarked(),
      (marked) => !marked,
      30_000,
      'the drain mark to be released',
    );
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The drain mark is the "drain" field of the coupon's state. */
  async function drainMarked(): Promise<boolean> {
    const redis = new IORedis({ port: redisPort, lazyConnect: true });
    try {
      await redis.connect();
      return (await redis.hexists(couponKeys(stack.env.REDIS_KEY_PREFIX ?? 'fcfs', couponId).state, 'drain')) === 1;
    } finally {
      redis.disconnect();
    }
  }

  /** Every key's DUMP, and every ledger item, hashed in a stable order. */
  async function stateDigest(): Promise<{ redis: string; ledger: string; keys: number; items: number }> {
    const redis = new IORedis({ port: redisPort, lazyConnect: true });
    await redis.connect();
    const keys = (await redis.keys('*')).sort();
    const redisHash = createHash('sha256');
    for (const key of keys) redisHash.update(key).update((await redis.dumpBuffer(key)) ?? Buffer.alloc(0));
    redis.disconnect();
    const dynamo = createDynamo({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint });
    const items: string[] = [];
    let start: Record<string, any> | undefined;
    do {
      const page = await dynamo.send(new ScanCommand({ TableName: 'fcfs-coupons-hostile', ConsistentRead: true, ExclusiveStartKey: start }));
      for (const item of page.Items ?? [])
        items.push(
          JSON.stringify(
            Object.keys(item)
              .sort()
              .map((k) => [k, item[k]]),
          ),
        );
      start = page.LastEvaluatedKey;
    } while (start);
    items.sort();
    return { redis: redisHash.digest('hex'), ledger: createHash('sha256').update(items.join('\n')).digest('hex'), keys: keys.length, items: items.length };
  }

  it('answers 10,000 malformed and hostile requests with a 4xx JSON error each, and changes nothing', async () => {
    const before = await stateDigest();
    expect(before.items).toBe(11);
    const requests = hostileRequests(10_000, couponId, adminToken);
    const send = async (r: HostileRequest) => {
      const response = await fetch(`${stack.apiUrl}${r.path}`, { method: r.method, headers: r.headers, body: r.body });
      return { request: r, status: response.status, text: await response.text() };
    };
    const burst = await inParallel(requests.length, 16, (i) => send(requests[i]!));
    // A store that did not answer within its deadline (two shared cores, loaded by the other test worker)
    // is a 503 with Retry-After, as designed; such a request is sent again once the burst is over, and its
    // answer then must be what the hostile input earns.
    const replies = [];
    for (const reply of burst) {
      let answer = reply;
      for (let attempt = 0; answer.status === 503 && answer.text.includes('"error":"UNAVAILABLE"') && attempt < 5; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        answer = await send(answer.request);
      }
      replies.push(answer);
    }
    const bad = replies.filter(({ request, status, text }) => {
      if (status < 400 || status > 499) return true;
      try {
        const body = JSON.parse(text);
        // The admin routes' authorizer refuses a missing or wrong token in the gateway's own shape.
        if (request.path.startsWith('/api/v2/admin/') && (status === 401 || status === 403)) return typeof body.message !== 'string';
        return !(typeof body.error === 'string' && typeof body.message === 'string' && Object.keys(body).length === 2);
      } catch {
        return true;
      }
    });
    expect(bad.slice(0, 5).map((b) => ({ ...b.request, body: b.request.body?.slice(0, 80), status: b.status, text: b.text.slice(0, 200) }))).toEqual([]);
    const after = await stateDigest();
    expect(after).toEqual(before);
  }, 300_000);

  it('never writes a secret or a token to a log, through a full run with failures', async () => {
    const admin = api(stack.apiUrl, adminToken);
    const other = `secrets-${Date.now()}`;
    expect((await admin.createCoupon({ couponId: other, name: 'Secrets', totalQuantity: 5 })).status).toBe(201);
    for (let i = 0; i < 8; i++) await admin.issue(`s${i}`, other);
    await api(stack.apiUrl, `${adminToken}-wrong`).adminCoupon(other);
    await api(stack.apiUrl, 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl').createCoupon({ couponId: 'x', name: 'x', totalQuantity: 1 });
    await admin.call('POST', `/api/v2/admin/coupons/${other}/reconcile`);
    await eventually(
      () => admin.adminCoupon(other),
      (r) => r.body.issued === 5,
      30_000,
      'persisted',
    );
    // The drain logs "coupon finished" just after the write that made `issued` 5: wait for that line,
    // so the logs read below cover the whole run.
    const readLogs = async () =>
      readdirSync(join(dir, 'logs'))
        .map((f) => readFileSync(join(dir, 'logs', f), 'utf8'))
        .join('\n');
    const logs = await eventually(readLogs, (text) => text.includes(other), 15_000, `a log line about ${other}`).catch(readLogs);
    expect(logs.length).toBeGreaterThan(1_000);
    expect(logs).toContain(other);
    for (const secret of [adminToken, upstashToken, 'eyJhbGciOiJIUzI1NiJ9']) expect(logs).not.toContain(secret);
  }, 120_000);
});

interface HostileRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

/** A deterministic mix of hostile requests; none of them is a valid state-changing request. */
function hostileRequests(count: number, couponId: string, adminToken: string): HostileRequest[] {
  let seed = 20_261_124;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const badIds = [
    'x'.repeat(65),
    'x'.repeat(1_000),
    '%20',
    'a%20b',
    '%00',
    'a%0Ab',
    '%7F',
    '%ED%95%9C%EA%B8%80',
    '%F0%9F%8E%9F',
    '..%2F..%2Fetc%2Fpasswd',
    '%2F',
    '%22%3B%20redis.call(%27FLUSHALL%27)%20--',
    'a%7Bb%7D',
    '*',
    '%5C',
    'a.b',
    'a+b',
    '%3Cscript%3E',
    "'%20OR%201%3D1",
    '__proto__%5B',
  ];
  // User ids take more than coupon ids (identity providers' subjects: lib/coupons/ids.ts); these are bad
  // for both.
  const badUserIds = [...badIds.filter((id) => !isValidUserId(safeDecode(id))), 'x'.repeat(129), 'team%23a', '%25', 'a%3Fb'];
  // Dot segments are resolved by the HTTP server before routing (/users/../coupons/1 is /coupons/1,
  // a legitimate public GET), so they are sent where the resolved path is not a route.
  const traversal = ['..', '%2E%2E', '.%2E', '..%2F..'];
  const validId = () => pick(['u1', 'user-42', 'no_such', 'Z9']);
  const jsonBodies = [
    '',
    '{',
    'null',
    '[]',
    '"string"',
    '42',
    '{"couponId":1,"name":"n","totalQuantity":1}',
    '{"couponId":"ok","name":5,"totalQuantity":1}',
    '{"couponId":"ok","name":"n","totalQuantity":"10"}',
    '{"couponId":"ok","name":"n","totalQuantity":-1}',
    '{"couponId":"ok","name":"n","totalQuantity":1e9}',
    '{"couponId":"ok","name":"n","totalQuantity":1.5}',
    '{"couponId":"ok","name":"n","totalQuantity":1,"extra":true}',
    '{"couponId":"ok","name":"n","totalQuantity":1,"__proto__":{"admin":true}}',
    '{"couponId":"ok","name":"n","totalQuantity":1,"constructor":{"prototype":{"x":1}}}',
    '{"couponId":"ok","name":"n","totalQuantity":1,"startsAt":"tomorrow"}',
    '{"couponId":"ok","name":"n","totalQuantity":1,"startsAt":"2030-01-02T00:00:00Z","endsAt":"2030-01-01T00:00:00Z"}',
    '{"couponId":"../x","name":"n","totalQuantity":1}',
    '{"couponId":"ok","name":"","totalQuantity":1}',
    '{"couponId":"ok","name":"\\u0000","totalQuantity":1}',
    `{"couponId":"ok","name":"${'n'.repeat(5_000)}","totalQuantity":1}`,
    `{"couponId":"ok","name":"n","totalQuantity":1,"pad":"${'p'.repeat(200_000)}"}`,
  ];
  const wrongAuth = () =>
    pick<Record<string, string>>([
      {},
      { authorization: 'Bearer wrong' },
      { authorization: adminToken },
      { authorization: `Basic ${adminToken}` },
      { authorization: `Bearer ${adminToken}x` },
      { authorization: `Bearer ${adminToken.slice(0, -1)}` },
      { authorization: 'Bearer ' },
    ]);
  const generators: (() => HostileRequest)[] = [
    () => ({ method: 'POST', path: `/api/v2/users/${pick(badUserIds)}/coupons/${couponId}/issue`, headers: {} }),
    () => ({ method: 'POST', path: `/api/v2/users/${pick(traversal)}/coupons/${pick(traversal)}/issue`, headers: {} }),
    () => ({ method: 'POST', path: `/api/v2/users/${validId()}/coupons/${pick(badIds)}/issue`, headers: {} }),
    () => ({ method: 'POST', path: `/api/v2/users/${validId()}/coupons/no-such-coupon-${Math.floor(random() * 50)}/issue`, headers: {} }),
    () => ({ method: 'GET', path: `/api/v2/users/${pick(badUserIds)}/coupons/${couponId}`, headers: {} }),
    () => ({ method: 'GET', path: `/api/v2/users/nobody${Math.floor(random() * 1e6)}/coupons/${couponId}`, headers: {} }),
    () => ({ method: 'GET', path: `/api/v2/users/${pick(badUserIds)}/coupons`, headers: {} }),
    () => ({
      method: 'GET',
      path: `/api/v2/users/${validId()}/coupons?${pick(['limit=0', 'limit=abc', 'limit=1000', 'limit=-1', 'cursor=garbage', 'cursor=eyJQSyI6eyJTIjoieCJ9fQ', 'evil=1', 'limit=1&limit=2x'])}`,
      headers: {},
    }),
    () => ({ method: 'GET', path: `/api/v2/coupons/${pick(badIds)}`, headers: {} }),
    () => ({
      method: pick(['PUT', 'DELETE', 'PATCH']),
      path: pick([`/api/v2/coupons/${couponId}`, `/api/v2/users/u1/coupons/${couponId}/issue`, '/api/v2/admin/coupons', `/api/v2/users/u1/coupons`]),
      headers: {},
    }),
    () => ({ method: 'GET', path: `/api/v2/users/u1/coupons/${couponId}/issue`, headers: {} }),
    () => ({
      method: pick(['GET', 'POST']),
      path: pick(['/', '/api', '/api/v2', '/api/v3/coupons/1', '/api/v2/coupons', '/api/v2/admin', '/.env', '/api/v2/users/u1/coupons/1/issue/again']),
      headers: {},
    }),
    () => ({
      method: 'POST',
      path: '/api/v2/admin/coupons',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: pick(jsonBodies),
    }),
    () => ({ method: 'POST', path: '/api/v2/admin/coupons', headers: wrongAuth(), body: '{"couponId":"intruder","name":"n","totalQuantity":1}' }),
    () => ({ method: pick(['GET']), path: `/api/v2/admin/coupons/${couponId}`, headers: wrongAuth() }),
    () => ({ method: 'POST', path: `/api/v2/admin/coupons/${couponId}/reconcile`, headers: wrongAuth() }),
    () => ({ method: 'GET', path: `/api/v2/admin/coupons/${couponId}/dead-letters`, headers: wrongAuth() }),
    () => ({ method: 'POST', path: `/api/v2/admin/coupons/${couponId}/dead-letters/requeue`, headers: wrongAuth(), body: '{}' }),
    () => ({
      method: 'POST',
      path: `/api/v2/admin/coupons/${couponId}/dead-letters/requeue`,
      headers: { authorization: `Bearer ${adminToken}` },
      body: pick(['{', '[]', '{"userIds":[]}', '{"userIds":"u1"}', '{"userIds":["bad id"]}', '{"other":1}']),
    }),
    () => ({
      method: 'GET',
      path: `/api/v2/admin/coupons/${couponId}/dead-letters?limit=${pick(['0', '101', 'x', '-5'])}`,
      headers: { authorization: `Bearer ${adminToken}` },
    }),
    () => ({
      method: 'POST',
      path: `/api/v2/admin/coupons/${couponId}/reconcile?dryRun=${pick(['yes', '1', 'maybe'])}`,
      headers: { authorization: `Bearer ${adminToken}` },
    }),
  ];
  return Array.from({ length: count }, () => pick(generators)());
}

/** A path segment as the handler reads it (functions/http.ts userIdParam), or itself when malformed. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
