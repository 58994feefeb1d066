// k6 scripts for fcfs-coupons: the bench's scenarios (bench/scenarios.ts, bench/drop/shape.ts) against
// any stage.
//
//   k6 run -e BASE_URL=https://<api-id>.execute-api.<region>.amazonaws.com -e ADMIN_TOKEN=... \
//          -e SCENARIO=seed-profile k6/scenarios.js
//
// SCENARIO: seed-profile (default) | max-throughput | burst | constant-rate | drop. QUICK=1 shortens them
// as `npm run bench -- --quick` does. drop: UNITS (default 1,000; QUICK 100) units, 200 requests per unit:
// 5 % in the 3 s before the opening, 90 % in its first 1.5 s, 5 % in the 3 s after (users of the opening
// asking again; k6's virtual users share nothing, so unlike the bench the tail cannot pick the winners).
// Written in the syntax k6 before 0.52 parses (ES2017: no object spread, optional catch binding, ?? or
// ?.); test/k6.test.ts keeps it so. setup() creates a fresh coupon through the admin API (or uses
// COUPON_ID); teardown() waits for the drain and verifies through the API that nothing was oversold or
// lost and nothing was dead-lettered. User routes must not need a JWT and one machine's load must not be
// rate-limited per IP: deploy the benchmark stage with AUTH_MODE=none RATE_LIMIT_IP_PER_SECOND=0 (never a
// production stage). BASE_URL and ADMIN_TOKEN default to `npm start`'s local API and admin token.
import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import { Counter } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const ADMIN_TOKEN = __ENV.ADMIN_TOKEN || 'local-admin-token';
const SCENARIO = __ENV.SCENARIO || 'seed-profile';
const QUICK = __ENV.QUICK === '1';
const k = QUICK ? 1 / 60 : 1 / 4;
const s = (seconds) => `${Math.max(1, Math.round(seconds))}s`;

// The drop (bench/drop/shape.ts): 200 requests per unit in three phases.
const DROP_UNITS = Number(__ENV.UNITS || (QUICK ? 100 : 1000));
const DROP_REQUESTS = DROP_UNITS * 200;
const DROP_USERS = Math.ceil((DROP_REQUESTS * 0.9) / 2);
const DROP_PRE_OPENING_S = 3;
const DROP_OPENING_S = 1.5;
const DROP_TAIL_S = 3;
/**
 * Arrivals at `total` over `seconds`, starting `startTime` into the test.
 * @returns {import('k6/options').Scenario}
 */
function dropPhase(total, seconds, startTime, exec) {
  const rate = Math.max(1, Math.round(total / seconds));
  return {
    executor: /** @type {const} */ ('constant-arrival-rate'),
    exec: exec,
    rate: rate,
    timeUnit: '1s',
    duration: `${seconds * 1000}ms`,
    startTime: `${startTime * 1000}ms`,
    preAllocatedVUs: Math.min(5000, Math.max(10, Math.round(rate / 10))),
    maxVUs: Math.min(20000, Math.max(50, rate)),
  };
}

/**
 * @typedef {{ kind: 'random' | 'spread', count: number } | { kind: 'new' }} Users
 * @type {Record<string, { units: number, users: Users, thinkSeconds?: number, opensInSeconds?: number, scenario?: import('k6/options').Scenario, phases?: Record<string, import('k6/options').Scenario> }>}
 */
const shapes = {
  'seed-profile': {
    units: 10000,
    users: { kind: 'random', count: 5000 },
    thinkSeconds: 0.1,
    scenario: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: s(60 * k), target: 50 },
        { duration: s(120 * k), target: 50 },
        { duration: s(60 * k), target: 100 },
        { duration: s(60 * k), target: 100 },
        { duration: s(60 * k), target: 0 },
      ],
    },
  },
  'max-throughput': {
    units: 10000000,
    users: { kind: 'new' },
    scenario: { executor: 'constant-vus', vus: 100, duration: QUICK ? '5s' : '30s' },
  },
  burst: {
    units: QUICK ? 500 : 10000,
    users: { kind: 'spread', count: QUICK ? 1500 : 30000 },
    scenario: { executor: 'shared-iterations', vus: 100, iterations: QUICK ? 5000 : 100000, maxDuration: '10m' },
  },
  'constant-rate': {
    units: 10000000,
    users: { kind: 'new' },
    // As the bench: enough virtual users for two seconds of arrivals in flight. Past that k6 drops
    // arrivals (its dropped_iterations metric) instead of sending them late.
    scenario: {
      executor: 'constant-arrival-rate',
      rate: QUICK ? 1000 : 2000,
      timeUnit: '1s',
      duration: QUICK ? '5s' : '30s',
      preAllocatedVUs: QUICK ? 500 : 1000,
      maxVUs: QUICK ? 2000 : 4000,
    },
  },
  drop: {
    units: DROP_UNITS,
    users: { kind: 'random', count: DROP_USERS },
    opensInSeconds: DROP_PRE_OPENING_S,
    phases: {
      'pre-opening': dropPhase(DROP_REQUESTS * 0.05, DROP_PRE_OPENING_S, 0, 'preOpening'),
      opening: dropPhase(DROP_REQUESTS * 0.9, DROP_OPENING_S, DROP_PRE_OPENING_S, 'opening'),
      tail: dropPhase(DROP_REQUESTS * 0.05, DROP_TAIL_S, DROP_PRE_OPENING_S + DROP_OPENING_S, 'tail'),
    },
  },
};
const shape = shapes[SCENARIO];
if (!shape) throw new Error(`SCENARIO must be one of ${Object.keys(shapes).join(', ')}`);

