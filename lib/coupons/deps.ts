import type { AdmissionSettings, DrainSettings } from '../config.js';
import type { DrainTrigger } from '../drain/trigger.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Shards } from '../redis/shards.js';
import type { CouponCache } from './coupon-cache.js';
import type { DecisionTally } from './decision-tally.js';
import type { RateLimiter } from './rate-limiter.js';
import type { Restorer } from './restorer.js';

/** What the use cases need; built once per cold start (lib/runtime.ts) or by a test. */
export interface Deps {
  /** The Upstash databases, each with a share of every coupon (one by default). */
  readonly shards: Shards;
  readonly ledger: Ledger;
  readonly trigger: DrainTrigger;
  readonly drain: DrainSettings;
  readonly admission: AdmissionSettings;
  /** What this container has learned about coupons (answers without Redis). */
  readonly cache: CouponCache;
  readonly limiter: RateLimiter;
  /** Restores a coupon's state Redis lost; in-process here (inProcessRestorer), remote on the admission path. */
  readonly restorer: Restorer;
  /** What this container decided: metrics, and reports for the live operator page. */
  readonly tally: DecisionTally;
}
