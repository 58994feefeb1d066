import type { BreakerSettings } from '../config.js';
import { UnavailableError } from '../errors.js';
import { log } from '../log.js';

/** Redis is not asked while the breaker is open: the caller answers 503 with Retry-After at once. */
export class CircuitOpenError extends UnavailableError {}

/**
 * A container's breaker in front of Redis. When Redis hangs, every request would otherwise wait out its
 * deadline, holding a Lambda environment (and the concurrency a drop needs) for nothing; after
 * `failures` consecutive calls that timed out or found Redis unreachable, calls fail at once for
 * `openMs`. Then one call goes through (half-open): its success closes the breaker, its failure opens it
 * again; the calls made meanwhile fail at once. A call that reached Redis and got any answer (even an
 * error reply) counts as a success: Redis is there.
 *
 * Per container, not shared: each environment learns by itself, which costs each at most `failures`
 * slow calls per `openMs`.
 */
export class CircuitBreaker {
  private consecutiveFailures = 0;
  /** Set while open; the half-open probe is allowed once it has passed. */
  private openUntil: number | undefined;
  private probing = false;

  constructor(
    private readonly settings: BreakerSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Before a call: throws CircuitOpenError when the call must not be made. */
  admit(): void {
    if (this.settings.failures === 0 || this.openUntil === undefined) return;
    const left = this.openUntil - this.now();
    if (left > 0) throw new CircuitOpenError('Redis is not answering; this container waits before asking again', Math.max(1, Math.ceil(left / 1_000)));
    if (this.probing) throw new CircuitOpenError('Redis is not answering; another request is checking whether it is back', 1);
    this.probing = true;
  }

  succeeded(): void {
    if (this.openUntil !== undefined) log.warn('Redis answers again; requests go through', {});
    this.consecutiveFailures = 0;
    this.openUntil = undefined;
    this.probing = false;
  }

  failed(): void {
    if (this.settings.failures === 0) return;
    if (this.probing) {
      // The probe failed: open again, quietly (the opening was said once).
      this.openUntil = this.now() + this.settings.openMs;
      this.probing = false;
      return;
    }
    // Already open: a call admitted before it opened has failed too. It changes nothing (counting it
    // would reopen the breaker, and say so, once per `failures` calls that were in flight).
    if (this.openUntil !== undefined) return;
    this.consecutiveFailures += 1;
    if (this.consecutiveFailures < this.settings.failures) return;
    log.warn('Redis is not answering; this container answers 503 at once for a while', { openMs: this.settings.openMs, failures: this.consecutiveFailures });
    this.openUntil = this.now() + this.settings.openMs;
    this.consecutiveFailures = 0;
  }
}
