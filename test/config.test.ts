import { describe, expect, it } from 'vitest';
import { loadConfig, parseDatabases } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';

const local = { UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:8079', UPSTASH_REDIS_REST_TOKEN: 't' };

describe('configuration', () => {
  it('has local defaults for everything but the Redis credentials', () => {
    const config = loadConfig(local);
    expect(config).toMatchObject({
      stage: 'local',
      tableName: 'fcfs-coupons-local',
      adminToken: { value: 'local-admin-token' },
      authMode: 'none',
      drain: { batchSize: 99, maxAttempts: 5, lingerMs: 100 },
    });
  });

  it('fails fast, naming the variable, when something required is missing or malformed', () => {
    expect(() => loadConfig({})).toThrow(/UPSTASH_REDIS_REST_URL .*is required/);
    expect(() => loadConfig({ ...local, DRAIN_BATCH_SIZE: '100' })).toThrow(/DRAIN_BATCH_SIZE must be an integer in 1..99/);
    for (const loose of ['1e1', '0x10', ' 5 ', '5.0']) {
      expect(() => loadConfig({ ...local, DRAIN_BATCH_SIZE: loose })).toThrow(/DRAIN_BATCH_SIZE must be an integer in 1..99/);
    }
    expect(() => loadConfig({ ...local, DYNAMODB_ENDPOINT: 'localhost:8000' })).toThrow(ConfigError);
    // A linger as long as the drain mark would let admissions start a second drain while the first waits.
    expect(() => loadConfig({ ...local, DRAIN_TRIGGER_LEASE_MS: '500', DRAIN_LINGER_MS: '500' })).toThrow(/DRAIN_LINGER_MS must be an integer in 0..499/);
    expect(() => loadConfig({ ...local, AUTH_MODE: 'open' })).toThrow(/AUTH_MODE must be one of none, jwt/);
  });

  it('deployed stages need a table and an admin token, and default to JWT auth', () => {
    expect(() => loadConfig({ ...local, STAGE: 'prod' })).toThrow(/TABLE_NAME is required/);
    expect(() => loadConfig({ ...local, STAGE: 'prod', TABLE_NAME: 't' })).toThrow(/ADMIN_TOKEN/);
    const config = loadConfig({ STAGE: 'prod', TABLE_NAME: 't', UPSTASH_SECRET_ID: 'p/upstash', ADMIN_TOKEN_SECRET_ID: 'p/admin' });
    expect(config).toMatchObject({
      authMode: 'jwt',
      redis: { databases: { secretId: 'p/upstash' }, keyPrefix: 'fcfs-prod' },
      adminToken: { secretId: 'p/admin', field: 'adminToken' },
    });
    // Two stages on one Upstash database keep apart unless told otherwise; serverless.yml passes ''
    // when REDIS_KEY_PREFIX is unset, which means the default too. Locally the prefix stays "fcfs".
    expect(
      loadConfig({ STAGE: 'staging', TABLE_NAME: 't', UPSTASH_SECRET_ID: 'p/upstash', ADMIN_TOKEN_SECRET_ID: 'p/admin', REDIS_KEY_PREFIX: '' }).redis.keyPrefix,
    ).toBe('fcfs-staging');
    expect(loadConfig({ ...local }).redis.keyPrefix).toBe('fcfs');
  });

  it('reads several Upstash databases (shards) as comma-separated lists of one length, or refuses them with one sentence', () => {
    const two = loadConfig({ ...local, UPSTASH_REDIS_REST_URL: 'http://a:1, http://b:2', UPSTASH_REDIS_REST_TOKEN: 'ta,tb' });
    expect(two.redis.databases).toEqual({
      given: [
        { url: 'http://a:1', token: 'ta' },
        { url: 'http://b:2', token: 'tb' },
      ],
    });
    expect(() => loadConfig({ ...local, UPSTASH_REDIS_REST_URL: 'http://a:1,http://b:2', UPSTASH_REDIS_REST_TOKEN: 'ta' })).toThrow(
      /names 2 database\(s\) but UPSTASH_REDIS_REST_TOKEN 1/,
    );
    expect(() => loadConfig({ ...local, UPSTASH_REDIS_REST_URL: 'http://a:1,nope', UPSTASH_REDIS_REST_TOKEN: 'ta,tb' })).toThrow(
      /database 2 needs an http\(s\) "url"/,
    );
    expect(parseDatabases({ shards: [{ url: 'https://x', token: 't' }] }, 'secret s')).toEqual([{ url: 'https://x', token: 't' }]);
    expect(() => parseDatabases({ shards: [] }, 'secret s')).toThrow(/secret s must name 1 to 32 Upstash databases/);
  });
});
