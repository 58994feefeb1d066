/**
 * The load generators (k6, when on PATH, runs the k6/ scripts instead):
 * - runLoad: autocannon, a well-kept Node load generator, for closed loops without think time
 *   (max-throughput, burst, warm-ups, probes);
 * - runVirtualUsers: virtual users that think between iterations, as k6's do (seed-profile);
 * - runOpenLoop: arrivals evenly spaced at a fixed rate, as k6's constant-arrival-rate (constant-rate).
 * The last two use Node's own HTTP client, because autocannon's rate limits send each second's quota
 * in one burst. Every request's latency and status is kept, so percentiles are exact, and each
 * response is attributed to its user, so the bench knows who holds a unit.
 */
import http from 'node:http';
import autocannon from 'autocannon';

export interface LoadSpec {
  /** Base URL plus a path prefix, e.g. http://127.0.0.1:8080 */
  readonly baseUrl: string;
  /** Path of the issue request for one user. */
  readonly path: (userId: string) => string;
  /** Picks the user of the next request. */
  readonly nextUser: () => string;
  readonly connections: number;
  readonly durationSeconds?: number;
  /** Stop after this many requests (instead of a duration). */
  readonly amount?: number;
}

export interface LoadResult {
  readonly requests: number;
  readonly durationMs: number;
  readonly latenciesMs: number[];
  readonly statuses: Record<string, number>;
  /** Socket errors and timeouts. */
  readonly errors: number;
  /** Users that received a 200 (they hold a unit, or were told their request was received). */
  readonly usersWith200: Set<string>;
  /** Requests sent without an answer (in flight when a timed run ended, timed out, connection lost): they may have been served. */
  readonly unanswered: number;
  /**
   * Requests answered 5xx: a handler that outran its Lambda timeout (which serverless offline answers
   * without stopping it), that crashed, or whose store did not answer in time (503). Each may still
   * have been served, so, like an unanswered request, its outcome is unknown.
   */
  readonly answered5xx: number;
  /** Start of each request relative to the run's start (ms), with its status, for charts. */
  readonly timeline: { t: number; status: number }[];
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const statuses: Record<string, number> = {};
  const usersWith200 = new Set<string>();
  const timeline: { t: number; status: number }[] = [];
  const started = Date.now();
  let sent = 0;
  let unattributed = 0;
  // Set by onResponse and read by the 'response' event autocannon emits right after it, synchronously.
  let crashStatus: number | undefined;
  const instance = autocannon({
    url: spec.baseUrl,
    connections: spec.connections,
    pipelining: 1,
    timeout: 10,
    ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.durationSeconds ?? 10 }),
    requests: [
      {
        method: 'POST',
        setupRequest: (request: Record<string, unknown>) => {
          const userId = spec.nextUser();
          sent += 1;
          return { ...request, path: spec.path(userId) };
        },
        // A 200 is credited to the user the answer names (every system's 200 carries "userId"), not to
        // autocannon's per-connection context, which is not tied to one request. A handler that threw
        // or timed out is answered by serverless offline with 200 and the error as the body: it is
        // counted as the status that error stands for (see parseAnswer).
        onResponse: (status: number, body: string) => {
          crashStatus = undefined;
          if (status !== 200) return;
          const answer = parseAnswer(body);
          if (answer.crashStatus !== undefined) crashStatus = answer.crashStatus;
          else if (answer.userId === undefined) unattributed += 1;
          else usersWith200.add(answer.userId);
        },
      },
    ],
  } as unknown as autocannon.Options) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>;
  let lastAnswerAt = started;
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    lastAnswerAt = Date.now();
    latenciesMs.push(responseTime);
    const status = crashStatus ?? statusCode;
    crashStatus = undefined;
    statuses[status] = (statuses[status] ?? 0) + 1;
    timeline.push({ t: Date.now() - started - responseTime, status });
  });
  const result = await instance;
  if (unattributed > 0) throw new Error(`${unattributed} answers 200 did not say which user they were for (a "userId" field)`);
  return {
    requests: latenciesMs.length,
    // Until the last answer: autocannon notices that a fixed amount is done only on its once-a-second
    // tick, so its own end would round every burst up to whole seconds.
    durationMs: Math.max(1, lastAnswerAt - started),
    latenciesMs,
    statuses,
    errors: result.errors + result.timeouts,
    usersWith200,
    unanswered: Math.max(0, sent - latenciesMs.length),
    answered5xx: count5xx(statuses),
    timeline,
  };
}

