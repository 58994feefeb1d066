/**
 * Where a run's CPU went, read from Linux's /proc: every process's user + system time, attributed to
 * the nearest ancestor the bench knows by role (a serverless offline's esbuild child counts as that
 * serverless offline), PostgreSQL's processes to "postgresql" (the system service pessimistic-lock
 * loads), and whatever else the machine runs to "other". The machine's own totals come from
 * /proc/stat, including the time the hypervisor took from this VM (steal).
 *
 * Everything a request costs runs on the same cores here (load generator, serverless offline, the
 * Redis gateway, redis-server, DynamoDB Local's JVM, PostgreSQL), so CPU per request summed over those
 * processes, from the first request until everything accepted is persisted, bounds the throughput:
 * N cores cannot keep up with more than N / (CPU seconds per request) requests per second of that work
 * for long (RunCpu.sustainable_rps says what that does not cover).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** One process as /proc/<pid>/stat shows it. */
export interface ProcessTicks {
  readonly pid: number;
  readonly ppid: number;
  /** The executable's name (at most 15 characters, as the kernel keeps it). */
  readonly comm: string;
  /**
   * User + system time, in clock ticks, with that of its children it has collected: a child that exits
   * and is reaped (a PostgreSQL backend, an esbuild run) then still counts, in its parent.
   */
  readonly ticks: number;
}

export interface MachineTicks {
  /** Ticks the cores spent running anything (user, nice, system, irq, softirq), steal excluded. */
  readonly busy: number;
  /** Ticks the hypervisor gave to another VM while this one had work (steal). */
  readonly steal: number;
}

export interface CpuSnapshot {
  readonly at: number;
  readonly machine: MachineTicks;
  /** Clock ticks by role, for every process alive at the snapshot. */
  readonly byRole: ReadonlyMap<string, number>;
}

export interface CpuUsage {
  readonly seconds: number;
  /** Cores busy on average over the interval (every process on the machine). */
  readonly cores_busy: number;
  /** Cores' worth of time the hypervisor took (steal): work this VM wanted to do and could not. */
  readonly steal_cores: number;
  /** CPU seconds by role. */
  readonly by_role_s: Readonly<Record<string, number>>;
}

export const POSTGRESQL = 'postgresql';
export const OTHER = 'other';

/**
 * The role of each process: its own or its nearest known ancestor's, "postgresql" for PostgreSQL's
 * processes, "other" for the rest. Sums ticks by role.
 */
export function ticksByRole(processes: readonly ProcessTicks[], known: ReadonlyMap<number, string>): Map<string, number> {
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const roleOf = (process: ProcessTicks): string => {
    // pids form a tree rooted at 0; the guard only protects against a table read mid-change.
    for (let p: ProcessTicks | undefined = process, hops = 0; p && hops < 64; p = byPid.get(p.ppid), hops += 1) {
      const role = known.get(p.pid);
      if (role) return role;
    }
    return process.comm === 'postgres' ? POSTGRESQL : OTHER;
  };
  const sums = new Map<string, number>();
  for (const p of processes) {
    const role = roleOf(p);
    sums.set(role, (sums.get(role) ?? 0) + p.ticks);
  }
  return sums;
}

/**
 * CPU used between two snapshots. A process that exits in between moves its time into its parent once
 * reaped (ProcessTicks.ticks), so its role keeps it when the parent has the same role, as PostgreSQL's
 * backends and the bench's children's children do. A role's sum never goes backwards by more than a
 * process reparented elsewhere, which the clamp covers.
 */
export function usageBetween(before: CpuSnapshot, after: CpuSnapshot, ticksPerSecond: number): CpuUsage {
  const seconds = (after.at - before.at) / 1_000;
  const delta = (a: number, b: number) => Math.max(0, b - a) / ticksPerSecond;
  const byRole: Record<string, number> = {};
  for (const [role, ticks] of after.byRole) {
    const used = delta(before.byRole.get(role) ?? 0, ticks);
    if (used > 0) byRole[role] = round3(used);
  }
  return {
    seconds: round3(seconds),
    cores_busy: seconds > 0 ? round3(delta(before.machine.busy, after.machine.busy) / seconds) : 0,
    steal_cores: seconds > 0 ? round3(delta(before.machine.steal, after.machine.steal) / seconds) : 0,
    by_role_s: byRole,
  };
}

