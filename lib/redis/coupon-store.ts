import { randomUUID } from 'node:crypto';
import { asRedisFault } from './client.js';
import {
  decisionReportField,
  decodeEntry,
  decodeTransfer,
  encodeOutcome,
  restoredEntryTail,
  userField,
  userOfField,
  type ItemOutcome,
  type WinnerEntry,
} from './codec.js';
import { couponIndexKey, couponKeys, type CouponKeys } from './keys.js';
import { AdmitCode, CountersCode, NO_STATE, ReadmitCode, ReadUserCode } from './replies.js';
import { LuaScript, type ScriptClient } from './script.js';
import ackSource from './scripts/ack.lua';
import admitSource from './scripts/admit.lua';
import claimSource from './scripts/claim.lua';
import forgetCouponSource from './scripts/forget-coupon.lua';
import giveUnitsSource from './scripts/give-units.lua';
import loadCouponSource from './scripts/load-coupon.lua';
import readCouponSource from './scripts/read-coupon.lua';
import readLiveSource from './scripts/read-live.lua';
import recordDrainSource from './scripts/record-drain.lua';
import readUserSource from './scripts/read-user.lua';
import readUsersSource from './scripts/read-users.lua';
import readWinnersSource from './scripts/read-winners.lua';
import readmitStaleSource from './scripts/readmit-stale.lua';
import releaseSource from './scripts/release.lua';
import requeueSource from './scripts/requeue.lua';
import restoreWinnersSource from './scripts/restore-winners.lua';
import setRemainingSource from './scripts/set-remaining.lua';
import settleTransferSource from './scripts/settle-transfer.lua';
import takeUnitsSource from './scripts/take-units.lua';
import unlockSource from './scripts/unlock.lua';
import unmarkUnpersistedSource from './scripts/unmark-unpersisted.lua';

export const scripts = {
  admit: new LuaScript('admit', admitSource),
  claim: new LuaScript('claim', claimSource),
  ack: new LuaScript('ack', ackSource),
  release: new LuaScript('release', releaseSource),
  readmitStale: new LuaScript('readmit-stale', readmitStaleSource),
  loadCoupon: new LuaScript('load-coupon', loadCouponSource),
  restoreWinners: new LuaScript('restore-winners', restoreWinnersSource),
  readUser: new LuaScript('read-user', readUserSource, true),
  readUsers: new LuaScript('read-users', readUsersSource, true),
  readCoupon: new LuaScript('read-coupon', readCouponSource, true),
  readWinners: new LuaScript('read-winners', readWinnersSource, true),
  requeue: new LuaScript('requeue', requeueSource),
  unmarkUnpersisted: new LuaScript('unmark-unpersisted', unmarkUnpersistedSource),
  setRemaining: new LuaScript('set-remaining', setRemainingSource),
  forgetCoupon: new LuaScript('forget-coupon', forgetCouponSource),
  giveUnits: new LuaScript('give-units', giveUnitsSource),
  takeUnits: new LuaScript('take-units', takeUnitsSource),
  settleTransfer: new LuaScript('settle-transfer', settleTransferSource),
  unlock: new LuaScript('unlock', unlockSource),
  readLive: new LuaScript('read-live', readLiveSource, true),
  recordDrain: new LuaScript('record-drain', recordDrainSource),
} as const;

/** Users per call of a repair script (restore, acknowledge, requeue, unmark): see inChunks. */
export const REPAIR_CHUNK = 500;

export type { ItemOutcome, WinnerEntry } from './codec.js';

/** The slice of @upstash/redis the coupon store uses: scripts plus a few plain commands. */
export interface RedisClient extends ScriptClient {
  set(key: string, value: string, options: { nx: true; px: number }): Promise<unknown>;
  sadd(key: string, member: string, ...members: string[]): Promise<number>;
  smembers(key: string): Promise<string[]>;
  hexists(key: string, field: string): Promise<number>;
  hget(key: string, field: string): Promise<unknown>;
  /** Without automatic deserialization: the raw reply, field, value, field, value, ... */
  hgetall(key: string): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
  hscan(key: string, cursor: string | number, options: { match?: string; count: number }): Promise<[string | number, (string | number)[]]>;
  zscan(key: string, cursor: string | number, options: { count: number }): Promise<[string | number, (string | number)[]]>;
  zrange(key: string, min: number, max: number, options: { withScores: true }): Promise<(string | number)[]>;
  /** Without automatic deserialization: the raw reply, one value (or null) per field, in order. */
  hmget(key: string, ...fields: string[]): Promise<unknown>;
  hset(key: string, values: Record<string, string>): Promise<number>;
}

