/**
 * The codes the Lua scripts answer with, named once (as bullmq's ErrorCode). Each script's doc block
 * lists, under "Output:", the codes it answers by these numbers and names; test/scripts.test.ts checks
 * that both sides agree. CouponStore turns them into typed outcomes; nothing else reads them.
 */

/** Any script that reads a coupon's state, when Redis has none (never loaded, or lost): restore it. */
export const NO_STATE = -1;

/** admit.lua's first value. */
export const AdmitCode = {
  ACCEPTED: 1,
  ALREADY_ACCEPTED: 2,
  COUPON_NOT_FOUND: NO_STATE,
  NOT_OPEN: -2,
  ENDED: -3,
  SOLD_OUT: -4,
} as const;

/** read-user.lua's first value. */
export const ReadUserCode = { NO_STATE, NOT_REQUESTED: 0, WON: 1 } as const;

/** readmit-stale.lua's first value. */
export const ReadmitCode = { NO_STATE, REQUEUED: 1, READMITTED: 2 } as const;

/** read-coupon.lua's and read-live.lua's first value (includes/coupon-counters.lua). */
export const CountersCode = { NO_STATE, FOUND: 1 } as const;

/** The codes each script answers, by script name (coupon-store.ts's `scripts`). */
export const SCRIPT_CODES: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  admit: AdmitCode,
  'read-user': ReadUserCode,
  'readmit-stale': ReadmitCode,
  'read-coupon': CountersCode,
  'read-live': CountersCode,
  // In place of the seq, the epoch, or the units given or taken.
  'read-winners': { NO_STATE },
  claim: { NO_STATE },
  'give-units': { NO_STATE },
  'take-units': { NO_STATE },
};