/** Reads snapshots of this machine; undefined where there is no /proc (not Linux). */
export function procCpuMeter(known: ReadonlyMap<number, string>): { snapshot(): CpuSnapshot; ticksPerSecond: number } | undefined {
  if (!existsSync('/proc/stat')) return undefined;
  const ticksPerSecond = clockTicksPerSecond();
  return {
    ticksPerSecond,
    snapshot: () => ({ at: Date.now(), machine: machineTicks(readFileSync('/proc/stat', 'utf8')), byRole: ticksByRole(processTable(), known) }),
  };
}

/** The aggregate "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal guest guest_nice. */
export function machineTicks(procStat: string): MachineTicks {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no aggregate cpu line');
  // idle and iowait are not busy; guest and guest_nice are already counted in user and nice.
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number) as number[];
  return { busy: user! + nice! + system! + irq! + softirq!, steal: steal! };
}

/** One line of /proc/<pid>/stat. The name is in parentheses and may itself hold spaces or parentheses. */
export function parseProcessStat(stat: string): ProcessTicks {
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  // After the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
  // cutime cstime ...
  const fields = stat.slice(close + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  return { pid: Number(stat.slice(0, open).trim()), ppid: Number(fields[1]), comm: stat.slice(open + 1, close), ticks };
}

function processTable(): ProcessTicks[] {
  const table: ProcessTicks[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      table.push(parseProcessStat(readFileSync(`/proc/${entry}/stat`, 'utf8')));
    } catch {
      // Exited between the listing and the read.
    }
  }
  return table;
}

function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(ticks) && ticks > 0) return ticks;
  } catch {
    // No getconf: Linux's USER_HZ is 100 on every architecture Node runs on.
  }
  return 100;
}

const round3 = (n: number) => Math.round(n * 1_000) / 1_000;

export interface RunCpu {
  /** From the first request to the end of the load: how busy the machine was while it was measured. */
  readonly during_load: CpuUsage;
  /**
   * From the first request until everything accepted was persisted (the bench's final read of the
   * items not included), every process on the machine.
   */
  readonly until_persisted: CpuUsage;
  /** CPU milliseconds per request over until_persisted, for each process the system uses. */
  readonly per_request_ms: Readonly<Record<string, number>>;
  readonly per_request_ms_total: number;
  /**
   * Processes the system uses that no snapshot found (PostgreSQL on another host or in another PID
   * namespace, say): their CPU is missing from the figures above.
   */
  readonly unseen: readonly string[];
  readonly cores: number;
  /**
   * cores ÷ CPU per request: the most requests per second these cores keep up with when everything
   * accepted is also persisted, on an otherwise idle machine. A short run can answer faster by leaving
   * persistence for later (the seed design's scheduler does), and one process can cap it lower: a
   * serverless offline runs its handlers' JavaScript on one thread, so it gets little past one core.
   */
  readonly sustainable_rps: number;
}

/**
 * What a run cost the processes its system uses (`processes`, by role): snapshots at its first
 * request, at the end of its load, and once all was persisted.
 */
export function runCpu(
  snapshots: { start: CpuSnapshot; loadEnd: CpuSnapshot; persisted: CpuSnapshot },
  processes: readonly string[],
  requests: number,
  cores: number,
  ticksPerSecond: number,
): RunCpu {
  const untilPersisted = usageBetween(snapshots.start, snapshots.persisted, ticksPerSecond);
  const perRequest: Record<string, number> = {};
  let total = 0;
  for (const role of processes) {
    const seconds = untilPersisted.by_role_s[role] ?? 0;
    if (seconds === 0 || requests === 0) continue;
    perRequest[role] = round3((seconds * 1_000) / requests);
    total += (seconds * 1_000) / requests;
  }
  return {
    during_load: usageBetween(snapshots.start, snapshots.loadEnd, ticksPerSecond),
    until_persisted: untilPersisted,
    per_request_ms: perRequest,
    per_request_ms_total: round3(total),
    unseen: processes.filter((role) => !snapshots.persisted.byRole.has(role)),
    cores,
    sustainable_rps: total > 0 ? Math.round((cores * 1_000) / total) : 0,
  };
}