/** Everything Redis holds about one coupon's winners, read for reconcile (not atomically). */
export interface CouponSnapshot {
  readonly remaining: number;
  /**
   * False when remaining changed while the snapshot was read (admissions are flowing): the winners
   * scanned then no longer match it, so remaining cannot be checked against them.
   */
  readonly remainingSettled: boolean;
  readonly total: number;
  /** Units this shard gave to others that no recipient has taken yet. */
  readonly inTransit: number;
  /** userId -> entry */
  readonly winners: Map<string, WinnerEntry>;
  readonly queued: Set<string>;
  readonly inflight: Set<string>;
  readonly dead: Set<string>;
}

export interface DeadLetter {
  readonly userId: string;
  readonly ticket: number;
  readonly attempts: number;
  readonly lastError: string | undefined;
}

export type AdmitReply =
  | { readonly kind: 'ACCEPTED'; readonly ticket: number; readonly startDrain: boolean }
  | {
      readonly kind: 'ALREADY_ACCEPTED';
      readonly ticket: number;
      readonly status: 'PENDING' | 'ISSUED';
      readonly issuedAt: number | undefined;
    }
  | { readonly kind: 'COUPON_NOT_FOUND' }
  | { readonly kind: 'NOT_OPEN'; readonly startsAt: number }
  | { readonly kind: 'ENDED' }
  | { readonly kind: 'SOLD_OUT' };

/** The coupon as an admission read it: what a container learns from each answer. */
export interface SeenCoupon {
  readonly total: number;
  readonly startsAt: number;
  /** 0 when the coupon has no end. */
  readonly endsAt: number;
  /** Units left after this admission. */
  readonly remaining: number;
  /** Highest ticket given (after this admission): changes whenever a winner is added. */
  readonly seq: number;
}

export interface Admission {
  readonly reply: AdmitReply;
  /** Undefined when the answer came before the state was read (NOT_OPEN by Redis' clock alone). */
  readonly seen: SeenCoupon | undefined;
  /** Redis' clock when it was asked (epoch ms), undefined when it was not. */
  readonly redisNow: number | undefined;
}

/**
 * Whose clock decides the admission window (see admit.lua): the container's, far from startsAt and
 * endsAt; Redis' near them (asked first just before startsAt, where most answers are NOT_OPEN).
 */
export type AdmitClock =
  | { readonly kind: 'container'; readonly now: number }
  | { readonly kind: 'redis' }
  | { readonly kind: 'redis-first'; readonly startsAt: number };

export interface AdmitOptions {
  /** Lifetime of the drain mark an accepting admission sets when none is set. */
  readonly triggerLeaseMs: number;
  /** Default: Redis' clock. */
  readonly clock?: AdmitClock;
}

export interface ClaimedItem {
  readonly userId: string;
  readonly ticket: number;
  readonly requestedAt: number;
}

export interface Claim {
  /** Lease deadline of every item of this claim; proves ownership when releasing them. */
  readonly leaseDeadline: number;
  /** The coupon's rebuild generation the items were claimed in; the ledger writes them only in it. */
  readonly epoch: number;
  readonly items: readonly ClaimedItem[];
  /** Expired claims put back in the queue by this call. */
  readonly requeued: number;
  /** Items still queued after this claim. */
  readonly queuedAfter: number;
  /** Earliest lease deadline still in flight (epoch ms by Redis' clock), if any item is in flight. */
  readonly nextLeaseExpiry: number | undefined;
  /** Set while the coupon backs off from a failed ledger write: nothing was claimed (Redis' clock). */
  readonly backoffUntil: number | undefined;
  /** The coupon's quantity (as loaded from the ledger), for the ledger's cap. */
  readonly total: number;
  /** The shard (database) the items were claimed from, whose epoch the ledger checks. */
  readonly shard: number;
  /** False when the coupon has no state in Redis (nothing was claimed). */
  readonly hasState: boolean;
}

/** Units this shard gave another and no recipient has taken yet (an interrupted transfer). */
export interface TransferInTransit {
  readonly transferId: string;
  readonly units: number;
  readonly toShard: number;
  /** When it was given, by Redis' clock. */
  readonly at: number;
}

