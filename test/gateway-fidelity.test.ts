/**
 * The local gateway against Upstash's REST documentation (redis/features/restapi, the compatibility
 * page): what it answers, in which shape and status, what it serves and what it refuses. Scripts are
 * also checked against redis-server itself, since they run instrumented for billing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis as UpstashRedis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { freePort, startRedis, stopChild, type Spawned } from '../localstack/processes.js';
import { startGateway, type Gateway } from '../localstack/upstash-gateway.js';

const TOKEN = 'fidelity-token';
const READ_ONLY_TOKEN = 'fidelity-read-only-token';
const NOT_AVAILABLE = /^ERR Command is not available: '.+'\. See https:\/\/upstash\.com\/docs\/redis\/overall\/rediscompatibility for details$/;
const NODE_EXCEPTION = /TypeError|SyntaxError|URIError|RangeError|Unexpected token|is not a function|Cannot read prop/;

describe('the local Upstash gateway, as Upstash documents its REST API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcfs-gw-fidelity-'));
  let redisServer: Spawned;
  let gateway: Gateway;
  let direct: IORedis;
  let key = '';
  let n = 0;

  beforeAll(async () => {
    const redisPort = await freePort();
    redisServer = await startRedis({ port: redisPort, dataDir: dir, durable: false });
    gateway = await startGateway({ port: await freePort(), redisPort, token: TOKEN, readOnlyToken: READ_ONLY_TOKEN });
    direct = new IORedis({ port: redisPort, lazyConnect: true });
    await direct.connect();
  });
  afterAll(async () => {
    direct.disconnect();
    await gateway.close();
    await stopChild(redisServer);
    rmSync(dir, { recursive: true, force: true });
  });
  const fresh = () => {
    n += 1;
    key = `fid-${n}`;
    return key;
  };

  const request = (path: string, init: { method?: string; body?: string | unknown; headers?: Record<string, string>; token?: string } = {}) =>
    fetch(`${gateway.url}${path}`, {
      method: init.method ?? 'POST',
      headers: { authorization: `Bearer ${init.token ?? TOKEN}`, ...init.headers },
      ...(init.body === undefined ? {} : { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }),
    });
  const json = async (path: string, body: unknown, headers: Record<string, string> = {}, token?: string) => {
    const response = await request(path, { body, headers, ...(token ? { token } : {}) });
    return { status: response.status, body: (await response.json()) as unknown };
  };
  const base64 = { 'upstash-encoding': 'base64' };
  const b64 = (text: string) => Buffer.from(text).toString('base64');

  describe('replies of every type', () => {
    it('encodes a hash reply as a flat array whatever the case of the command, in plain and base64 mode', async () => {
      const k = fresh();
      await json('/', ['HSET', k, 'a', '1', 'b', 'é']);
      for (const name of ['hgetall', 'HGETALL', 'HgetAll']) {
        expect(await json('/', [name, k])).toEqual({ status: 200, body: { result: ['a', '1', 'b', 'é'] } });
        expect(await json('/', [name, k], base64)).toEqual({ status: 200, body: { result: [b64('a'), b64('1'), b64('b'), b64('é')] } });
      }
    });

    it('answers a pipeline command by command, a failing command in place and the others run', async () => {
      const k = fresh();
      await json('/', ['hset', k, 'f', 'v']);
      const reply = await json('/pipeline', [
        ['hgetall', k],
        ['set', `${k}:s`, '1'],
        ['incr', k],
        ['get', `${k}:s`],
      ]);
      expect(reply).toEqual({
        status: 200,
        body: [{ result: ['f', 'v'] }, { result: 'OK' }, { error: 'WRONGTYPE Operation against a key holding the wrong kind of value' }, { result: '1' }],
      });
    });

    it("answers a committed transaction with every command's result, a failed one included, never as a failure of the whole", async () => {
      const k = fresh();
      await json('/', ['hset', k, 'f', 'v']);
      const reply = await json(
        '/multi-exec',
        [
          ['hgetall', k],
          ['incr', k],
          ['set', `${k}:w`, 'written'],
          ['hgetall', k],
        ],
        base64,
      );
      expect(reply).toEqual({
        status: 200,
        body: [
          { result: [b64('f'), b64('v')] },
          { error: 'WRONGTYPE Operation against a key holding the wrong kind of value' },
          { result: 'OK' },
          { result: [b64('f'), b64('v')] },
        ],
      });
      expect(await direct.get(`${k}:w`)).toBe('written');
    });

    it('encodes a Lua table holding an error reply, a status reply, nil and nested arrays', async () => {
      const script = "return {1, redis.error_reply('boom'), redis.status_reply('FINE'), {2, 'x', {'deep'}}, 'OK'}";
      expect(await json('/', ['EVAL', script, '0'])).toEqual({ status: 200, body: { result: [1, 'ERR boom', 'FINE', [2, 'x', ['deep']], 'OK'] } });
      expect(await json('/', ['eval', script, '0'], base64)).toEqual({
        status: 200,
        body: { result: [1, b64('ERR boom'), b64('FINE'), [2, b64('x'), [b64('deep')]], b64('OK')] },
      });
      expect(await json('/pipeline', [['eval', script, '0']])).toEqual({ status: 200, body: [{ result: [1, 'ERR boom', 'FINE', [2, 'x', ['deep']], 'OK'] }] });
    });

    it('leaves only a top-level OK unencoded in base64 mode; an OK inside an array is a string like the others', async () => {
      const k = fresh();
      expect(await json('/', ['SET', k, 'OK'], base64)).toEqual({ status: 200, body: { result: 'OK' } });
      expect(await json('/', ['MGET', k, `${k}:none`], base64)).toEqual({ status: 200, body: { result: [b64('OK'), null] } });
    });

    it('writes integers beyond 2^53 digit for digit, alone and in arrays', async () => {
      const k = fresh();
      await json('/', ['SET', k, '9223372036854775806']);
      const response = await request('/', { body: ['INCR', k] });
      expect(await response.text()).toBe('{"result":9223372036854775807}');
      const pipeline = await request('/pipeline', {
        body: [
          ['DECRBY', k, '9223372036854775807'],
          ['DECRBY', k, '9223372036854775807'],
          ['DECR', k],
        ],
      });
      expect(await pipeline.text()).toBe('[{"result":0},{"result":-9223372036854775807},{"result":-9223372036854775808}]');
      const transaction = await request('/multi-exec', {
        body: [
          ['SET', `${k}:2`, '9007199254740993'],
          ['INCRBY', `${k}:2`, '0'],
        ],
      });
      expect(await transaction.text()).toBe('[{"result":"OK"},{"result":9007199254740993}]');
    });
  });

  describe('what Upstash serves over REST', () => {
    it('serves XREAD and XREADGROUP, and refuses their blocking form without holding the connection', async () => {
      const k = fresh();
      const added = (await json('/', ['XADD', k, '*', 'field', 'value'])).body as { result: string };
      expect(await json('/', ['xread', 'COUNT', '10', 'STREAMS', k, '0'])).toEqual({
        status: 200,
        body: { result: [[k, [[added.result, ['field', 'value']]]]] },
      });
      expect(await json('/', ['XGROUP', 'CREATE', k, 'g', '0'])).toEqual({ status: 200, body: { result: 'OK' } });
      expect(await json('/', ['xreadgroup', 'GROUP', 'g', 'c', 'STREAMS', k, '>'])).toEqual({
        status: 200,
        body: { result: [[k, [[added.result, ['field', 'value']]]]] },
      });
      for (const blocking of [
        ['XREAD', 'BLOCK', '0', 'STREAMS', k, '$'],
        ['XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK', '0', 'STREAMS', k, '>'],
      ]) {
        const refused = await json('/', blocking);
        expect(refused.status).toBe(400);
        expect((refused.body as { error: string }).error).toMatch(NOT_AVAILABLE);
      }
      expect(await json('/', ['PING'])).toEqual({ status: 200, body: { result: 'PONG' } });
    });

    it("streams SUBSCRIBE as Server-Sent Events in Upstash's format", async () => {
      const channel = fresh();
      const controller = new AbortController();
      const response = await fetch(`${gateway.url}/subscribe/${channel}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' },
        signal: controller.signal,
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      const reader = response.body!.getReader();
      let text = '';
      const readUntil = async (expected: string) => {
        while (!text.includes(expected)) text += new TextDecoder().decode((await reader.read()).value);
      };
      await readUntil(`data: subscribe,${channel},1`);
      expect(await json('/', ['PUBLISH', channel, 'hello, world'])).toEqual({ status: 200, body: { result: 1 } });
      await readUntil(`data: message,${channel},hello, world`);
      controller.abort();
      await expect.poll(async () => (await direct.pubsub('NUMSUB', channel))[1]).toBe(0);
    });

    it("serves @upstash/redis's subscribe and psubscribe, each on a Redis connection closed when it unsubscribes", async () => {
      const channel = fresh();
      const client = new UpstashRedis({ url: gateway.url, token: TOKEN, enableTelemetry: false });
      const messages: unknown[] = [];
      const subscriber = client.subscribe(channel);
      subscriber.on('message', ({ message }) => messages.push(message));
      const patterns = client.psubscribe(`${channel}*`);
      patterns.on('pmessage', ({ pattern, message }) => messages.push({ pattern, message }));
      await expect.poll(async () => Number((await direct.pubsub('NUMSUB', channel))[1]) + Number(await direct.pubsub('NUMPAT'))).toBeGreaterThanOrEqual(2);
      await client.publish(channel, { n: 1 });
      await expect.poll(() => messages.length).toBe(2);
      expect(messages).toContainEqual({ n: 1 });
      expect(messages).toContainEqual({ pattern: `${channel}*`, message: { n: 1 } });
      await subscriber.unsubscribe();
      await patterns.unsubscribe();
      await expect.poll(async () => Number((await direct.pubsub('NUMSUB', channel))[1]) + Number(await direct.pubsub('NUMPAT'))).toBe(0);
    });

    it("appends a path-style command's query options after its arguments, and a POST or PUT body before them", async () => {
      const k = fresh();
      expect(await (await request(`/set/${k}/v?EX=100`)).json()).toEqual({ result: 'OK' });
      expect(await direct.ttl(k)).toBeGreaterThan(90);
      expect(await (await request(`/set/${k}:put?PX=100000&NX`, { method: 'PUT', body: 'put body' })).json()).toEqual({ result: 'OK' });
      expect(await direct.get(`${k}:put`)).toBe('put body');
      expect(await direct.pttl(`${k}:put`)).toBeGreaterThan(90_000);
      expect(await (await request(`/set/${k}:put?NX`, { method: 'PUT', body: 'second' })).json()).toEqual({ result: null });
      expect(await (await fetch(`${gateway.url}/get/${k}:put?_token=${TOKEN}`)).json()).toEqual({ result: 'put body' });
    });
  });

  describe('what Upstash refuses', () => {
    it('answers 405 to any method but HEAD, GET, POST and PUT, and runs nothing', async () => {
      const k = fresh();
      for (const method of ['DELETE', 'PATCH', 'OPTIONS']) {
        const response = await request(`/set/${k}/v`, { method });
        expect(response.status).toBe(405);
      }
      expect(await direct.exists(k)).toBe(0);
      expect((await request(`/get/${k}`, { method: 'HEAD' })).status).toBe(200);
    });

    it("refuses admin, connection and blocking commands with Upstash's error and status, and runs none of them", async () => {
      const before = await direct.config('GET', 'maxmemory-policy');
      const refused = [
        ['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru'],
        ['config', 'resetstat'],
        ['DEBUG', 'SLEEP', '0'],
        ['SHUTDOWN', 'NOSAVE'],
        ['SELECT', '1'],
        ['MULTI'],
        ['WATCH', 'k'],
        ['BLPOP', 'k', '0'],
        ['SUBSCRIBE', 'c'],
        ['MONITOR'],
        ['SCRIPT', 'KILL'],
        ['OBJECT', 'ENCODING', 'k'],
        ['SWAPDB', '0', '1'],
        ['CLIENT', 'KILL', 'TYPE', 'normal'],
      ];
      for (const command of refused) {
        const reply = await json('/', command);
        expect(reply.status, command.join(' ')).toBe(400);
        expect((reply.body as { error: string }).error, command.join(' ')).toMatch(NOT_AVAILABLE);
      }
      expect(await direct.config('GET', 'maxmemory-policy')).toEqual(before);
      expect(await json('/', ['PING'])).toEqual({ status: 200, body: { result: 'PONG' } });
    });

    it('discards a transaction holding a refused command as a whole, while a pipeline answers it in place', async () => {
      const k = fresh();
      const discarded = await json('/multi-exec', [
        ['SET', k, '1'],
        ['CONFIG', 'SET', 'maxmemory', '1'],
      ]);
      expect(discarded.status).toBe(400);
      expect((discarded.body as { error: string }).error).toMatch(NOT_AVAILABLE);
      expect(await direct.exists(k)).toBe(0);
      const pipeline = await json('/pipeline', [
        ['SET', k, '1'],
        ['CONFIG', 'SET', 'maxmemory', '1'],
        ['GET', k],
      ]);
      expect(pipeline.status).toBe(200);
      expect(pipeline.body).toEqual([{ result: 'OK' }, { error: expect.stringMatching(NOT_AVAILABLE) }, { result: '1' }]);
    });

    it('discards a transaction Redis rejects while queueing, with that error, and applies none of it', async () => {
      const k = fresh();
      const reply = await json('/multi-exec', [['SET', k, '1'], ['GET']]);
      expect(reply).toEqual({ status: 400, body: { error: "ERR wrong number of arguments for 'get' command" } });
      expect(await direct.exists(k)).toBe(0);
    });

    it('lets a read-only token read and run read-only scripts, and refuses it writes, EVAL and EVALSHA with NOPERM', async () => {
      const k = fresh();
      await direct.set(k, 'v');
      const read = (body: unknown) => json('/', body, {}, READ_ONLY_TOKEN);
      expect(await read(['GET', k])).toEqual({ status: 200, body: { result: 'v' } });
      expect(await read(['EVAL_RO', 'return redis.call("GET", KEYS[1])', '1', k])).toEqual({ status: 200, body: { result: 'v' } });
      const sha = ((await json('/', ['SCRIPT', 'LOAD', 'return redis.call("GET", KEYS[1])'])).body as { result: string }).result;
      expect(await read(['EVALSHA_RO', sha, '1', k])).toEqual({ status: 200, body: { result: 'v' } });
      for (const [command, name] of [
        [['SET', k, 'w'], 'set'],
        [['EVAL', 'return 1', '0'], 'eval'],
        [['EVALSHA', sha, '1', k], 'evalsha'],
        [['KEYS', '*'], 'keys'],
        [['SCAN', '0'], 'scan'],
        [['FLUSHALL'], 'flushall'],
      ] as const) {
        expect(await read(command)).toEqual({
          status: 400,
          body: { error: `NOPERM this user has no permissions to run the '${name}' command or its subcommand` },
        });
      }
      expect(
        (
          await json(
            '/pipeline',
            [
              ['GET', k],
              ['DEL', k],
            ],
            {},
            READ_ONLY_TOKEN,
          )
        ).body,
      ).toEqual([{ result: 'v' }, { error: "NOPERM this user has no permissions to run the 'del' command or its subcommand" }]);
      expect(await direct.get(k)).toBe('v');
      expect((await request('/_fcfs/billing', { method: 'GET', token: READ_ONLY_TOKEN })).status).toBe(401);
    });

    it('answers malformed requests with a Redis-style error, never a Node exception message', async () => {
      const bad: [string, string][] = [
        ['/', '{not json'],
        ['/', '{"a":1}'],
        ['/', '[]'],
        ['/', '[["nested"]]'],
        ['/', '["SET", {"k": 1}]'],
        ['/pipeline', '[["GET","k"], 5]'],
        ['/multi-exec', 'null'],
        ['/get/%E0%A4%A', ''],
      ];
      for (const [path, body] of bad) {
        const response = await request(path, { body });
        const text = await response.text();
        expect(response.status, `${path} ${body}`).toBe(400);
        expect(JSON.parse(text).error, `${path} ${body}`).toMatch(/^ERR /);
        expect(text).not.toMatch(NODE_EXCEPTION);
      }
    });
  });

  describe('scripts, which run instrumented for billing', () => {
    const cases = [
      "return {1, 'two', {3}, redis.status_reply('FINE')}",
      'return nil',
      'return false',
      'return 3.99',
      "local t = {} t[1] = 'a' t[3] = 'c' return t",
      "error('boom')",
      "redis.call('NOSUCHCOMMAND')",
      'local x = nil\nlocal y = 1\nreturn x.field',
      "return redis.call('GET')",
      "local function get(k)\n  return redis.call('GET', k, 'extra')\nend\nreturn get('k')",
      "local rcall = redis.call\nrcall('SET', KEYS[1], 'v')\nreturn rcall('INCR', KEYS[1], 'extra')",
      'return redis.error_reply("MYERR custom")',
      "return {err = 'raw table error'}",
      "error({err = 'ERR raised table'})",
      "local ok, e = pcall(redis.call, 'NOSUCHCOMMAND')\nerror(e)",
      'return redis.pcall("INCR", KEYS[1])',
      'redis.call()',
      'redis.x = 1',
      'error(42)',
      "return string.gsub('a', 'a', error)",
      "local function f() error('deep') end\nlocal function g() return f() end\nreturn g()",
      "#!lua flags=no-writes\nreturn redis.call('SET', KEYS[1], 'v')",
      '#!lua\n\nreturn #KEYS + #ARGV',
      'return 1 +',
      "local s = 'return redis.call(1)' -- return x\nreturn {s, [[return]], (function() return 'in' end)()}",
      'return 1\r\nend',
    ];

    const normalise = (value: unknown): unknown => {
      if (Buffer.isBuffer(value)) return value.toString('utf8');
      if (value instanceof Error) return value.message;
      if (Array.isArray(value)) return value.map(normalise);
      return value;
    };

    it('answers every reply and error exactly as redis-server answers the script as sent', async () => {
      for (const script of cases) {
        const k = fresh();
        await direct.set(k, 'string value');
        const sha = createHash('sha1').update(script).digest('hex');
        const expected = await direct.call('EVAL', script, '1', k).then(
          (result) => ({ result: normalise(result) }),
          (error: Error) => ({ error: error.message }),
        );
        await direct.set(k, 'string value');
        const actual = await json('/', ['EVAL', script, '1', k]);
        expect(actual.body, script).toEqual(expected);
        expect(actual.status, script).toBe('error' in expected ? 400 : 200);
        if ('error' in expected && expected.error.includes(' script: ')) expect(expected.error, script).toContain(sha);
      }
    });

    it("accepts Upstash's allow-key-locking shebang, keeping the client's SHA1 of the text it sent", async () => {
      const k = fresh();
      const script = "#!lua flags=allow-key-locking\nreturn redis.call('INCR', KEYS[1])";
      const sha = createHash('sha1').update(script).digest('hex');
      expect(await json('/', ['SCRIPT', 'LOAD', script])).toEqual({ status: 200, body: { result: sha } });
      expect(await json('/', ['SCRIPT', 'EXISTS', sha, 'f'.repeat(40)])).toEqual({ status: 200, body: { result: [1, 0] } });
      expect(await json('/', ['EVALSHA', sha, '1', k])).toEqual({ status: 200, body: { result: 1 } });
      expect(await json('/', ['EVAL', script, '1', k])).toEqual({ status: 200, body: { result: 2 } });
      const readOnly = "#!lua flags=no-writes,allow-key-locking\nreturn redis.call('SET', KEYS[1], 'x')";
      const refused = await json('/', ['EVAL', readOnly, '1', k]);
      expect((refused.body as { error: string }).error).toMatch(
        /^ERR Write commands are not allowed from read-only scripts\. script: [0-9a-f]{40}, on @user_script:2\.$/,
      );
      expect((refused.body as { error: string }).error).toContain(createHash('sha1').update(readOnly).digest('hex'));
    });

    it('answers NOSCRIPT for a script it has not seen, so that @upstash/redis falls back to EVAL', async () => {
      const k = fresh();
      const client = new UpstashRedis({ url: gateway.url, token: TOKEN, enableTelemetry: false, automaticDeserialization: false });
      const script = client.createScript<string>("return redis.call('SET', KEYS[1], ARGV[1])");
      expect(await json('/', ['EVALSHA', script.sha1, '1', k, 'v'])).toEqual({ status: 400, body: { error: 'NOSCRIPT No matching script. Please use EVAL.' } });
      expect(await script.exec([k], ['v'])).toBe('OK');
      expect(await json('/', ['EVALSHA', script.sha1, '1', k, 'w'])).toEqual({ status: 200, body: { result: 'OK' } });
    });

    it('forgets its scripts on SCRIPT FLUSH, and reloads one Redis lost behind its back without the client noticing', async () => {
      const k = fresh();
      const sha = ((await json('/', ['SCRIPT', 'LOAD', "return redis.call('INCR', KEYS[1])"])).body as { result: string }).result;
      await direct.script('FLUSH');
      expect(await json('/', ['EVALSHA', sha, '1', k])).toEqual({ status: 200, body: { result: 1 } });
      expect(await json('/', ['SCRIPT', 'FLUSH'])).toEqual({ status: 200, body: { result: 'OK' } });
      expect(await json('/', ['SCRIPT', 'EXISTS', sha])).toEqual({ status: 200, body: { result: [0] } });
      expect(await json('/', ['EVALSHA', sha, '1', k])).toEqual({ status: 400, body: { error: 'NOSCRIPT No matching script. Please use EVAL.' } });
    });
  });
});