/**
 * Requests sent with Node's own HTTP client, and what their answers tell, kept as a LoadResult: exact
 * latencies, statuses (a crash body counted as the status it stands for), and the users answered 200.
 */
class Recorder {
  readonly latenciesMs: number[] = [];
  readonly statuses: Record<string, number> = {};
  readonly usersWith200 = new Set<string>();
  readonly timeline: { t: number; status: number }[] = [];
  readonly started = Date.now();
  readonly agent: http.Agent;
  private readonly base: URL;
  private errors = 0;
  private unattributed = 0;
  private lastAnswerAt = this.started;

  constructor(
    baseUrl: string,
    private readonly path: (userId: string) => string,
    maxSockets: number,
  ) {
    this.base = new URL(baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  /**
   * POST the issue request of one user and record its answer. Latency runs from `intendedAt`
   * (performance.now() time, default now): an open loop passes the moment the request was due, so a
   * request that waited for a free connection is charged for the wait (no coordinated omission).
   */
  async send(userId: string, intendedAt = performance.now()): Promise<void> {
    const sentAtMs = Date.now() - this.started;
    try {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(
          { host: this.base.hostname, port: this.base.port, path: this.path(userId), method: 'POST', agent: this.agent, timeout: REQUEST_TIMEOUT_MS },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end();
      });
      this.latenciesMs.push(performance.now() - intendedAt);
      this.lastAnswerAt = Date.now();
      const parsed = answer.status === 200 ? parseAnswer(answer.body) : {};
      const status = parsed.crashStatus ?? answer.status;
      this.statuses[status] = (this.statuses[status] ?? 0) + 1;
      this.timeline.push({ t: sentAtMs, status });
      if (status === 200) {
        if (parsed.userId === undefined) this.unattributed += 1;
        else this.usersWith200.add(parsed.userId);
      }
    } catch {
      this.errors += 1;
    }
  }

  /** The result of a run planned to end at `endAt` (epoch ms), or at its last answer if later. */
  result(endAt: number): LoadResult {
    this.agent.destroy();
    if (this.unattributed > 0) throw new Error(`${this.unattributed} answers 200 did not say which user they were for (a "userId" field)`);
    return {
      requests: this.latenciesMs.length,
      durationMs: Math.max(1, Math.max(endAt, this.lastAnswerAt) - this.started),
      latenciesMs: this.latenciesMs,
      statuses: this.statuses,
      errors: this.errors,
      usersWith200: this.usersWith200,
      // A request that timed out or lost its connection may still have been served: its outcome is unknown.
      unanswered: this.errors,
      answered5xx: count5xx(this.statuses),
      timeline: this.timeline,
    };
  }
}

/** Virtual users that each send a request, wait for its answer, then think, like a k6 iteration. */
export interface VirtualUsersSpec {
  readonly baseUrl: string;
  readonly path: (userId: string) => string;
  readonly nextUser: () => string;
  /** How many virtual users run during each step (k6's ramping-vus stages, as steps). */
  readonly steps: readonly { readonly seconds: number; readonly connections: number }[];
  /** Pause after each answer (k6's sleep at the end of an iteration). */
  readonly thinkMs: number;
}

/**
 * k6's ramping-vus with a sleep per iteration, in Node: each virtual user has its own keep-alive
 * connection and loops request -> answer -> think. A step that raises the count starts new users, each
 * at a random point of its think time (k6 starts them spread over its ramp, so their requests never
 * line up); a step that lowers it lets the surplus users finish their iteration and stop. Requests
 * still in flight at the end are waited for (up to the request timeout); one that times out counts as
 * unanswered, since the system may still have served it.
 *
 * autocannon's per-connection rate is not used for this: each of its connections sends its quota for
 * the second back to back as soon as the second starts, all on the same tick, so 50 users at 10
 * requests/s arrive as 50 connections firing flat out, then silence: that measures the queue the
 * burst forms, not the system.
 */
export async function runVirtualUsers(spec: VirtualUsersSpec): Promise<LoadResult> {
  const recorder = new Recorder(spec.baseUrl, spec.path, Math.max(...spec.steps.map((s) => s.connections)));
  const endAt = recorder.started + spec.steps.reduce((total, step) => total + step.seconds * 1_000, 0);
  let target = 0;
  // Indices of the users still running. A user stops once its index is at or above the target and its
  // iteration is over; a step that raises the target again lets one still finishing carry on.
  const live = new Set<number>();

  const virtualUser = async (index: number, firstDelayMs: number) => {
    await sleep(firstDelayMs);
    while (index < target && Date.now() < endAt) {
      await recorder.send(spec.nextUser());
      await sleep(spec.thinkMs);
    }
    live.delete(index);
  };

  const users: Promise<void>[] = [];
  for (const step of spec.steps) {
    target = step.connections;
    for (let index = 0; index < target; index++) {
      if (live.has(index)) continue;
      live.add(index);
      users.push(virtualUser(index, Math.random() * spec.thinkMs));
    }
    await sleep(step.seconds * 1_000);
  }
  target = 0;
  await Promise.all(users);
  return recorder.result(endAt);
}

/** Arrivals at a fixed rate, whatever the answers (k6's constant-arrival-rate). */
export interface OpenLoopSpec {
  readonly baseUrl: string;
  readonly path: (userId: string) => string;
  readonly nextUser: () => string;
  readonly ratePerSecond: number;
  readonly seconds: number;
  /** Connections the generator may open; a request due while all are busy waits, and is charged for it. */
  readonly maxConnections: number;
}

/**
 * An open loop: request i is due at start + i / rate and is sent then, whether or not earlier ones
 * were answered, so a slow system faces the same arrivals as a fast one. Latency counts from the due
 * time. A tick every few milliseconds sends what has come due, so arrivals are spread evenly over each
 * second (autocannon's overallRate gives each connection a share of the rate, sent at the start of
 * every second: the whole second's arrivals in one burst). Requests in flight at the end are waited for.
 */
export async function runOpenLoop(spec: OpenLoopSpec): Promise<LoadResult> {
  const recorder = new Recorder(spec.baseUrl, spec.path, spec.maxConnections);
  const total = Math.round(spec.ratePerSecond * spec.seconds);
  const startedAt = performance.now();
  const endAt = recorder.started + spec.seconds * 1_000;
  const inFlight: Promise<void>[] = [];
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - startedAt) * spec.ratePerSecond) / 1_000) + 1);
    for (; sent < due; sent++) inFlight.push(recorder.send(spec.nextUser(), startedAt + (sent * 1_000) / spec.ratePerSecond));
    await sleep(TICK_MS);
  }
  await Promise.all(inFlight);
  return recorder.result(endAt);
}

const TICK_MS = 2;
const REQUEST_TIMEOUT_MS = 10_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** serverless offline's own status for a handler that outran its Lambda timeout ("[504] - Lambda timeout."). */
const HANDLER_TIMEOUT_STATUS = 504;

const count5xx = (statuses: Record<string, number>) => Object.entries(statuses).reduce((n, [status, count]) => (Number(status) >= 500 ? n + count : n), 0);

/**
 * A 200's body: the user it names, or, for serverless offline's body of a handler that failed (with
 * payload 2.0 it answers those 200, with `errorType`), the failure's status: 504 for a Lambda timeout
 * (serverless offline's label), 500 for a handler that threw.
 */
function parseAnswer(body: string): { crashStatus?: number; userId?: string } {
  try {
    const answer = JSON.parse(body) as { userId?: unknown; errorType?: unknown };
    if (answer.errorType === 'LambdaTimeoutError') return { crashStatus: HANDLER_TIMEOUT_STATUS };
    if (answer.errorType !== undefined) return { crashStatus: 500 };
    return { userId: typeof answer.userId === 'string' ? answer.userId : undefined };
  } catch {
    return {};
  }
}

/** Exact percentile of a list of numbers (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