/** Why claimed items go back (see release.lua). */
export type ReleaseReason =
  | { readonly kind: 'REFUSED'; readonly error: string; readonly maxAttempts: number }
  | { readonly kind: 'TRANSIENT'; readonly error: string; readonly backoffBaseMs: number; readonly backoffMaxMs: number }
  | { readonly kind: 'UNTRIED' };

/** What became of a stale claim given back to Redis (see readmit-stale.lua). */
export type ReadmitResult =
  | { readonly kind: 'NO_STATE' }
  | { readonly kind: 'REQUEUED'; readonly requeued: number }
  | { readonly kind: 'READMITTED'; readonly readmitted: number; readonly rejected: number };

/** One user's standing read at one instant, for reconcile's second look. */
export interface UserState {
  readonly entry: WinnerEntry | undefined;
  readonly queued: boolean;
  /** In flight under a lease that has not expired: a drain is writing or acknowledging it. */
  readonly claimedByLiveDrain: boolean;
  /** In flight at all (a live drain, or a dead one whose lease the next claim takes back). */
  readonly inflight: boolean;
  readonly dead: boolean;
}

export type UserStanding =
  | { readonly kind: 'NO_STATE' }
  | { readonly kind: 'NOT_REQUESTED' }
  | { readonly kind: 'WON'; readonly ticket: number; readonly outcome: ItemOutcome | undefined };

export interface LiveCounters {
  readonly total: number;
  readonly remaining: number;
  /** Highest ticket given so far. */
  readonly seq: number;
  readonly startsAt: number;
  /** 0 when the coupon has no end. */
  readonly endsAt: number;
  readonly queued: number;
  readonly inflight: number;
  readonly deadLettered: number;
  /** Redis server time of the reading. */
  readonly now: number;
  readonly shard: number;
  readonly shards: number;
  /** Units this shard gave to others that no recipient has taken yet. */
  readonly inTransit: number;
}

/** A shard's counters with what the live operator page adds (read-live.lua). */
export interface LiveReading extends LiveCounters {
  /** When the oldest winner still queued was accepted (epoch ms); undefined when the queue is empty. */
  readonly oldestQueuedAt: number | undefined;
  /** The live hash: container reports, drain totals, lag per shard (keys.ts). */
  readonly reports: ReadonlyMap<string, string>;
}

/** What a drain did with one batch, for the live page's running totals (record-drain.lua). */
export interface DrainBatchStats {
  readonly issued: number;
  readonly redelivered: number;
  readonly rejected: number;
  readonly deadLettered: number;
  readonly throttled: number;
  readonly stale: number;
  /** Accepted-to-written lag of the batch's written items: "<p50Ms>,<p99Ms>,<maxMs>|<atMs>", or "" if none. */
  readonly lag: string;
}

export interface CouponStateToLoad {
  readonly total: number;
  readonly remaining: number;
  readonly seq: number;
  readonly startsAt: number;
  readonly endsAt: number;
  /** The ledger's epoch this shard's state is rebuilt in. */
  readonly epoch: number;
  readonly shard: number;
  readonly shards: number;
}

export interface RestoredWinner {
  readonly userId: string;
  readonly ticket: number;
  readonly requestedAt: number;
  readonly issuedAt: number;
}

export interface DrainTuning {
  readonly batchSize: number;
  readonly claimLeaseMs: number;
  readonly triggerLeaseMs: number;
}

const ADMIT_CODES = new Map<number, AdmitReply['kind']>(Object.entries(AdmitCode).map(([kind, code]) => [code, kind as AdmitReply['kind']]));

/**
 * Every Redis operation on coupons. Each state change is one Lua script, so a failure between two
 * commands can never leave a coupon half-updated; expected outcomes come back as typed values and
 * only faults throw (UnavailableError when Redis could not be asked).
 */
export class CouponStore {
  constructor(
    private readonly redis: RedisClient,
    readonly keyPrefix: string,
  ) {}

  keys(couponId: string): CouponKeys {
    return couponKeys(this.keyPrefix, couponId);
  }

