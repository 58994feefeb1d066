import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scripts } from '../lib/redis/coupon-store.js';
import { SCRIPT_CODES } from '../lib/redis/replies.js';
import { testDeps, uniqueCouponId } from './support/deps.js';

const scriptsDir = join(import.meta.dirname, '..', 'lib', 'redis', 'scripts');
const { expandLua } = createRequire(import.meta.url)('../localstack/lua-source.cjs') as { expandLua: (source: string, file: string) => string };

describe('Lua scripts', () => {
  it('every script file is registered, and its SHA1 is the one Redis computes', async () => {
    const { redis } = testDeps();
    const files = readdirSync(scriptsDir)
      .filter((f) => f.endsWith('.lua'))
      .sort();
    expect(
      Object.values(scripts)
        .map((s) => `${s.name}.lua`)
        .sort(),
    ).toEqual(files);
    for (const script of Object.values(scripts)) {
      const file = join(scriptsDir, `${script.name}.lua`);
      const source = expandLua(readFileSync(file, 'utf8'), file);
      expect(script.sha1).toBe(createHash('sha1').update(source).digest('hex'));
      expect(await redis.scriptLoad(source)).toBe(script.sha1);
    }
  });

  it('every script documents its KEYS, ARGV and output', () => {
    for (const script of Object.values(scripts)) {
      // The doc block opens the file, after the shebang Upstash reads its locking flags from.
      expect(script.source, script.name).toMatch(/^#!lua flags=[a-z,-]*allow-key-locking\n--\[\[/);
      expect(script.source, script.name).toMatch(/KEYS\[1\]/);
      expect(script.source, script.name).toMatch(/Output:/);
    }
  });

  it('every reply code of lib/redis/replies.ts is documented, by number and name, in the Output of the scripts that answer it', () => {
    const missing: string[] = [];
    for (const [name, codes] of Object.entries(SCRIPT_CODES)) {
      const script = Object.values(scripts).find((s) => s.name === name);
      if (!script) {
        missing.push(`${name}: no such script`);
        continue;
      }
      const output = /Output:([\s\S]*?)\]\]/.exec(script.source)?.[1] ?? '';
      for (const [label, code] of Object.entries(codes)) {
        const documented = output.split('\n').some((line) => new RegExp(`(^|[\\s{(])${code}\\b`).test(line) && new RegExp(`\\b${label}\\b`).test(line));
        if (!documented) missing.push(`${name}: ${code} ${label}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('a flushed script cache (NOSCRIPT) is reloaded transparently, never surfaced', async () => {
    const deps = testDeps();
    const couponId = uniqueCouponId();
    await deps.store.loadCoupon(couponId, { total: 2, remaining: 2, seq: 0, startsAt: 0, endsAt: 0, epoch: 0, shard: 0, shards: 1 });
    await deps.redis.scriptFlush();
    expect(await deps.redis.scriptExists(scripts.admit.sha1)).toEqual([0]);
    expect((await deps.store.admit(couponId, 'u1', { triggerLeaseMs: 1_000 })).reply.kind).toBe('ACCEPTED');
    expect(await deps.redis.scriptExists(scripts.admit.sha1)).toEqual([1]);
    await deps.redis.scriptFlush();
    expect(await deps.store.readUser(couponId, 'u1')).toMatchObject({ kind: 'WON', ticket: 1 });
  });

  it("the rebuild lock is released only by its holder: one that outlived its TTL leaves the next holder's lock alone", async () => {
    const { store, redis } = testDeps();
    const couponId = uniqueCouponId('lock');
    // Long enough that a loaded machine's round trip cannot outlast it before the second try.
    const first = await store.tryLockRebuild(couponId, 1_000);
    expect(first).toEqual(expect.any(String));
    expect(await store.tryLockRebuild(couponId, 1_000)).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const second = await store.tryLockRebuild(couponId, 10_000);
    expect(second).toEqual(expect.any(String));
    expect(await store.unlockRebuild(couponId, first!)).toBe(false);
    expect(await redis.get(store.keys(couponId).rebuildLock)).toBe(second);
    expect(await store.unlockRebuild(couponId, second!)).toBe(true);
    expect(await store.tryLockRebuild(couponId, 50)).toEqual(expect.any(String));
  });

  it('every key a script touches is passed in KEYS and shares the coupon hash tag, but for the coupon index', () => {
    const keys = Object.values(testDeps().store.keys('abc'));
    for (const key of keys) expect(key).toContain('{abc}');
    for (const script of Object.values(scripts)) {
      // No key names are built inside scripts: every redis.call names its key through KEYS.
      const calls = script.source.match(/redis\.call\("[A-Z]+", ([^,)]+)/g) ?? [];
      for (const call of calls) {
        const target = call.replace(/redis\.call\("[A-Z]+", /, '');
        expect(target, `${script.name}: ${call}`).toMatch(/Key$|^KEYS\[\d\]$/);
      }
    }
  });
});
