import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoad, runOpenLoop, runVirtualUsers, type LoadResult } from '../bench/load.js';

/**
 * The bench's invariants rest on how its load generators read answers: a 200 belongs to the user it
 * names, serverless offline's 200 with an error body is the failure it stands for, and a 5xx is an
 * answer of unknown outcome (the invariant allows for it as for an unanswered request). A server that
 * answers like serverless offline does, by user: u0 holds a unit, u1 is sold out, u2's handler threw,
 * u3's handler outran its Lambda timeout.
 */
const answers: Record<string, { status: number; body: unknown }> = {
  u0: { status: 200, body: { result: 'ACCEPTED', userId: 'u0' } },
  u1: { status: 409, body: { error: 'SOLD_OUT' } },
  u2: { status: 200, body: { errorMessage: 'boom', errorType: 'Error', stackTrace: [] } },
  u3: { status: 200, body: { errorMessage: '[504] - Lambda timeout.', errorType: 'LambdaTimeoutError', stackTrace: [] } },
};

let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const userId = /\/users\/([^/]+)\//.exec(req.url ?? '')?.[1] ?? '';
    const answer = answers[userId] ?? { status: 400, body: { error: 'INVALID_REQUEST' } };
    req.resume();
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Cycles through u0..u3, so a run of 4n requests sends n of each. */
function cycling(): () => string {
  let n = 0;
  return () => `u${n++ % 4}`;
}
const path = (userId: string) => `/api/v2/users/${userId}/coupons/c1/issue`;

function expectClassified(load: LoadResult, each: number): void {
  expect(load.statuses).toEqual({ 200: each, 409: each, 500: each, 504: each });
  expect([...load.usersWith200]).toEqual(['u0']);
  expect(load.answered5xx).toBe(2 * each);
  expect(load.unanswered).toBe(0);
  expect(load.requests).toBe(4 * each);
}

describe('bench load generators: reading answers', () => {
  it('autocannon (closed loop): a crash body counts as 500, a Lambda timeout as 504, both as 5xx; a 200 for its user', async () => {
    const load = await runLoad({ baseUrl, path, nextUser: cycling(), connections: 1, amount: 40 });
    expectClassified(load, 10);
  });

  it('open loop: the same reading', async () => {
    const load = await runOpenLoop({ baseUrl, path, nextUser: cycling(), ratePerSecond: 200, seconds: 0.2, maxConnections: 4 });
    expectClassified(load, 10);
  });

  it('virtual users: the same reading', async () => {
    const load = await runVirtualUsers({ baseUrl, path, nextUser: cycling(), steps: [{ seconds: 0.3, connections: 1 }], thinkMs: 0 });
    // One user cycling through u0..u3 for a fixed time: each answer kind comes within one of the others.
    const counts = [200, 409, 500, 504].map((status) => load.statuses[status] ?? 0);
    expect(Object.keys(load.statuses).sort()).toEqual(['200', '409', '500', '504']);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(load.requests);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(load.answered5xx).toBe(counts[2]! + counts[3]!);
    expect([...load.usersWith200]).toEqual(['u0']);
  });
});