  async admit(couponId: string, userId: string, options: AdmitOptions): Promise<Admission> {
    const k = this.keys(couponId);
    const clock = options.clock ?? { kind: 'redis' };
    const reply = (await this.run(
      scripts.admit,
      [k.state, k.queue],
      [userId, clock.kind, clock.kind === 'container' ? clock.now : Date.now(), clock.kind === 'redis-first' ? clock.startsAt : '', options.triggerLeaseMs],
    )) as (number | string)[];
    const [code, a, b, c, remaining, seq, startsAt, endsAt, total, redisNow] = reply.map((v, i) => (i === 2 && typeof v === 'string' ? v : Number(v)));
    const kind = ADMIT_CODES.get(Number(code));
    if (!kind) throw new Error(`admit.lua returned an unknown code ${String(code)}`);
    const seen: SeenCoupon | undefined =
      kind === 'COUPON_NOT_FOUND' || Number(total) < 0
        ? undefined
        : { remaining: Number(remaining), seq: Number(seq), startsAt: Number(startsAt), endsAt: Number(endsAt), total: Number(total) };
    return { reply: admitReply(kind, Number(a), b, Number(c)), seen, redisNow: Number(redisNow) || undefined };
  }

  async claim(couponId: string, tuning: DrainTuning): Promise<Claim> {
    const k = this.keys(couponId);
    const reply = (await this.run(scripts.claim, [k.state, k.queue, k.inflight], [tuning.batchSize, tuning.claimLeaseMs, tuning.triggerLeaseMs])) as (
      | string
      | number
    )[];
    const items: ClaimedItem[] = [];
    for (let i = 8; i < reply.length; i += 3) {
      items.push({ userId: String(reply[i]), ticket: Number(reply[i + 1]), requestedAt: Number(reply[i + 2]) });
    }
    const epoch = Number(reply[4]);
    return {
      leaseDeadline: Number(reply[0]),
      requeued: Number(reply[1]),
      queuedAfter: Number(reply[2]),
      nextLeaseExpiry: Number(reply[3]) || undefined,
      epoch: Math.max(0, epoch),
      backoffUntil: Number(reply[5]) || undefined,
      total: Number(reply[6]),
      shard: Number(reply[7]),
      hasState: epoch !== NO_STATE,
      items,
    };
  }

  /** Record the ledger's decisions and take the items out of flight. Idempotent. */
  async acknowledge(couponId: string, decided: ReadonlyMap<string, ItemOutcome>): Promise<number> {
    const k = this.keys(couponId);
    return this.inChunks([...decided], (chunk) =>
      this.run(
        scripts.ack,
        [k.state, k.inflight, k.queue, k.dead, k.attempts, k.errors],
        chunk.flatMap(([userId, outcome]) => [userId, encodeOutcome(outcome)]),
      ),
    );
  }

  /**
   * Give items back after a failed write: refused ones use an attempt (dead-lettered past maxAttempts);
   * a transient failure uses none and makes the coupon back off.
   */
  async release(
    couponId: string,
    claim: Pick<Claim, 'leaseDeadline'>,
    userIds: readonly string[],
    reason: ReleaseReason,
  ): Promise<{ requeued: number; deadLettered: number; backoffUntil: number | undefined }> {
    // A transient failure backs the coupon off even when none of its items is still held here.
    if (userIds.length === 0 && reason.kind !== 'TRANSIENT') return { requeued: 0, deadLettered: 0, backoffUntil: undefined };
    const k = this.keys(couponId);
    const [requeued, deadLettered, backoffUntil] = (await this.run(
      scripts.release,
      [k.state, k.inflight, k.queue, k.dead, k.attempts, k.errors],
      [
        claim.leaseDeadline,
        reason.kind === 'REFUSED' ? reason.maxAttempts : 0,
        reason.kind === 'UNTRIED' ? '' : reason.error.slice(0, 500),
        reason.kind.toLowerCase(),
        reason.kind === 'TRANSIENT' ? reason.backoffBaseMs : 0,
        reason.kind === 'TRANSIENT' ? reason.backoffMaxMs : 0,
        Math.random(),
        ...userIds,
      ],
    )) as [number, number, number];
    return { requeued: Number(requeued), deadLettered: Number(deadLettered), backoffUntil: Number(backoffUntil) || undefined };
  }

  /** Give back a claim the ledger refused as stale (claimed before the state was rebuilt): see readmit-stale.lua. */
  async readmitStale(
    couponId: string,
    claim: Pick<Claim, 'leaseDeadline' | 'epoch'>,
    items: readonly ClaimedItem[],
    ledgerEpoch: number,
  ): Promise<ReadmitResult> {
    const k = this.keys(couponId);
    const ordered = [...items].sort((a, b) => a.ticket - b.ticket);
    const [code, first, second] = (await this.run(
      scripts.readmitStale,
      [k.state, k.queue, k.inflight, couponIndexKey(this.keyPrefix)],
      [claim.epoch, ledgerEpoch, claim.leaseDeadline, couponId, ...ordered.flatMap((item) => [item.userId, item.requestedAt])],
    )) as [number, number?, number?];
    if (Number(code) === ReadmitCode.NO_STATE) return { kind: 'NO_STATE' };
    if (Number(code) === ReadmitCode.REQUEUED) return { kind: 'REQUEUED', requeued: Number(first) };
    return { kind: 'READMITTED', readmitted: Number(first), rejected: Number(second) };
  }

