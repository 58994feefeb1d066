/**
 * `node --import tsx bench/upstash-client.ts`: the Upstash REST clients side by side, in one run, on
 * the same local gateway (a child process, so its CPU is not counted) and the same script: N EVALSHA
 * with C in flight, per client, rounds interleaved (a round runs every client once, in a rotated order).
 * Prints each client's median CPU per call (user + system of this process) and calls per second, and
 * their ratios to the first. The decision it informed, with the baseline it was measured against (today's
 * client then, gone since): docs/decisions/0013-upstash-client-transport.md.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from '@upstash/redis';
import { UpstashClient } from '../lib/redis/client.js';
import { NodeRequester } from '../lib/redis/node-requester.js';
import { LuaScript } from '../lib/redis/script.js';
import { parseCommandLine } from '../localstack/command-line.js';
import { freePort, startRedis, stopChild } from '../localstack/processes.js';
import { startGateway } from '../localstack/upstash-gateway.js';

const TOKEN = 'bench';

if (process.argv[2] === '--serve') {
  const gateway = await startGateway({ port: Number(process.argv[3]), redisPort: Number(process.argv[4]), token: TOKEN });
  process.stdout.write(`${gateway.url}\n`);
} else {
  await main();
}

async function main(): Promise<void> {
  const values = parseCommandLine(
    { name: 'bench:upstash-client', usage: 'node --import tsx bench/upstash-client.ts [--calls N] [--rounds R] [--concurrency C]', refusedExitCode: 2 },
    { calls: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '7' }, concurrency: { type: 'string', default: '8' } },
  );
  const calls = Number(values.calls);
  const rounds = Number(values.rounds);
  const concurrency = Number(values.concurrency);

  const dir = mkdtempSync(join(tmpdir(), 'fcfs-client-bench-'));
  const redisPort = await freePort();
  const redis = await startRedis({ port: redisPort, dataDir: dir, durable: false });
  const gatewayPort = await freePort();
  const gateway = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--serve', String(gatewayPort), String(redisPort)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise<string>((resolve) => gateway.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
    const requester = () => new NodeRequester({ url, token: TOKEN, retries: 1, timeoutMs: 2_000 });
    // An admission-sized reply: a status code, a ticket and Redis' clock.
    const script = new LuaScript('bench', "redis.call('INCR', KEYS[1]) return {1, ARGV[1], tostring(redis.call('TIME')[1])}");
    const keys = ['bench:counter'];
    const clients: Record<string, (i: number) => Promise<unknown>> = {};
    const sdk = new Redis(requester());
    clients['sdk: new Redis(requester)'] = (i) => script.run(sdk, keys, [`u${i}`]);
    const own = new UpstashClient(requester());
    clients['own: UpstashClient(requester)'] = (i) => script.run(own, keys, [`u${i}`]);
    const sdkFetch = new Redis({
      url,
      token: TOKEN,
      automaticDeserialization: false,
      enableAutoPipelining: false,
      enableTelemetry: false,
      retry: { retries: 1 },
    });
    clients['sdk over fetch (its own transport)'] = (i) => script.run(sdkFetch, keys, [`u${i}`]);

    const names = Object.keys(clients);
    const results = new Map<string, { cpuUs: number[]; perSecond: number[] }>(names.map((name) => [name, { cpuUs: [], perSecond: [] }]));
    for (const name of names) await run(clients[name]!, 200, concurrency); // warm up: connections, JIT, script cache
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(round + k) % names.length]!;
        const { cpuUs, seconds } = await run(clients[name]!, calls, concurrency);
        results.get(name)!.cpuUs.push(cpuUs / calls);
        results.get(name)!.perSecond.push(calls / seconds);
      }
    }
    const base = results.get(names[0]!)!;
    console.log(`${calls} EVALSHA x ${rounds} rounds, ${concurrency} in flight, Node ${process.version}; medians (min-max)`);
    console.log(`${'client'.padEnd(36)} ${'CPU us/call'.padStart(22)} ${'calls/s'.padStart(22)} ${'CPU ratio'.padStart(10)} ${'rate ratio'.padStart(10)}`);
    for (const [name, r] of results) {
      const range = (xs: number[]) => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;
      console.log(
        `${name.padEnd(36)} ${range(r.cpuUs).padStart(22)} ${range(r.perSecond).padStart(22)} ${(median(r.cpuUs) / median(base.cpuUs)).toFixed(2).padStart(10)} ${(median(r.perSecond) / median(base.perSecond)).toFixed(2).padStart(10)}`,
      );
    }
  } finally {
    gateway.kill();
    await stopChild(redis);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(call: (i: number) => Promise<unknown>, calls: number, concurrency: number): Promise<{ cpuUs: number; seconds: number }> {
  let next = 0;
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < calls) {
        const reply = await call(next++);
        if (!Array.isArray(reply) || reply[0] !== 1) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  return { cpuUs: used.user + used.system, seconds };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
