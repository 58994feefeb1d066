import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSdkRedis } from '../localstack/upstash-sdk.js';
import { freePort, startRedis, stopChild, type Spawned } from '../localstack/processes.js';
import { startGateway, type Gateway } from '../localstack/upstash-gateway.js';
import { services } from './support/deps.js';

/** Speaks the Upstash REST protocol exactly as @upstash/redis uses it. */
describe('the Upstash REST gateway', () => {
  const s = services();
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${s.gatewayUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.gatewayToken}`, ...headers },
      body: JSON.stringify(body),
    });
  const key = `gw-${Date.now()}`;

  it('runs a command posted as a JSON array', async () => {
    expect(await (await post('/', ['SET', key, 'v1'])).json()).toEqual({ result: 'OK' });
    expect(await (await post('/', ['GET', key])).json()).toEqual({ result: 'v1' });
  });

  it('encodes strings as base64 when asked, except a bare OK, and keeps numbers and nulls', async () => {
    const headers = { 'upstash-encoding': 'base64' };
    expect(await (await post('/', ['SET', `${key}:u`, '한글 ✓'], headers)).json()).toEqual({ result: 'OK' });
    expect(await (await post('/', ['GET', `${key}:u`], headers)).json()).toEqual({ result: Buffer.from('한글 ✓').toString('base64') });
    expect(await (await post('/', ['INCR', `${key}:n`], headers)).json()).toEqual({ result: 1 });
    expect(await (await post('/', ['GET', `${key}:missing`], headers)).json()).toEqual({ result: null });
    expect(await (await post('/', ['ECHO', 'PONG'], headers)).json()).toEqual({ result: Buffer.from('PONG').toString('base64') });
  });

  it('runs a pipeline and answers each command, errors included', async () => {
    const reply = await (
      await post('/pipeline', [
        ['SET', `${key}:p`, '1'],
        ['INCR', `${key}:p`],
        ['HGET', `${key}:p`, 'x'],
      ])
    ).json();
    expect(reply).toEqual([{ result: 'OK' }, { result: 2 }, { error: expect.stringMatching(/^WRONGTYPE/) }]);
  });

  it('runs /multi-exec as one transaction', async () => {
    const reply = await (
      await post('/multi-exec', [
        ['SET', `${key}:m`, 'a'],
        ['APPEND', `${key}:m`, 'b'],
        ['GET', `${key}:m`],
      ])
    ).json();
    expect(reply).toEqual([{ result: 'OK' }, { result: 2 }, { result: 'ab' }]);
  });

  it('accepts path-style commands, with a POST body as the last argument', async () => {
    const set = await fetch(`${s.gatewayUrl}/set/${key}:path`, { method: 'POST', headers: { authorization: `Bearer ${s.gatewayToken}` }, body: 'body value' });
    expect(await set.json()).toEqual({ result: 'OK' });
    const get = await fetch(`${s.gatewayUrl}/get/${key}:path?_token=${s.gatewayToken}`);
    expect(await get.json()).toEqual({ result: 'body value' });
  });

  it('answers 401 without the right bearer token, and runs nothing', async () => {
    const reply = await fetch(`${s.gatewayUrl}/`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong' },
      body: JSON.stringify(['SET', `${key}:x`, '1']),
    });
    expect(reply.status).toBe(401);
    expect(await (await post('/', ['EXISTS', `${key}:x`])).json()).toEqual({ result: 0 });
  });

  it('answers 400 with the Redis error, and refuses blocking commands and malformed bodies', async () => {
    const wrong = await post('/', ['NOSUCHCOMMAND']);
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { error: string }).error).toMatch(/^ERR unknown command/);
    expect((await post('/', ['BLPOP', 'k', '0'])).status).toBe(400);
    const bad = await fetch(`${s.gatewayUrl}/`, { method: 'POST', headers: { authorization: `Bearer ${s.gatewayToken}` }, body: '{not json' });
    expect(bad.status).toBe(400);
  });

  it('serves the @upstash/redis client: scripts, hashes, sorted sets', async () => {
    const redis = createSdkRedis({ url: s.gatewayUrl, token: s.gatewayToken, retries: 0 });
    expect(await redis.eval('return {1, ARGV[1], KEYS[1]}', [`${key}:k`], ['é'])).toEqual([1, 'é', `${key}:k`]);
    await redis.zadd(`${key}:z`, { score: 2, member: 'b' }, { score: 1, member: 'a' });
    expect(await redis.zrange(`${key}:z`, 0, -1)).toEqual(['a', 'b']);
  });
});

describe('the gateway when Redis is down', () => {
  let redis: Spawned;
  let gateway: Gateway;
  let redisPort: number;
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-gw-'));

  beforeAll(async () => {
    redisPort = await freePort();
    redis = await startRedis({ port: redisPort, dataDir: dir, durable: false });
    gateway = await startGateway({ port: await freePort(), redisPort, token: 't' });
  });
  afterAll(async () => {
    await gateway.close();
    await stopChild(redis);
  });

  it('answers 503 at once while Redis is unreachable and recovers by itself when it is back', async () => {
    const post = () => fetch(`${gateway.url}/`, { method: 'POST', headers: { authorization: 'Bearer t' }, body: JSON.stringify(['PING']) });
    expect((await post()).status).toBe(200);
    await stopChild(redis);
    const down = await post();
    expect(down.status).toBe(503);
    expect(((await down.json()) as { error: string }).error).toMatch(/unavailable/i);
    redis = await startRedis({ port: redisPort, dataDir: dir, durable: false });
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await post()).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  });
});