  /** Some users' standing, each chunk read at one instant (reconcile's second look). */
  async readUsers(couponId: string, userIds: readonly string[]): Promise<Map<string, UserState>> {
    const k = this.keys(couponId);
    const states = new Map<string, UserState>();
    for (let i = 0; i < userIds.length; i += REPAIR_CHUNK) {
      const chunk = userIds.slice(i, i + REPAIR_CHUNK);
      const [now, ...reply] = (await this.run(scripts.readUsers, [k.state, k.queue, k.inflight, k.dead], [...chunk])) as unknown[];
      chunk.forEach((userId, j) => {
        const [entry, queued, lease, dead] = reply.slice(4 * j, 4 * j + 4);
        const inflight = typeof lease === 'number' || (typeof lease === 'string' && lease !== '');
        states.set(userId, {
          entry: typeof entry === 'string' ? decodeEntry(entry) : undefined,
          queued: Number(queued) === 1,
          inflight,
          claimedByLiveDrain: inflight && Number(lease) > Number(now),
          dead: Number(dead) === 1,
        });
      });
    }
    return states;
  }

  async readUser(couponId: string, userId: string): Promise<UserStanding> {
    const [code, entry] = (await this.run(scripts.readUser, [this.keys(couponId).state], [userId])) as [number, string?];
    if (Number(code) === ReadUserCode.NO_STATE) return { kind: 'NO_STATE' };
    if (Number(code) === ReadUserCode.NOT_REQUESTED) return { kind: 'NOT_REQUESTED' };
    const decoded = decodeEntry(String(entry));
    return { kind: 'WON', ticket: decoded.ticket, outcome: decoded.outcome };
  }

  /**
   * Every user holding an entry on the coupon (winners, pending or persisted, and the rejected), and
   * the seq they were read at; undefined when the coupon has no state.
   */
  async readWinners(couponId: string): Promise<{ seq: number; users: string[] } | undefined> {
    const [seq, ...fields] = (await this.run(scripts.readWinners, [this.keys(couponId).state], [])) as (string | number)[];
    if (Number(seq) === NO_STATE) return undefined;
    const users: string[] = [];
    for (const field of fields) {
      const user = userOfField(String(field));
      if (user !== undefined) users.push(user);
    }
    return { seq: Number(seq), users };
  }

  /** This shard's units left (one HGET), undefined when it has no state. */
  async readRemaining(couponId: string): Promise<number | undefined> {
    const reply = await this.guard('read remaining', () => this.redis.hget(this.keys(couponId).state, 'remaining'));
    return reply === null || reply === undefined ? undefined : Number(reply);
  }

  /** Whether the coupon has a (fully loaded) state in Redis: one HEXISTS. */
  async hasState(couponId: string): Promise<boolean> {
    return Number(await this.guard('has state', () => this.redis.hexists(this.keys(couponId).state, 'total'))) === 1;
  }

  /** A container's running decision totals for the live page: one HSET (see DecisionTally). */
  async reportDecisions(couponId: string, containerId: string, report: string): Promise<void> {
    await this.guard('report decisions', () => this.redis.hset(this.keys(couponId).live, { [decisionReportField(containerId)]: report }));
  }

  /** Add a batch's outcome to the drains' running totals for the live page. */
  async recordDrain(couponId: string, shard: number, stats: DrainBatchStats): Promise<void> {
    const counters = (['issued', 'redelivered', 'rejected', 'deadLettered', 'throttled', 'stale'] as const).flatMap((name) =>
      stats[name] ? [name, stats[name]] : [],
    );
    if (counters.length === 0 && stats.lag === '') return;
    await this.run(scripts.recordDrain, [this.keys(couponId).live], [shard, stats.lag, ...counters]);
  }

