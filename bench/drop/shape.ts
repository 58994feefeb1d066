/**
 * The drop: the mission's shape ("hundreds of thousands of requests arrive in seconds"), scaled to this
 * machine, under the cloud's quotas divided by one scale factor (bench/README.md explains the choice):
 *
 *   pre-opening wave   5 % of the requests, spread over the 3 s before the opening
 *   opening burst     90 %: every user once, then half of them again, all within the first 1.5 s
 *   tail               5 % over the next 3 s: every winner asking again, the rest losers asking again
 *
 * 200 requests per unit. k6/scenarios.js (SCENARIO=drop) sends the same shape to a deployed stage.
 */

/** Every emulated quota is the real limit divided by this (docs/quota-emulation.md, bench/README.md). */
export const QUOTA_SCALE = 100;
/** Upstash's cap on one database (most plans), and DynamoDB's per partition. */
export const UPSTASH_COMMANDS_PER_SECOND = 10_000;
export const DYNAMODB_WRITE_UNITS_PER_PARTITION = 1_000;
/** Lambda's default concurrency per account and region: the drop's connections are this / QUOTA_SCALE. */
export const LAMBDA_DEFAULT_CONCURRENCY = 1_000;

export const REQUESTS_PER_UNIT = 200;

export interface DropShape {
  readonly units: number;
  readonly requests: number;
  /** Distinct users of the opening burst. */
  readonly users: number;
  readonly preOpening: { readonly requests: number; readonly seconds: number };
  readonly opening: { readonly requests: number; readonly seconds: number };
  readonly tail: { readonly requests: number; readonly seconds: number };
  /** Requests in flight at most: Lambda's default concurrency scaled like the quotas. */
  readonly connections: number;
  /** A baseline that has not answered every request this long after the opening is stopped there. */
  readonly deadlineSeconds: number;
  /**
   * fcfs-coupons' own limit: it must answer every request, so it is given longer. Its time to decide is
   * bound here by this machine's CPU (one serverless offline process behind `connections`), not by the
   * emulated quotas: a run on loaded cores is slower, not wrong, and should not fail the bench.
   */
  readonly fcfsDeadlineSeconds: number;
  /**
   * Units of the persisting probe: more than one ledger transaction holds (99), so that a partition's
   * capacity decides, not one transaction admitted on a full bucket (bench/README.md).
   */
  readonly probeUnits: number;
  /** Units of each scale_out run (twice as many users, all in the opening). */
  readonly scaleOutUnits: number;
}

export function dropShape(quick: boolean): DropShape {
  const units = quick ? 50 : 500;
  const requests = units * REQUESTS_PER_UNIT;
  const preOpening = Math.round(requests * 0.05);
  const tail = Math.round(requests * 0.05);
  const opening = requests - preOpening - tail;
  return {
    units,
    requests,
    users: Math.ceil(opening / 2),
    preOpening: { requests: preOpening, seconds: 3 },
    opening: { requests: opening, seconds: 1.5 },
    tail: { requests: tail, seconds: 3 },
    connections: LAMBDA_DEFAULT_CONCURRENCY / QUOTA_SCALE,
    deadlineSeconds: quick ? 20 : 120,
    fcfsDeadlineSeconds: quick ? 180 : 900,
    probeUnits: quick ? 120 : 500,
    scaleOutUnits: quick ? 300 : 1_500,
  };
}

export type Phase = 'pre-opening' | 'opening' | 'tail';

export interface PlannedRequest {
  readonly phase: Phase;
  /** Due time, ms from the opening (negative before it). */
  readonly at: number;
  /** The user, or, in the tail, a slot resolved when it is sent (a winner asking again, or a loser). */
  readonly user: string | { readonly tailSlot: number };
}

/** The drop's requests in due order; users are `${prefix}<n>`. Seeded, so every system gets the same plan. */
export function planDrop(shape: DropShape, prefix: string, seed = 1): PlannedRequest[] {
  const random = mulberry32(seed);
  const user = (n: number) => `${prefix}${n}`;
  const plan: PlannedRequest[] = [];
  for (let i = 0; i < shape.preOpening.requests; i++) {
    plan.push({ phase: 'pre-opening', at: -shape.preOpening.seconds * 1_000 * (1 - random()), user: user(Math.floor(random() * shape.users)) });
  }
  const openingMs = shape.opening.seconds * 1_000;
  for (let i = 0; i < shape.opening.requests; i++) {
    // Every user once, then users again at random, each at a random moment of the burst.
    const who = i < shape.users ? i : Math.floor(random() * shape.users);
    plan.push({ phase: 'opening', at: random() * openingMs, user: user(who) });
  }
  for (let i = 0; i < shape.tail.requests; i++) {
    plan.push({ phase: 'tail', at: openingMs + random() * shape.tail.seconds * 1_000, user: { tailSlot: i } });
  }
  return plan.sort((a, b) => a.at - b.at);
}

/** A small seeded generator (mulberry32), so that runs are comparable. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
