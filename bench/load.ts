/**
 * The load generator: autocannon (a well-kept Node load generator; k6, when on PATH, runs the k6/
 * scripts instead). Every request's latency and status is kept, so percentiles are exact, and each
 * response is attributed to its user, so the bench knows who holds a unit.
 */
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
  /** Open loop: requests per second across all connections. */
  readonly overallRate?: number;
  /** Requests per second per connection (a virtual user's think time). */
  readonly connectionRate?: number;
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
  /** Requests sent whose answer the run did not wait for (in flight when a timed run ended). */
  readonly unanswered: number;
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
  let lastAnswerWasCrash = false;
  const instance = autocannon({
    url: spec.baseUrl,
    connections: spec.connections,
    pipelining: 1,
    timeout: 10,
    ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.durationSeconds ?? 10 }),
    ...(spec.overallRate ? { overallRate: spec.overallRate } : {}),
    ...(spec.connectionRate ? { connectionRate: spec.connectionRate } : {}),
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
        // is answered by serverless offline with 200 and the error as the body, where API Gateway would
        // answer 500: it is counted as that 500.
        onResponse: (status: number, body: string) => {
          lastAnswerWasCrash = false;
          if (status !== 200) return;
          const answer = parseAnswer(body);
          if (answer.crashed) lastAnswerWasCrash = true;
          else if (answer.userId === undefined) unattributed += 1;
          else usersWith200.add(answer.userId);
        },
      },
    ],
  } as unknown as autocannon.Options) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>;
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    latenciesMs.push(responseTime);
    const status = lastAnswerWasCrash ? 500 : statusCode;
    lastAnswerWasCrash = false;
    statuses[status] = (statuses[status] ?? 0) + 1;
    timeline.push({ t: Date.now() - started - responseTime, status });
  });
  const result = await instance;
  if (unattributed > 0) throw new Error(`${unattributed} answers 200 did not say which user they were for (a "userId" field)`);
  return {
    requests: latenciesMs.length,
    durationMs: Date.now() - started,
    latenciesMs,
    statuses,
    errors: result.errors + result.timeouts,
    usersWith200,
    unanswered: Math.max(0, sent - latenciesMs.length),
    timeline,
  };
}

function parseAnswer(body: string): { crashed: boolean; userId?: string } {
  try {
    const answer = JSON.parse(body) as { userId?: unknown; errorType?: unknown };
    if (answer.errorType !== undefined) return { crashed: true };
    return { crashed: false, userId: typeof answer.userId === 'string' ? answer.userId : undefined };
  } catch {
    return { crashed: false };
  }
}

/** Exact percentile of a list of numbers (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Merge the results of consecutive stages (a ramp is run as steps). */
export function mergeResults(parts: readonly LoadResult[]): LoadResult {
  let offset = 0;
  const timeline: { t: number; status: number }[] = [];
  for (const part of parts) {
    for (const point of part.timeline) timeline.push({ t: point.t + offset, status: point.status });
    offset += part.durationMs;
  }
  const statuses: Record<string, number> = {};
  for (const part of parts) for (const [code, n] of Object.entries(part.statuses)) statuses[code] = (statuses[code] ?? 0) + n;
  return {
    requests: parts.reduce((n, p) => n + p.requests, 0),
    durationMs: offset,
    latenciesMs: parts.flatMap((p) => p.latenciesMs),
    statuses,
    errors: parts.reduce((n, p) => n + p.errors, 0),
    usersWith200: new Set(parts.flatMap((p) => [...p.usersWith200])),
    unanswered: parts.reduce((n, p) => n + p.unanswered, 0),
    timeline,
  };
}