  /** Everything the live page shows of this shard, at one instant; undefined when it has no state. */
  async readLive(couponId: string): Promise<LiveReading | undefined> {
    const k = this.keys(couponId);
    const reply = (await this.run(scripts.readLive, [k.state, k.queue, k.inflight, k.dead, k.transfers, k.live], [])) as unknown[];
    if (Number(reply[0]) === CountersCode.NO_STATE) return undefined;
    const counters = countersOf(reply.slice(0, 13).map(Number));
    const oldest = Number(reply[13]);
    const reports = new Map<string, string>();
    for (let i = 14; i + 1 < reply.length; i += 2) reports.set(String(reply[i]), String(reply[i + 1]));
    return { ...counters, oldestQueuedAt: oldest > 0 ? oldest : undefined, reports };
  }

  async readCounters(couponId: string): Promise<LiveCounters | undefined> {
    const k = this.keys(couponId);
    const reply = (await this.run(scripts.readCoupon, [k.state, k.queue, k.inflight, k.dead, k.transfers], [])) as number[];
    if (Number(reply[0]) === CountersCode.NO_STATE) return undefined;
    return countersOf(reply.map(Number));
  }

  /**
   * Load a coupon's state (last step of creating or rebuilding it), indexing it in the same step. False
   * when it already had state.
   */
  async loadCoupon(couponId: string, state: CouponStateToLoad): Promise<boolean> {
    const loaded = await this.run(
      scripts.loadCoupon,
      [this.keys(couponId).state, couponIndexKey(this.keyPrefix)],
      [state.total, state.remaining, state.seq, state.startsAt, state.endsAt, state.epoch, couponId, state.shard, state.shards],
    );
    return Number(loaded) === 1;
  }

  /** The units given (0: none left here; undefined: no state here), recorded in transit (give-units.lua). */
  async giveUnits(couponId: string, transferId: string, units: number, toShard: number): Promise<number | undefined> {
    const k = this.keys(couponId);
    const given = Number(await this.run(scripts.giveUnits, [k.state, k.transfers], [transferId, units, toShard]));
    return given === NO_STATE ? undefined : given;
  }

  /** The units taken (0: this transfer was taken before; undefined: no state here). Idempotent. */
  async takeUnits(couponId: string, transferId: string, units: number, fromShard: number): Promise<number | undefined> {
    const k = this.keys(couponId);
    const taken = Number(await this.run(scripts.takeUnits, [k.state, k.transfers], [transferId, units, fromShard]));
    return taken === NO_STATE ? undefined : taken;
  }

  /** Remove a transfer's record of units in transit once its recipient took them. */
  async settleTransfer(couponId: string, transferId: string): Promise<void> {
    await this.run(scripts.settleTransfer, [this.keys(couponId).transfers], [transferId]);
  }

  /** Units this shard gave and no recipient has taken yet, to complete. */
  async transfersInTransit(couponId: string): Promise<TransferInTransit[]> {
    // Without automatic deserialization HGETALL is the raw reply: field, value, field, value, ...
    const flat = await this.guard('read transfers', () => this.redis.hgetall(this.keys(couponId).transfers));
    const pairs: [string, unknown][] = [];
    if (Array.isArray(flat)) for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([String(flat[i]), flat[i + 1]]);
    const transfers: TransferInTransit[] = [];
    for (const [transferId, raw] of pairs) {
      const record = decodeTransfer(String(raw));
      if (record?.direction === 'out') transfers.push({ transferId, units: record.units, toShard: record.toShard, at: record.at });
    }
    return transfers;
  }

  /** True for the one caller that may refill this shard now (a mark that lives ttlMs). */
  async markRefilling(couponId: string, ttlMs: number): Promise<boolean> {
    const reply = await this.guard('mark refill', () => this.redis.set(this.keys(couponId).refilling, '1', { nx: true, px: ttlMs }));
    return reply === 'OK';
  }

  async unmarkRefilling(couponId: string): Promise<void> {
    await this.guard('unmark refill', () => this.redis.del(this.keys(couponId).refilling));
  }

  async restoreWinners(couponId: string, winners: readonly RestoredWinner[]): Promise<number> {
    const k = this.keys(couponId);
    return this.inChunks(winners, (chunk) =>
      this.run(
        scripts.restoreWinners,
        [k.state],
        chunk.flatMap((w) => [w.userId, w.ticket, restoredEntryTail(w.requestedAt, w.issuedAt)]),
      ),
    );
  }

