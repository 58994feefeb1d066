import type { DrainSettings, RateLimitSettings } from '../config.js';
import type { DrainTrigger } from '../drain/trigger.js';
import type { Ledger } from '../ledger/ledger.js';
import type { CouponStore } from '../redis/coupon-store.js';

/** What the use cases need; built once per cold start (lib/runtime.ts) or by a test. */
export interface Deps {
  readonly store: CouponStore;
  readonly ledger: Ledger;
  readonly trigger: DrainTrigger;
  readonly drain: DrainSettings;
  readonly rateLimit: RateLimitSettings;
}
