import type { RateLimitSettings } from '../config.js';

const MAX_KEYS_PER_WINDOW = 100_000;

/**
 * Requests per second per user and per client IP on one coupon, counted in this container, in one-second
 * windows of the epoch: a request over either limit is answered RATE_LIMITED without reaching Redis.
 *
 * Counting in Redis, inside the admission script, would bill two to three commands more per request
 * (HINCRBY, PTTL, PEXPIRE), as many as the admission itself needs; here it costs nothing. The limit is
 * per container, so a client spread over n containers may get n times as far: what protects Redis from
 * one client is that each of its requests is cheap, the limit (a misbehaving app), API Gateway's route
 * throttles and, deployed, WAF's rate-based rules in front of the API (see docs/deploy.md).
 */
export class RateLimiter {
  private window = -1;
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly settings: RateLimitSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Count one request; false when it is over a limit. */
  allow(couponId: string, userId: string, clientIp: string | undefined): boolean {
    const { userPerSecond, ipPerSecond } = this.settings;
    if (userPerSecond <= 0 && (ipPerSecond <= 0 || !clientIp)) return true;
    const second = Math.floor(this.now() / 1000);
    if (second !== this.window || this.counts.size >= MAX_KEYS_PER_WINDOW) {
      this.window = second;
      this.counts.clear();
    }
    let allowed = true;
    if (userPerSecond > 0 && this.count(`user:${couponId}:${userId}`) > userPerSecond) allowed = false;
    if (ipPerSecond > 0 && clientIp && this.count(`ip:${couponId}:${clientIp}`) > ipPerSecond) allowed = false;
    return allowed;
  }

  private count(key: string): number {
    const count = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, count);
    return count;
  }
}
