import type { LambdaInvoker } from '../aws/lambda.js';

/** Starts a drain for one coupon's queue in one shard without waiting for it. */
export interface DrainTrigger {
  start(couponId: string, shard?: number): Promise<void>;
}

/** The event a triggered drain receives (a scheduled drain receives EventBridge's event instead). */
export interface DrainRequest {
  readonly couponId: string;
  /** The shard (Upstash database) whose queue to drain; absent: the first. */
  readonly shard?: number;
}

/**
 * A winner waits for starting a drain at most this long: the item is queued either way, and the schedule
 * drains it if the invoke fails.
 */
export const DRAIN_START_TIMEOUT_MS = 300;

/**
 * Asynchronous Lambda invoke (InvocationType Event): Lambda queues the event and answers 202 at once, so
 * the admission that found no drain running pays one short call, once per drain mark lifetime.
 */
export class LambdaDrainTrigger implements DrainTrigger {
  constructor(
    private readonly functionName: string,
    private readonly lambda: LambdaInvoker,
  ) {}

  async start(couponId: string, shard = 0): Promise<void> {
    const request: DrainRequest = shard === 0 ? { couponId } : { couponId, shard };
    await this.lambda.invokeAsync(this.functionName, request, DRAIN_START_TIMEOUT_MS);
  }
}

/** For runs without a drain function to invoke: the schedule alone drains. */
export const scheduleOnly: DrainTrigger = { start: async () => {} };
