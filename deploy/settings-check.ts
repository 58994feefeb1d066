import { readFileSync } from 'node:fs';
import { adminCallMaxMs, issueMaxMs, ledgerCallMaxMs, readMaxMs } from '../lib/budgets.js';
import { loadConfig, type Config } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';

/**
 * Settings that contradict each other or the functions' timeouts, each as one sentence that says what to
 * change. `npm start` (localstack/start.ts) and `serverless package` (deploy/plugin.mjs) refuse to go on
 * while there is one: such settings do not fail loudly at run time, they make drains persist nothing,
 * batches be written twice, or API Gateway answer 500 where a handler would have answered 503.
 */

/** Seconds per function, as serverless.yml sets them (deploy/timeouts.json). */
export type FunctionTimeouts = Readonly<Record<string, number>>;

/** The timeouts serverless.yml gives the functions of a stage kind, for checks made without the Serverless Framework. */
export function functionTimeouts(kind: 'local' | 'deployed'): FunctionTimeouts {
  const all = JSON.parse(readFileSync(new URL('./timeouts.json', import.meta.url), 'utf8')) as Record<string, FunctionTimeouts>;
  return all[kind]!;
}

export const READ_FUNCTIONS = ['userCoupon', 'userCoupons', 'coupon'] as const;
export const ADMIN_FUNCTIONS = ['adminCreateCoupon', 'adminGetCoupon', 'adminReconcile', 'adminDeadLetters', 'adminRequeueDeadLetters', 'adminLive'] as const;
/** Behind API Gateway, which waits 30 s for an integration (HTTP API quotas). */
export const API_FUNCTIONS = ['issue', ...READ_FUNCTIONS, ...ADMIN_FUNCTIONS, 'adminAuthorizer', 'adminPage', 'notFound'] as const;

const API_GATEWAY_WAIT_S = 30;
/** What a function's timeout must leave beyond its handler's worst case (the runtime's own work). */
const MARGIN_MS = 1_000;
/** A drain must have at least this long to claim and write before it stops. */
const MIN_DRAIN_WORK_MS = 1_000;
/** functions/restore.ts: the rebuild lock expires this long before the function's timeout. */
const RESTORE_LOCK_MARGIN_MS = 5_000;

const ms = (value: number) => `${Math.round(value).toLocaleString('en-US')} ms`;

/**
 * The handlers' settings as a stage's functions will read them (serverless.yml's environment), checked
 * alone (lib/config.ts) and against each other and the timeouts. One sentence per problem.
 */
export function environmentContradictions(env: Readonly<Record<string, string | undefined>>, timeouts: FunctionTimeouts): string[] {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return [`${error.message}.`];
    throw error;
  }
  return settingsContradictions(config, timeouts);
}

export function settingsContradictions(config: Config, timeouts: FunctionTimeouts): string[] {
  const problems: string[] = [];
  const timeoutMs = (name: string): number => {
    const seconds = timeouts[name];
    if (seconds === undefined) throw new Error(`no timeout for function ${name}`);
    return seconds * 1_000;
  };

  for (const name of API_FUNCTIONS) {
    if (timeoutMs(name) >= API_GATEWAY_WAIT_S * 1_000) {
      problems.push(
        `The ${name} function's timeout (${timeoutMs(name) / 1_000} s) must be under the 30 s API Gateway waits for it, or API Gateway answers 503 while the function still runs.`,
      );
    }
  }

  const covers = (names: readonly string[], needMs: number, what: string) => {
    for (const name of names) {
      if (timeoutMs(name) < needMs + MARGIN_MS) {
        problems.push(
          `The ${name} function's timeout (${timeoutMs(name) / 1_000} s) must exceed by a second the ${ms(needMs)} ${what}: raise it in deploy/timeouts.json or lower the deadlines, or Lambda cuts requests short and API Gateway answers 500.`,
        );
      }
    }
  };
  covers(['issue'], issueMaxMs(config), 'an issue request can take (REDIS_DEADLINE_MS, REBUILD_WAIT_MS and the fixed budgets of lib/budgets.ts)');
  covers(
    READ_FUNCTIONS,
    readMaxMs(config),
    'a read request can take (REDIS_DEADLINE_MS, LEDGER_READ_ATTEMPTS, LEDGER_READ_REQUEST_TIMEOUT_MS, REBUILD_WAIT_MS)',
  );
  covers(
    ADMIN_FUNCTIONS,
    adminCallMaxMs(config),
    'one ledger call and one Redis call of an admin request can take (LEDGER_ATTEMPTS, LEDGER_REQUEST_TIMEOUT_MS, REDIS_TIMEOUT_MS)',
  );

  const drainMs = timeoutMs('drain');
  if (config.drain.stopBeforeTimeoutMs + MIN_DRAIN_WORK_MS > drainMs) {
    problems.push(
      `DRAIN_STOP_BEFORE_TIMEOUT_MS (${config.drain.stopBeforeTimeoutMs}) must leave the drain at least a second of its ${drainMs / 1_000} s timeout, or every drain stops before its first claim and persists nothing.`,
    );
  }
  const writeMs = ledgerCallMaxMs(config.ledger.writes);
  if (config.drain.claimLeaseMs <= writeMs) {
    problems.push(
      `DRAIN_CLAIM_LEASE_MS (${config.drain.claimLeaseMs}) must be longer than one ledger write can take (${ms(writeMs)}: LEDGER_ATTEMPTS × LEDGER_REQUEST_TIMEOUT_MS + the SDK's pauses), or a batch still being written is claimed and written again by another drain.`,
    );
  }
  const restoreMs = timeoutMs('restore');
  if (restoreMs < RESTORE_LOCK_MARGIN_MS + writeMs + MARGIN_MS) {
    problems.push(
      `The restore function's timeout (${restoreMs / 1_000} s) must leave a rebuild its 5 s lock margin plus one ledger call (${ms(writeMs)}) and a second: raise it in deploy/timeouts.json.`,
    );
  }
  return problems;
}

/** Reserved and provisioned concurrency per function; undefined: none (the account's unreserved pool). */
export interface Capacity {
  /** The account's concurrency quota in the region (AWS's default 1,000; new accounts get less). */
  readonly account: number;
  readonly reserved: Readonly<Record<string, number | undefined>>;
  readonly provisioned: Readonly<Record<string, number | undefined>>;
}

/** AWS keeps at least this much of the account's pool unreserved (Lambda: configuring reserved concurrency). */
export const MIN_UNRESERVED = 100;

export function capacityContradictions(capacity: Capacity): string[] {
  const problems: string[] = [];
  const reserved = Object.values(capacity.reserved).reduce<number>((sum, n) => sum + (n ?? 0), 0);
  if (reserved > 0 && capacity.account - reserved < MIN_UNRESERVED) {
    problems.push(
      `The functions reserve ${reserved} of the account's ${capacity.account} concurrent executions (ACCOUNT_CONCURRENCY), leaving ${capacity.account - reserved} where AWS requires at least ${MIN_UNRESERVED} unreserved: lower ISSUE_CONCURRENCY (or the others), or raise the account's quota first.`,
    );
  }
  for (const [name, provisioned] of Object.entries(capacity.provisioned)) {
    if (!provisioned) continue;
    const cap = capacity.reserved[name];
    if (cap !== undefined && provisioned > cap) {
      problems.push(
        `The ${name} function's provisioned concurrency (${provisioned}) cannot exceed its reserved concurrency (${cap}): raise the reservation or provision less.`,
      );
    }
  }
  return problems;
}
