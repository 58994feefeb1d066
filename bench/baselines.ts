/**
 * The baselines' processes: their serverless offline (bench/serverless.yml, which also serves the
 * ceiling handler) and the seed design's scheduler. The classic scenarios run one set against the
 * stack's own Redis and DynamoDB Local; the drop scenario another, behind the emulated quotas.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, PROJECT_ROOT, waitForPort } from '../localstack/processes.js';

export interface Baselines {
  readonly url: string;
  readonly child: ChildProcess;
  /** The environment its handlers (and a scheduler started for it) see. */
  readonly env: Record<string, string | undefined>;
  /** Removes its esbuild work folder once it stopped. */
  cleanUp(): void;
}

/** The baselines and the ceiling handler under their own serverless offline, as fcfs-coupons runs. */
export async function startBaselines(connections: Record<string, string>, log: number): Promise<Baselines> {
  const port = await freePort();
  const env = {
    ...process.env,
    ...connections,
    AWS_REGION: 'us-east-1',
    BENCH_BASELINE_PORT: String(port),
    BENCH_BASELINE_LAMBDA_PORT: String(await freePort()),
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    // As the fcfs-coupons stack runs it (localstack/stack.ts): no per-invocation lines.
    SLS_LOG_LEVEL: process.env.SLS_LOG_LEVEL ?? 'warning',
    ESBUILD_WORK_FOLDER: `.esbuild-${port}`,
  };
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'node_modules', 'osls', 'bin', 'serverless.js'), 'offline', 'start'], {
    cwd: join(PROJECT_ROOT, 'bench'),
    env,
    stdio: ['ignore', log, log],
  });
  await waitForPort(port, 'the baselines (serverless offline)', child, 120_000);
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    env,
    cleanUp: () => rmSync(join(PROJECT_ROOT, 'bench', `.esbuild-${port}`), { recursive: true, force: true }),
  };
}

/** The seed design's single scheduler (ZPOPMIN a batch, then per item SISMEMBER, DECR, SADD, insert). */
export function startSeedScheduler(baselines: Baselines, redisPort: number, log: number): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'systems', 'seed-redis-scheduler.ts')], {
    cwd: PROJECT_ROOT,
    env: { ...baselines.env, BENCH_SEED_TABLE: 'bench-seed-redis', BENCH_REDIS_URL: `redis://127.0.0.1:${redisPort}` },
    stdio: ['ignore', log, log],
  });
}