  /**
   * Requeue winners: the given ones if dead-lettered or untracked (none given: nothing), or every dead
   * letter. The script indexes the coupon in the same step, so the scheduled drain visits what it queued.
   */
  async requeue(couponId: string, which: readonly string[] | 'ALL_DEAD_LETTERS'): Promise<number> {
    // The script reads no user ids as "every dead letter": an empty list must not reach it.
    if (which !== 'ALL_DEAD_LETTERS' && which.length === 0) return 0;
    const k = this.keys(couponId);
    const requeue = (userIds: string[]) =>
      this.run(scripts.requeue, [k.state, k.queue, k.inflight, k.dead, k.attempts, k.errors, couponIndexKey(this.keyPrefix)], [couponId, ...userIds]);
    return which === 'ALL_DEAD_LETTERS' ? Number(await requeue([])) : this.inChunks(which, (chunk) => requeue([...chunk]));
  }

  /** Undo ISSUED marks the ledger does not back; the winners go back in the queue (indexed, as requeue). */
  async unmarkUnpersisted(couponId: string, userIds: readonly string[]): Promise<number> {
    if (userIds.length === 0) return 0;
    const k = this.keys(couponId);
    return this.inChunks(userIds, (chunk) =>
      this.run(scripts.unmarkUnpersisted, [k.state, k.queue, k.inflight, couponIndexKey(this.keyPrefix)], [couponId, ...chunk]),
    );
  }

  /** Compare-and-set of remaining units; false when it changed since `expected` was read. */
  async setRemaining(couponId: string, expected: number, remaining: number): Promise<boolean> {
    return Number(await this.run(scripts.setRemaining, [this.keys(couponId).state], [expected, remaining])) === 1;
  }

  /** Dead-lettered winners in ticket order, with their attempt counts and last errors. */
  async deadLetters(couponId: string, offset: number, limit: number): Promise<DeadLetter[]> {
    const k = this.keys(couponId);
    const entries = await this.guard('read dead letters', () => this.redis.zrange(k.dead, offset, offset + limit - 1, { withScores: true }));
    const userIds = entries.filter((_, i) => i % 2 === 0).map(String);
    if (userIds.length === 0) return [];
    // Two HMGETs for the page, not two HGETs per letter.
    const [attempts, errors] = await Promise.all([
      this.guard('read attempts', () => this.redis.hmget(k.attempts, ...userIds)),
      this.guard('read errors', () => this.redis.hmget(k.errors, ...userIds)),
    ]);
    const at = (reply: unknown, i: number) => (Array.isArray(reply) ? (reply[i] as unknown) : undefined);
    const letters: DeadLetter[] = userIds.map((userId, i) => {
      const lastError = at(errors, i);
      return {
        userId,
        ticket: Number(entries[2 * i + 1]),
        attempts: Number(at(attempts, i) ?? 0),
        lastError: lastError === null || lastError === undefined ? undefined : String(lastError),
      };
    });
    return letters;
  }

  /** Read everything about a coupon's winners, in pages (HSCAN/ZSCAN), for reconcile. */
  async snapshot(couponId: string): Promise<CouponSnapshot | undefined> {
    const counters = await this.readCounters(couponId);
    if (!counters) return undefined;
    const k = this.keys(couponId);
    const winners = new Map<string, WinnerEntry>();
    await this.scanPairs('hscan', k.state, (field, value) => {
      const user = userOfField(field);
      if (user !== undefined) winners.set(user, decodeEntry(String(value)));
    });
    const members = async (key: string) => {
      const set = new Set<string>();
      await this.scanPairs('zscan', key, (member) => set.add(member));
      return set;
    };
    const queued = await members(k.queue);
    const inflight = await members(k.inflight);
    const dead = await members(k.dead);
    const after = await this.readCounters(couponId);
    return {
      remaining: counters.remaining,
      remainingSettled: after?.remaining === counters.remaining && after.inTransit === counters.inTransit,
      total: counters.total,
      inTransit: counters.inTransit,
      winners,
      queued,
      inflight,
      dead,
    };
  }

  private async scanPairs(kind: 'hscan' | 'zscan', key: string, visit: (first: string, second: string | number) => void): Promise<void> {
    let cursor: string | number = 0;
    do {
      const [next, flat]: [string | number, (string | number)[]] = await this.guard(kind, () =>
        kind === 'hscan' ? this.redis.hscan(key, cursor, { match: userField('*'), count: 1_000 }) : this.redis.zscan(key, cursor, { count: 1_000 }),
      );
      for (let i = 0; i < flat.length; i += 2) visit(String(flat[i]), flat[i + 1]!);
      cursor = next;
    } while (String(cursor) !== '0');
  }

