/**
 * The values Redis stores for the system, encoded and decoded in one place. The Lua scripts read and
 * write the same encodings (scripts/includes/entry.lua); nothing else parses them.
 *
 *   state     field u:<userId>         "<ticket>:<requestedAtMs>"                pending
 *                                      "<ticket>:<requestedAtMs>:I:<ms>"         persisted (issuedAt)
 *                                      "<ticket>:<requestedAtMs>:R"              refused by the ledger's cap
 *   transfers field <transferId>       "out:<units>:<toShard>:<atMs>"            given, not yet taken
 *                                      "in:<units>:<fromShard>"                  taken (give-units.lua,
 *                                                                                take-units.lua)
 *   live      field c:<containerId>    "<count>,<count>,...|<atMs>"              a container's decisions
 *             field lag:<shard>        "<p50Ms>,<p99Ms>,<maxMs>|<atMs>"          the last batch's persist lag
 *             field <counter>          integer (record-drain.lua's HINCRBY)       the drains' running totals
 *
 * The Lua side (scripts/includes/entry.lua, coupon-counters.lua, give-units.lua, take-units.lua,
 * record-drain.lua) writes and reads the same; test/codec.test.ts checks that no other TypeScript file
 * spells these markers.
 */

/** The prefixes above: a literal starting with one of them outside this file is a second parser. */
export const ENCODING_MARKERS = ['u:', 'I:', 'out:', 'in:', 'c:', 'lag:'] as const;

/** What the ledger decided for one winner. */
export type ItemOutcome = { readonly kind: 'ISSUED'; readonly issuedAt: number } | { readonly kind: 'REJECTED' };

export interface WinnerEntry {
  readonly ticket: number;
  readonly requestedAt: number;
  /** Undefined while pending. */
  readonly outcome: ItemOutcome | undefined;
}

const USER_FIELD_PREFIX = 'u:';
const ENTRY = /^(\d+):(\d+)(?::(I:(\d+)|R))?$/;

export const userField = (userId: string): string => `${USER_FIELD_PREFIX}${userId}`;

/** The user id of a state field, or undefined for the coupon's own fields. */
export const userOfField = (field: string): string | undefined => (field.startsWith(USER_FIELD_PREFIX) ? field.slice(USER_FIELD_PREFIX.length) : undefined);

export function encodeOutcome(outcome: ItemOutcome): string {
  return outcome.kind === 'ISSUED' ? `I:${outcome.issuedAt}` : 'R';
}

export function decodeOutcome(raw: string | null | undefined): ItemOutcome | undefined {
  if (!raw) return undefined;
  if (raw === 'R') return { kind: 'REJECTED' };
  if (raw.startsWith('I:')) return { kind: 'ISSUED', issuedAt: Number(raw.slice(2)) };
  throw new Error(`not an outcome: ${raw.slice(0, 40)}`);
}

export function encodeEntry(entry: WinnerEntry): string {
  const base = `${entry.ticket}:${entry.requestedAt}`;
  return entry.outcome ? `${base}:${encodeOutcome(entry.outcome)}` : base;
}

export function decodeEntry(raw: string): WinnerEntry {
  const parts = ENTRY.exec(raw);
  if (!parts) throw new Error(`not a winner entry: ${raw.slice(0, 40)}`);
  return { ticket: Number(parts[1]), requestedAt: Number(parts[2]), outcome: decodeOutcome(parts[3]) };
}

/**
 * What restore-winners.lua takes after a winner's ticket, "<requestedAtMs>:I:<issuedAtMs>": the script
 * keeps the ticket Redis already has, if any, and completes the entry with this.
 */
export function restoredEntryTail(requestedAt: number, issuedAt: number): string {
  return `${requestedAt}:${encodeOutcome({ kind: 'ISSUED', issuedAt })}`;
}

/** A record of the transfers hash: units given to another shard and not yet taken, or units taken. */
export type TransferRecord =
  | { readonly direction: 'out'; readonly units: number; readonly toShard: number; readonly at: number }
  | { readonly direction: 'in'; readonly units: number; readonly fromShard: number };

const TRANSFER_OUT = /^out:(\d+):(\d+):(\d+)$/;
const TRANSFER_IN = /^in:(\d+):(\d+)$/;

export function decodeTransfer(raw: string): TransferRecord | undefined {
  const out = TRANSFER_OUT.exec(raw);
  if (out) return { direction: 'out', units: Number(out[1]), toShard: Number(out[2]), at: Number(out[3]) };
  const taken = TRANSFER_IN.exec(raw);
  if (taken) return { direction: 'in', units: Number(taken[1]), fromShard: Number(taken[2]) };
  return undefined;
}

/** A field of the live hash (keys.ts), by what it holds. */
export type LiveField =
  | { readonly kind: 'decisions'; readonly containerId: string }
  | { readonly kind: 'lag'; readonly shard: number }
  | { readonly kind: 'counter'; readonly name: string };

const DECISIONS_FIELD_PREFIX = 'c:';
const LAG_FIELD_PREFIX = 'lag:';

export const decisionReportField = (containerId: string): string => `${DECISIONS_FIELD_PREFIX}${containerId}`;

export function liveFieldOf(field: string): LiveField {
  if (field.startsWith(DECISIONS_FIELD_PREFIX)) return { kind: 'decisions', containerId: field.slice(DECISIONS_FIELD_PREFIX.length) };
  if (field.startsWith(LAG_FIELD_PREFIX)) return { kind: 'lag', shard: Number(field.slice(LAG_FIELD_PREFIX.length)) };
  return { kind: 'counter', name: field };
}

/** A container's running totals (in DecisionTally's order) and when it wrote them. */
export function encodeDecisionReport(numbers: readonly number[], at: number): string {
  return `${numbers.join(',')}|${at}`;
}

/** Undefined unless it holds exactly `count` whole numbers and a time. */
export function decodeDecisionReport(raw: string, count: number): { numbers: number[]; at: number } | undefined {
  const match = /^([\d,]+)\|(\d+)$/.exec(raw);
  if (!match) return undefined;
  const numbers = match[1]!.split(',').map(Number);
  if (numbers.length !== count || numbers.some((n) => !Number.isSafeInteger(n))) return undefined;
  return { numbers, at: Number(match[2]) };
}

/** A drained batch's accepted-to-written lag and when it was written (epoch ms). */
export interface PersistLag {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly at: number;
}

export function encodePersistLag(lag: PersistLag): string {
  return `${lag.p50Ms},${lag.p99Ms},${lag.maxMs}|${lag.at}`;
}

export function decodePersistLag(raw: string): PersistLag | undefined {
  const match = /^(\d+),(\d+),(\d+)\|(\d+)$/.exec(raw);
  if (!match) return undefined;
  return { p50Ms: Number(match[1]), p99Ms: Number(match[2]), maxMs: Number(match[3]), at: Number(match[4]) };
}
