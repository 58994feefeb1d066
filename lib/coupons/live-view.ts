import { decodePersistLag, liveFieldOf } from '../redis/codec.js';
import type { LiveCounters, LiveReading } from '../redis/coupon-store.js';
import { couponStatus, type CouponStatus } from './campaigns.js';
import { DECISIONS, parseDecisionReport, type Decision } from './decision-tally.js';
import type { Deps } from './deps.js';

/** What the live operator page shows of one coupon (GET /api/v2/admin/coupons/{couponId}/live). */
export interface LiveView {
  readonly couponId: string;
  readonly name: string;
  readonly status: CouponStatus;
  readonly totalQuantity: number;
  readonly startsAt: string;
  readonly endsAt: string | null;
  /** Units left for sale, over every shard (units moving between shards included). */
  readonly remaining: number;
  /** Accepted winners waiting for the drain, claimed by a drain, written in the ledger, dead-lettered. */
  readonly queued: number;
  readonly inflight: number;
  readonly issued: number;
  readonly deadLettered: number;
  /** How long the oldest queued winner has waited, in ms (0 when nothing is queued). */
  readonly oldestQueuedMs: number;
  /**
   * Every container's running totals of answers, summed: a container reports at most once a second,
   * alongside a request, so these lag by up to a second (a container's last second until its next
   * request). Rates are the difference between two readings.
   */
  readonly decisions: Readonly<Record<Decision, number>>;
  /** Of those answers, how many a container gave without asking Redis. */
  readonly answeredWithoutRedis: number;
  /** Containers that have reported, and those that did in the last 10 s. */
  readonly containers: { readonly reported: number; readonly recent: number };
  /** The drains' running totals (record-drain.lua). */
  readonly drain: {
    readonly issued: number;
    readonly redelivered: number;
    readonly rejected: number;
    readonly deadLettered: number;
    readonly stale: number;
    /** Ledger writes throttled (a partition over its capacity): each slowed the drain down. */
    readonly throttled: number;
  };
  /** Accepted-to-written lag of the latest batch written (the worst shard's), or null before any. */
  readonly persistLag: { readonly p50Ms: number; readonly p99Ms: number; readonly maxMs: number; readonly at: string } | null;
  readonly shards: number;
  /** Shards whose Redis has no state for the coupon (lost, being restored): their counts are missing. */
  readonly shardsWithoutState: number;
  /** Redis' time of the reading (ISO), and when this view was read (it is shared for up to LIVE_VIEW_TTL_MS). */
  readonly readAt: string;
}

/** A view is read at most once per this long per container, whoever asks: every viewer shares it. */
export const LIVE_VIEW_TTL_MS = 1_000;

const RECENT_REPORT_MS = 10_000;

/**
 * The live views of one container: each coupon's view is read at most once per LIVE_VIEW_TTL_MS, and
 * viewers asking while it is read wait for the same reading. One reading costs one EVALSHA per shard
 * (read-live.lua) and one strongly consistent GetItem of the coupon (1 read unit), whoever watches.
 */
export class LiveViews {
  private readonly views = new Map<string, { readonly at: number; readonly view: Promise<LiveView | undefined> }>();

  constructor(
    private readonly deps: Pick<Deps, 'shards' | 'ledger'>,
    private readonly ttlMs = LIVE_VIEW_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get(couponId: string): Promise<LiveView | undefined> {
    const cached = this.views.get(couponId);
    if (cached && this.now() - cached.at < this.ttlMs) return cached.view;
    const view = readLiveView(this.deps, couponId);
    this.views.set(couponId, { at: this.now(), view });
    // A failed reading is not shared beyond its own viewers.
    view.catch(() => this.views.get(couponId)?.view === view && this.views.delete(couponId));
    return view;
  }
}

/** One reading of a coupon's live view; undefined when the ledger has no such coupon. */
export async function readLiveView(deps: Pick<Deps, 'shards' | 'ledger'>, couponId: string): Promise<LiveView | undefined> {
  const [record, ...readings] = await Promise.all([deps.ledger.getCoupon(couponId, true), ...deps.shards.stores.map((store) => store.readLive(couponId))]);
  if (!record) return undefined;
  const present = readings.filter((reading): reading is LiveReading => reading !== undefined);
  const sum = (pick: (reading: LiveReading) => number) => present.reduce((total, reading) => total + pick(reading), 0);
  const redisNow = present.length > 0 ? Math.max(...present.map((reading) => reading.now)) : Date.now();
  const oldest = present.map((reading) => reading.oldestQueuedAt).filter((at): at is number => at !== undefined);
  const counters: LiveCounters = {
    total: record.totalQuantity,
    remaining: sum((r) => r.remaining + r.inTransit),
    seq: sum((r) => r.seq),
    startsAt: record.startsAt,
    endsAt: record.endsAt ?? 0,
    queued: sum((r) => r.queued),
    inflight: sum((r) => r.inflight),
    deadLettered: sum((r) => r.deadLettered),
    now: redisNow,
    shard: 0,
    shards: deps.shards.count,
    inTransit: sum((r) => r.inTransit),
  };
  const decisions = Object.fromEntries(DECISIONS.map((decision) => [decision, 0])) as Record<Decision, number>;
  let answeredWithoutRedis = 0;
  let reported = 0;
  let recent = 0;
  const drain = { issued: 0, redelivered: 0, rejected: 0, deadLettered: 0, stale: 0, throttled: 0 };
  let persistLag: LiveView['persistLag'] = null;
  for (const reading of present) {
    for (const [field, value] of reading.reports) {
      const kind = liveFieldOf(field);
      if (kind.kind === 'decisions') {
        const report = parseDecisionReport(value);
        if (!report) continue;
        for (const decision of DECISIONS) decisions[decision] += report.decisions[decision];
        answeredWithoutRedis += report.withoutRedis;
        reported += 1;
        if (redisNow - report.at < RECENT_REPORT_MS) recent += 1;
      } else if (kind.kind === 'lag') {
        const lag = parseLag(value);
        if (lag && (!persistLag || lag.maxMs > persistLag.maxMs)) persistLag = lag;
      } else if (kind.name in drain) {
        drain[kind.name as keyof typeof drain] += Number(value) || 0;
      }
    }
  }
  return {
    couponId,
    name: record.name,
    // A shard without state (being restored) shows what the others have; the status reads as usual.
    status: present.length > 0 ? couponStatus(record, counters) : record.status === 'FINISHED' ? 'FINISHED' : 'OPEN',
    totalQuantity: record.totalQuantity,
    startsAt: new Date(record.startsAt).toISOString(),
    endsAt: record.endsAt === undefined ? null : new Date(record.endsAt).toISOString(),
    remaining: counters.remaining,
    queued: counters.queued,
    inflight: counters.inflight,
    issued: record.issuedCount,
    deadLettered: counters.deadLettered,
    oldestQueuedMs: oldest.length > 0 ? Math.max(0, redisNow - Math.min(...oldest)) : 0,
    decisions,
    answeredWithoutRedis,
    containers: { reported, recent },
    drain,
    persistLag,
    shards: deps.shards.count,
    shardsWithoutState: deps.shards.count - present.length,
    readAt: new Date(redisNow).toISOString(),
  };
}

function parseLag(value: string): NonNullable<LiveView['persistLag']> | undefined {
  const lag = decodePersistLag(value);
  return lag && { p50Ms: lag.p50Ms, p99Ms: lag.p99Ms, maxMs: lag.maxMs, at: new Date(lag.at).toISOString() };
}