  /**
   * Held by the one caller that rebuilds a coupon from the ledger; others wait and retry. Returns the
   * holder's token (undefined when another caller holds the lock), which unlockRebuild needs.
   */
  async tryLockRebuild(couponId: string, ttlMs: number): Promise<string | undefined> {
    const token = randomUUID();
    const reply = await this.guard('lock rebuild', () => this.redis.set(this.keys(couponId).rebuildLock, token, { nx: true, px: ttlMs }));
    return reply === 'OK' ? token : undefined;
  }

  /** True when this caller is the one to ask for a rebuild (no request is marked since ttlMs). */
  async markRestoreRequested(couponId: string, ttlMs: number): Promise<boolean> {
    const reply = await this.guard('mark restore', () => this.redis.set(this.keys(couponId).restoreRequested, '1', { nx: true, px: ttlMs }));
    return reply === 'OK';
  }

  /** Release the rebuild lock if `token` still holds it (a rebuild that outlived the TTL leaves it). */
  async unlockRebuild(couponId: string, token: string): Promise<boolean> {
    return Number(await this.run(scripts.unlock, [this.keys(couponId).rebuildLock], [token])) === 1;
  }

  /** Put a coupon in the index the scheduled drain walks (idempotent). */
  async indexCoupon(couponId: string): Promise<void> {
    await this.guard('index coupon', () => this.redis.sadd(couponIndexKey(this.keyPrefix), couponId));
  }

  /** Coupons whose state lives in Redis: what the scheduled drain walks. */
  async listCoupons(): Promise<string[]> {
    return this.guard('list coupons', () => this.redis.smembers(couponIndexKey(this.keyPrefix)));
  }

  /**
   * Take a coupon out of the schedule's index if nothing is left for a drain (checked in the same step):
   * `SETTLED` when the ledger has it finished or ended, `STATELESS` when Redis has no state for it.
   * True when removed.
   */
  async forgetCoupon(couponId: string, why: 'SETTLED' | 'STATELESS'): Promise<boolean> {
    const k = this.keys(couponId);
    const reply = await this.run(scripts.forgetCoupon, [couponIndexKey(this.keyPrefix), k.state, k.queue, k.inflight, k.dead, k.rebuildLock], [couponId, why]);
    return Number(reply) === 1;
  }

  /**
   * A per-user script over any number of users, REPAIR_CHUNK users per call: one call for a whole
   * drift (thousands of winners after Redis lost its data) could exceed the REST API's request size
   * and then fail on every run. Each chunk is atomic on its own and the scripts act per user, so a
   * failure part-way leaves the earlier chunks applied and a re-run repairs the rest. Sums the counts.
   */
  private async inChunks<T>(items: readonly T[], call: (chunk: readonly T[]) => Promise<unknown>): Promise<number> {
    let total = 0;
    for (let i = 0; i < items.length; i += REPAIR_CHUNK) total += Number(await call(items.slice(i, i + REPAIR_CHUNK)));
    return total;
  }

  private run(script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.guard(script.name, () => script.run(this.redis, keys, args));
  }

  private async guard<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw asRedisFault(error, operation);
    }
  }
}

function admitReply(kind: AdmitReply['kind'], a: number, b: unknown, c: number): AdmitReply {
  switch (kind) {
    case 'ACCEPTED':
      return { kind, ticket: a, startDrain: Number(b) === 1 };
    case 'ALREADY_ACCEPTED':
      return b === 'ISSUED' ? { kind, ticket: a, status: 'ISSUED', issuedAt: c } : { kind, ticket: a, status: 'PENDING', issuedAt: undefined };
    case 'NOT_OPEN':
      return { kind, startsAt: a };
    default:
      return { kind };
  }
}

/** read-coupon.lua's reply (also the head of read-live.lua's) as counters. */
function countersOf(reply: readonly number[]): LiveCounters {
  const [, total, remaining, seq, startsAt, endsAt, queued, inflight, deadLettered, now, shard, shards, inTransit] = reply;
  return {
    total: total!,
    remaining: remaining!,
    seq: seq!,
    startsAt: startsAt!,
    endsAt: endsAt!,
    queued: queued!,
    inflight: inflight!,
    deadLettered: deadLettered!,
    now: now!,
    shard: shard!,
    shards: shards!,
    inTransit: inTransit!,
  };
}
