/**
 * Sends a drop's planned requests at their due times (an open loop: arrivals do not wait for answers)
 * over at most `connections` sockets, as Lambda's concurrency bounds what runs at once. A request due
 * while every socket is busy waits, and its latency counts from when it was due. What is still
 * unanswered at the deadline is abandoned and counted as such.
 */
import http from 'node:http';
import type { Phase, PlannedRequest } from './shape.js';

export interface Answer {
  readonly phase: Phase;
  readonly userId: string;
  readonly status: number;
  /** The answer's result or error code (ACCEPTED, ALREADY_ACCEPTED, SOLD_OUT, NOT_OPEN, ...). */
  readonly outcome: string;
  readonly latencyMs: number;
  /** When it was answered, ms from the opening. */
  readonly answeredAt: number;
}

export interface DropLoad {
  readonly answers: Answer[];
  /**
   * Requests that reached the system (were given a connection) before the deadline, answered or not:
   * what it is billed for. One still waiting for a connection at the deadline never reached it.
   */
  readonly sent: number;
  /** Requests not sent, or sent and not answered, when the deadline came. */
  readonly unanswered: number;
  readonly errors: number;
  /** Every request answered before the deadline. */
  readonly finished: boolean;
}

export interface DropLoadSpec {
  readonly baseUrl: string;
  readonly path: (userId: string) => string;
  readonly plan: readonly PlannedRequest[];
  /** Epoch ms of the opening (the plan's time 0). */
  readonly openingAt: number;
  readonly connections: number;
  /** Epoch ms after which nothing more is sent and what is in flight is abandoned. */
  readonly deadlineAt: number;
  /** The user of a tail slot, chosen when it is sent (winners asking again, then losers), from the answers so far. */
  readonly tailUser: (slot: number, answers: readonly Answer[]) => string;
}

const TICK_MS = 2;

export async function sendDrop(spec: DropLoadSpec): Promise<DropLoad> {
  const base = new URL(spec.baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const answers: Answer[] = [];
  let errors = 0;
  const inFlight = new Set<Promise<void>>();
  /** Requests not yet answered, on a connection or waiting for one: stopped at the deadline. */
  const open = new Set<http.ClientRequest>();
  const perfAtOpening = performance.now() + (spec.openingAt - Date.now());

  const send = (request: PlannedRequest) => {
    const userId = typeof request.user === 'string' ? request.user : spec.tailUser(request.user.tailSlot, answers);
    const due = perfAtOpening + request.at;
    const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req: http.ClientRequest = http.request({ host: base.hostname, port: base.port, path: spec.path(userId), method: 'POST', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          open.delete(req);
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      });
      open.add(req);
      req.on('error', reject);
      req.end();
    }).then(
      ({ status, body }) => {
        const now = performance.now();
        answers.push({ phase: request.phase, userId, status, outcome: outcomeOf(status, body), latencyMs: now - due, answeredAt: now - perfAtOpening });
      },
      () => {
        errors += 1;
      },
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  };

  let next = 0;
  while (next < spec.plan.length && Date.now() < spec.deadlineAt) {
    const now = performance.now() - perfAtOpening;
    while (next < spec.plan.length && spec.plan[next]!.at <= now) send(spec.plan[next++]!);
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
  const remaining = Math.max(0, spec.deadlineAt - Date.now());
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all([...inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, remaining)))]);
  clearTimeout(timer);
  const abandoned = inFlight.size;
  // Nothing more reaches the system after the deadline: what waits for a connection is dropped too.
  const failed = errors;
  const answered = [...answers];
  for (const req of open) req.destroy();
  agent.destroy();
  const unanswered = spec.plan.length - next + abandoned;
  // Reached it: answered, failed, or on one of the connections when the deadline came.
  const sent = answered.length + failed + Math.min(abandoned, spec.connections);
  return { answers: answered, sent, unanswered, errors: failed, finished: unanswered === 0 && failed === 0 };
}

/** "ACCEPTED", "SOLD_OUT", ...: the answer's `result` or `error`, else its status. */
function outcomeOf(status: number, body: string): string {
  try {
    const answer = JSON.parse(body) as { result?: unknown; error?: unknown; errorType?: unknown };
    if (answer.errorType !== undefined) return 'CRASHED';
    if (typeof answer.result === 'string') return answer.result;
    if (typeof answer.error === 'string') return answer.error;
  } catch {
    // not JSON
  }
  return String(status);
}