// A 409 (sold out, already issued) is a final answer, not a failed request: without this, k6 counts
// every status from 400 up in http_req_failed, and burst (90 % sold out) would always fail its threshold.
http.setResponseCallback(http.expectedStatuses(200, 409));

const unexpected = new Counter('unexpected_status');
const invariantBroken = new Counter('invariant_broken');

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: shape.phases || { [SCENARIO]: shape.scenario },
  thresholds: {
    checks: ['rate>0.99'],
    http_req_failed: ['rate<0.01'],
    unexpected_status: ['count==0'],
    invariant_broken: ['count==0'],
    // The drop's opening is meant to queue behind the quotas: its latency is reported, not a threshold.
    http_req_duration: SCENARIO === 'drop' ? [] : [QUICK ? 'p(95)<500' : 'p(95)<200', 'p(99)<1000'],
  },
  setupTimeout: '60s',
  teardownTimeout: '180s',
};

const admin = { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' } };

export function setup() {
  const couponId = __ENV.COUPON_ID || `k6-${SCENARIO}-${Date.now()}`;
  if (!__ENV.COUPON_ID) {
    // The drop opens once its pre-opening wave has been sent (k6 starts the scenarios right after setup).
    const startsAt = shape.opensInSeconds ? new Date(Date.now() + shape.opensInSeconds * 1000).toISOString() : undefined;
    const created = http.post(
      `${BASE_URL}/api/v2/admin/coupons`,
      JSON.stringify({ couponId, name: `k6 ${SCENARIO}`, totalQuantity: shape.units, startsAt: startsAt }),
      {
        headers: admin.headers,
        responseCallback: http.expectedStatuses(201),
      },
    );
    if (created.status !== 201) fail(`creating coupon ${couponId} answered ${created.status}: ${created.body}`);
  }
  return { couponId };
}

function userFor() {
  if (shape.users.kind === 'random') return `u${1 + Math.floor(Math.random() * shape.users.count)}`;
  if (shape.users.kind === 'spread') return `u${(__ITER * 7919 + __VU * 104729) % shape.users.count}`;
  return `u${__VU}x${__ITER}x${Math.floor(Math.random() * 1e9)}`;
}

export default function (data) {
  issue(data, userFor(), 'issue');
  if (shape.thinkSeconds) sleep(shape.thinkSeconds);
}

/** The drop's phases (options.scenarios' exec): the same request, tagged by phase. */
export function preOpening(data) {
  issue(data, userFor(), 'pre-opening');
}
export function opening(data) {
  issue(data, userFor(), 'opening');
}
export function tail(data) {
  issue(data, userFor(), 'tail');
}

function issue(data, userId, name) {
  const res = http.post(`${BASE_URL}/api/v2/users/${userId}/coupons/${data.couponId}/issue`, null, { tags: { name: name } });
  const ok = check(res, {
    'status is 200 or 409': (r) => r.status === 200 || r.status === 409,
    'answer is final': (r) => {
      /** @type {{ result?: string, error?: string }} */
      let body;
      try {
        body = /** @type {any} */ (r.json());
      } catch (_notJson) {
        return false; // not JSON (a gateway's error page): not a final answer
      }
      return r.status === 200 ? ['ACCEPTED', 'ALREADY_ACCEPTED'].includes(body.result || '') : typeof body.error === 'string';
    },
  });
  if (!ok) unexpected.add(1);
}

export function teardown(data) {
  // Wait for the drain, then check the invariants through the API.
  /** @type {{ queued: number, inflight: number, issued: number, remaining: number, totalQuantity: number, deadLettered: number }} */
  let view;
  for (let i = 0; i < 120; i++) {
    view = /** @type {any} */ (http.get(`${BASE_URL}/api/v2/admin/coupons/${data.couponId}`, admin).json());
    if (view.queued === 0 && view.inflight === 0) break;
    sleep(1);
  }
  const checks = {
    'nothing left queued or in flight': view.queued === 0 && view.inflight === 0,
    'not oversold: issued <= totalQuantity': view.issued <= view.totalQuantity,
    'nothing lost: issued + remaining = totalQuantity': view.issued + view.remaining === view.totalQuantity,
    'nothing dead-lettered': view.deadLettered === 0,
  };
  for (const [name, held] of Object.entries(checks)) {
    check(view, { [name]: () => held });
    if (!held) invariantBroken.add(1);
  }
  console.log(`coupon ${data.couponId}: ${JSON.stringify(view)}`);
}
