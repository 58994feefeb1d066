/**
 * The values Redis stores for the system, encoded and decoded in one place. The Lua scripts read and
 * write the same encodings (scripts/includes/entry.lua); nothing else parses them.
 *
 *   field u:<userId> of a coupon's state   "<ticket>:<requestedAtMs>"            pending
 *                                          "<ticket>:<requestedAtMs>:I:<ms>"     persisted (issuedAt)
 *                                          "<ticket>:<requestedAtMs>:R"          refused by the ledger's cap
 */

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
export const userOfField = (field: string): string | undefined =>
  field.startsWith(USER_FIELD_PREFIX) ? field.slice(USER_FIELD_PREFIX.length) : undefined;

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
