/**
 * What a bench run records for the classic scenarios (bench/run.ts writes it, bench/report.ts reads it).
 */
import type { RunCpu } from './cpu.js';
import type { SystemName } from './systems.js';

export interface HttpCeiling {
  requests: number;
  rps: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  /** CPU milliseconds per request of the handler's serverless offline and the load generator together. */
  cpu_per_request_ms?: number;
}

export interface Ceilings {
  serverless_offline_trivial_handler: HttpCeiling;
  /** The same do-nothing handler under seed-profile's virtual users: the latency floor for that scenario. */
  serverless_offline_trivial_handler_seed_profile: HttpCeiling;
  ledger_direct: { items: number; batch: number; items_per_s: number };
}

export interface Run {
  system: SystemName;
  scenario: string;
  requests: number;
  rps: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  non2xx_unexpected: number;
  errors: number;
  issued: number;
  /** Units the answers promise: users answered 200, capped at the coupon's units. */
  expected_issued: number;
  /** Requests in flight when a timed run stopped: they may be issued without the bench seeing the 200. */
  unanswered_at_end: number;
  /** Requests answered 5xx (timed out, crashed, store unavailable): they may be issued too. */
  answered_5xx: number;
  /** Accepted-to-persisted lag (asynchronous systems; 0 for synchronous ones). */
  lag_p50_ms?: number;
  lag_p95_ms?: number;
  lag_p99_ms?: number;
  /** From the first request to the last unit persisted. */
  persisted_after_ms?: number;
  /** Items written per second between the first and the last write. */
  persist_rate_per_s?: number;
  statuses: Record<string, number>;
  /**
   * Cumulative persisted items at the end of each step of persisted_timeline_step_ms since the run's
   * start (burst), for the drain chart.
   */
  persisted_timeline?: number[];
  persisted_timeline_step_ms?: number;
  /** Where the CPU went (Linux only): by process, per request, and what the machine's cores keep up with. */
  cpu?: RunCpu;
  invariant_failures: string[];
}
