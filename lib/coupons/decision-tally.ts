import { randomBytes } from 'node:crypto';
import { log } from '../log.js';
import { count, milliseconds, type MetricName } from '../metrics.js';
import { decodeDecisionReport, encodeDecisionReport } from '../redis/codec.js';
import type { CouponStore } from '../redis/coupon-store.js';

/** Every answer an admission can give, as the live page and the metrics count them. */
export type Decision = 'ACCEPTED' | 'ALREADY_ACCEPTED' | 'SOLD_OUT' | 'NOT_OPEN' | 'ENDED' | 'RATE_LIMITED' | 'COUPON_NOT_FOUND' | 'UNAVAILABLE';

/** The order of the counters in a container's report (codec of the live hash's c:<container> fields). */
export const DECISIONS: readonly Decision[] = [
  'ACCEPTED',
  'ALREADY_ACCEPTED',
  'SOLD_OUT',
  'NOT_OPEN',
  'ENDED',
  'RATE_LIMITED',
  'COUPON_NOT_FOUND',
  'UNAVAILABLE',
];

const METRIC_OF: Record<Decision, MetricName> = {
  ACCEPTED: 'DecisionAccepted',
  ALREADY_ACCEPTED: 'DecisionAlreadyAccepted',
  SOLD_OUT: 'DecisionSoldOut',
  NOT_OPEN: 'DecisionNotOpen',
  ENDED: 'DecisionEnded',
  RATE_LIMITED: 'DecisionRateLimited',
  COUPON_NOT_FOUND: 'DecisionCouponNotFound',
  UNAVAILABLE: 'Unavailable',
};

/** A container's totals for one coupon since it started: per decision, and how many needed no Redis call. */
export interface DecisionCounts {
  readonly decisions: Readonly<Record<Decision, number>>;
  readonly withoutRedis: number;
}

/** How often a container writes its totals for a coupon to Redis at most (one HSET; see flushDue). */
export const TALLY_FLUSH_MS = 1_000;

interface CouponTally {
  readonly counts: number[];
  withoutRedis: number;
  changed: boolean;
  flushedAt: number;
}

/**
 * What this container decided, per coupon: counted as CloudWatch metrics (one EMF line per invocation,
 * no network call), and reported for the live operator page by one HSET per coupon and second at most,
 * sent alongside a request's own Redis call (flushDue), never as a call of its own per request.
 *
 * A report is the container's running total under its own field (c:<containerId>), so reports are
 * idempotent and the page sums the fields: a lost or repeated write changes nothing, and a container
 * that has gone keeps its last total. A container's last second of decisions is reported with its next
 * request; the page says the totals lag by up to that long.
 */
export class DecisionTally {
  readonly containerId = randomBytes(6).toString('base64url');
  private readonly tallies = new Map<string, CouponTally>();

  constructor(private readonly flushEveryMs = TALLY_FLUSH_MS) {}

  /**
   * Count an answer. Only a coupon that exists (`known`: Redis showed its state) is tallied for the
   * page: answers about made-up coupon ids are metrics only, so a flood of them writes nothing to Redis.
   */
  record(couponId: string, decision: Decision, answeredWithoutRedis: boolean, known: boolean): void {
    count(METRIC_OF[decision]);
    if (answeredWithoutRedis) count('AnsweredWithoutRedis');
    if (!known) return;
    const tally = this.tallyOf(couponId);
    tally.counts[DECISIONS.indexOf(decision)]! += 1;
    if (answeredWithoutRedis) tally.withoutRedis += 1;
    tally.changed = true;
  }

  /** The time one Redis call of an admission took, as a metric. */
  redisLatency(ms: number): void {
    milliseconds('RedisLatency', ms);
  }

  /**
   * Write this container's totals for the coupon if they changed and the last write is older than the
   * interval; undefined when there is nothing to write. Never rejects: the page is only an observer.
   */
  flushDue(couponId: string, store: CouponStore, now = Date.now()): Promise<void> | undefined {
    const tally = this.tallies.get(couponId);
    if (!tally?.changed || now - tally.flushedAt < this.flushEveryMs) return undefined;
    tally.changed = false;
    tally.flushedAt = now;
    const report = encodeDecisionReport([...tally.counts, tally.withoutRedis], now);
    return store.reportDecisions(couponId, this.containerId, report).catch((error: unknown) => {
      tally.changed = true;
      log.debug('could not report decisions for the live page', { couponId, error });
    });
  }

  private tallyOf(couponId: string): CouponTally {
    let tally = this.tallies.get(couponId);
    if (!tally) {
      tally = { counts: DECISIONS.map(() => 0), withoutRedis: 0, changed: false, flushedAt: 0 };
      this.tallies.set(couponId, tally);
    }
    return tally;
  }
}

/** A container's report as written by flushDue; undefined when it cannot be read. */
export function parseDecisionReport(value: string): (DecisionCounts & { readonly at: number }) | undefined {
  const report = decodeDecisionReport(value, DECISIONS.length + 1);
  if (!report) return undefined;
  const decisions = Object.fromEntries(DECISIONS.map((decision, i) => [decision, report.numbers[i]!])) as Record<Decision, number>;
  return { decisions, withoutRedis: report.numbers[DECISIONS.length]!, at: report.at };
}
