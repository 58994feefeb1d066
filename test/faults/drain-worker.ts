/**
 * A drain in its own process, for fault tests that SIGKILL it: drains one coupon in a loop, as the
 * scheduled and triggered drain Lambdas would, until it is killed. Configured by the same environment
 * as the handlers (lib/config.ts) plus DRAIN_COUPON_ID.
 */
import { drainCoupon } from '../../lib/drain/drain.js';
import { getRuntime } from '../../lib/runtime.js';

const couponId = process.env.DRAIN_COUPON_ID;
if (!couponId) throw new Error('DRAIN_COUPON_ID is required');
const runtime = await getRuntime();
for (;;) {
  try {
    await drainCoupon(runtime, couponId, () => 60_000);
  } catch {
    // Redis or DynamoDB hiccup: the next round retries, as the next scheduled run would.
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
}
