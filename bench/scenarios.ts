/**
 * The four scenarios, in full and quick sizes. k6/scenarios.js runs the same shapes against a deployed
 * stage (keep the two in step).
 */
export type ScenarioName = 'seed-profile' | 'max-throughput' | 'burst' | 'constant-rate';

/** One step of a closed-loop load: `connections` virtual users for `seconds`. */
export interface Step {
  readonly seconds: number;
  readonly connections: number;
}

export interface Scenario {
  readonly name: ScenarioName;
  readonly description: string;
  /** Units of the coupon the scenario runs on. */
  readonly units: number;
  /** Closed-loop steps (seed-profile ramps are run as steps), or one open/closed run. */
  readonly steps?: readonly Step[];
  /** Think time of each virtual user after each answer (seed-profile: 0.1 s, as the seed's k6 sleep). */
  readonly thinkMs?: number;
  /** Fixed number of requests (burst). */
  readonly amount?: number;
  readonly connections?: number;
  readonly seconds?: number;
  /** Open loop: arrivals per second regardless of answers. */
  readonly overallRate?: number;
  /** How users are drawn: random in 1..n, or a new user for every request. */
  readonly users: { readonly kind: 'random'; readonly count: number } | { readonly kind: 'new' } | { readonly kind: 'spread'; readonly count: number };
}

/**
 * A linear ramp from one number of virtual users to another, as at most `parts` steps of at least one
 * second each (the quick ramps last a second: one step, not three a third of a second long). Each
 * step holds the ramp's value at its middle, so the steps send what the ramp would.
 */
function ramp(from: number, to: number, seconds: number, parts: number): Step[] {
  const steps = Math.max(1, Math.min(parts, Math.floor(seconds)));
  return Array.from({ length: steps }, (_, i) => ({
    seconds: seconds / steps,
    connections: Math.max(1, Math.round(from + ((to - from) * (i + 0.5)) / steps)),
  }));
}

export function scenarios(quick: boolean): Scenario[] {
  // The seed's k6 stages (1 min to 50, 2 min at 50, 1 min to 100, 1 min at 100, 1 min to 0) compressed
  // 4x (full) or 60x (quick: 6 s, of which 3 s at 50 and 100 virtual users).
  const k = quick ? 1 / 60 : 1 / 4;
  return [
    {
      name: 'seed-profile',
      description: `the seed's k6 shape compressed ${quick ? 60 : 4}x: ramp to 50 VUs, hold, ramp to 100, hold, ramp down; 0.1 s think time; users random in 1..5,000`,
      units: 10_000,
      steps: [
        ...ramp(0, 50, 60 * k, 3),
        { seconds: 120 * k, connections: 50 },
        ...ramp(50, 100, 60 * k, 2),
        { seconds: 60 * k, connections: 100 },
        ...ramp(100, 0, 60 * k, 3),
      ],
      thinkMs: 100,
      users: { kind: 'random', count: 5_000 },
    },
    {
      name: 'max-throughput',
      description: `closed loop, 100 connections, a new user on every request, plenty of stock, ${quick ? 5 : 30} s`,
      units: 10_000_000,
      connections: 100,
      seconds: quick ? 5 : 30,
      users: { kind: 'new' },
    },
    {
      name: 'burst',
      description: quick
        ? '5,000 requests from 1,500 users on a 500-unit coupon, 100 connections'
        : '100,000 requests from 30,000 users on a 10,000-unit coupon, 100 connections',
      units: quick ? 500 : 10_000,
      amount: quick ? 5_000 : 100_000,
      connections: 100,
      users: { kind: 'spread', count: quick ? 1_500 : 30_000 },
    },
    {
      name: 'constant-rate',
      description: `open loop, ${quick ? 1_000 : 2_000} arrivals/s for ${quick ? 5 : 30} s, a new user on every request`,
      units: 10_000_000,
      overallRate: quick ? 1_000 : 2_000,
      // Enough connections for two seconds of arrivals in flight; beyond that a due request waits for a
      // connection, and its latency counts from when it was due.
      connections: quick ? 2_000 : 4_000,
      seconds: quick ? 5 : 30,
      users: { kind: 'new' },
    },
  ];
}
