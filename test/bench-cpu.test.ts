import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { machineTicks, OTHER, parseProcessStat, POSTGRESQL, procCpuMeter, runCpu, ticksByRole, usageBetween, type CpuSnapshot } from '../bench/cpu.js';

/**
 * The bench's CPU accounting says how many requests per second the machine's cores could sustain at
 * most: it must attribute every process to the right role and count nothing twice.
 */
describe('bench CPU accounting', () => {
  it('attributes a process to its nearest known ancestor, PostgreSQL to postgresql, and the rest to other', () => {
    const processes = [
      { pid: 1, ppid: 0, comm: 'init', ticks: 5 },
      { pid: 10, ppid: 1, comm: 'node', ticks: 100 }, // the bench
      { pid: 11, ppid: 10, comm: 'node', ticks: 300 }, // serverless offline
      { pid: 12, ppid: 11, comm: 'esbuild', ticks: 7 }, // its child
      { pid: 13, ppid: 10, comm: 'java', ticks: 250 },
      { pid: 14, ppid: 10, comm: 'tsx', ticks: 3 }, // unknown child of the bench
      { pid: 20, ppid: 1, comm: 'postgres', ticks: 40 },
      { pid: 21, ppid: 20, comm: 'postgres', ticks: 60 },
      { pid: 30, ppid: 1, comm: 'beam.smp', ticks: 9 },
    ];
    const known = new Map([
      [10, 'bench'],
      [11, 'offline'],
      [13, 'dynamodb-local'],
    ]);
    expect(Object.fromEntries(ticksByRole(processes, known))).toEqual({ bench: 103, offline: 307, 'dynamodb-local': 250, [POSTGRESQL]: 100, [OTHER]: 14 });
  });

  it('reads a process name that holds spaces and parentheses, and counts the children it has reaped', () => {
    const stat = '4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 123 45 7 3 20 0 1 0 555 0 0';
    expect(parseProcessStat(stat)).toEqual({ pid: 4242, ppid: 17, comm: 'my (odd) name', ticks: 178 });
  });

  it('counts steal apart from busy time, idle and iowait not at all, and guest time once', () => {
    const stat = 'cpu  100 10 50 1000 20 5 5 30 40 0\ncpu0 50 5 25 500 10 2 3 15 20 0\n';
    expect(machineTicks(stat)).toEqual({ busy: 170, steal: 30 });
  });

  it("turns snapshots into CPU per request of the system's own processes, and bounds the throughput by the cores", () => {
    const at = (ms: number, busy: number, steal: number, byRole: Record<string, number>): CpuSnapshot => ({
      at: ms,
      machine: { busy, steal },
      byRole: new Map(Object.entries(byRole)),
    });
    const start = at(0, 1_000, 0, { offline: 100, jvm: 50, postgresql: 7, [OTHER]: 10 });
    const loadEnd = at(5_000, 1_900, 50, { offline: 550, jvm: 150, postgresql: 8, [OTHER]: 20 });
    const persisted = at(8_000, 2_200, 50, { offline: 560, jvm: 400, postgresql: 9, [OTHER]: 500 });
    const cpu = runCpu({ start, loadEnd, persisted }, ['offline', 'jvm', 'idle role'], 10_000, 2, 100);
    // 4.6 s of offline and 3.5 s of JVM for 10,000 requests; PostgreSQL and the rest are not this system's.
    expect(cpu.per_request_ms).toEqual({ offline: 0.46, jvm: 0.35 });
    expect(cpu.per_request_ms_total).toBe(0.81);
    expect(cpu.sustainable_rps).toBe(Math.round(2_000 / 0.81));
    expect(cpu.unseen).toEqual(['idle role']);
    expect(cpu.during_load).toMatchObject({ seconds: 5, cores_busy: 1.8, steal_cores: 0.1 });
    expect(cpu.until_persisted.by_role_s).toEqual({ offline: 4.6, jvm: 3.5, postgresql: 0.02, [OTHER]: 4.9 });
    expect(usageBetween(start, start, 100)).toMatchObject({ cores_busy: 0, by_role_s: {} });
  });

  // Each child burns CPU time (not wall time), says so, then idles until killed. The meter and its first
  // snapshot come before the child exists, so nothing it burns is missed.
  const burn = (seconds: number) => `while (process.cpuUsage().user < ${seconds * 1e6});`;
  async function measure(role: string, script: string): Promise<number> {
    const known = new Map<number, string>();
    const meter = procCpuMeter(known)!;
    const before = meter.snapshot();
    const child = spawn(process.execPath, ['-e', `${script} console.log('done'); setTimeout(() => {}, 60000);`]);
    try {
      known.set(child.pid!, role);
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      return usageBetween(before, meter.snapshot(), meter.ticksPerSecond).by_role_s[role] ?? 0;
    } finally {
      child.kill();
    }
  }

  it.runIf(process.platform === 'linux')("reads the CPU a process of a known role used from this machine's /proc", async () => {
    expect(await measure('busy child', burn(0.4))).toBeGreaterThanOrEqual(0.38);
  });

  it.runIf(process.platform === 'linux')("keeps the CPU of a child that exited within the run in its parent's role", async () => {
    // The parent idles while its own child burns and exits (reaped by spawnSync).
    const grandchild = JSON.stringify(burn(0.4));
    const parent = `require('node:child_process').spawnSync(process.execPath, ['-e', ${grandchild}]);`;
    expect(await measure('parent', parent)).toBeGreaterThanOrEqual(0.38);
  });
});
