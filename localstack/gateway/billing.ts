/**
 * One database's bill as Upstash counts it (docs/local-upstash.md has the rules and their sources), and
 * optionally its throughput cap, which Upstash enforces by making commands wait, not by failing them.
 */

export interface BillingSnapshot {
  /** Billed commands: every command sent, plus every redis.call/redis.pcall inside scripts. */
  readonly commands: number;
  /** REST requests that carried commands (single, pipeline, transaction, subscription). */
  readonly requests: number;
  /** Billed commands by the name the client sent (upper case); script calls are in `scriptCalls`. */
  readonly byCommand: Readonly<Record<string, number>>;
  /** redis.call and redis.pcall invocations inside scripts. */
  readonly scriptCalls: number;
  /** Requests that waited for the commands-per-second budget, and their waits summed. */
  readonly throttledRequests: number;
  readonly throttledMs: number;
}

export class Bill {
  private commands = 0;
  private requests = 0;
  private scriptCalls = 0;
  private byCommand = new Map<string, number>();
  private throttledRequests = 0;
  private throttledMs = 0;

  request(): void {
    this.requests++;
  }

  command(name: string, count = 1): void {
    this.commands += count;
    this.byCommand.set(name, (this.byCommand.get(name) ?? 0) + count);
  }

  calls(count: number): void {
    this.commands += count;
    this.scriptCalls += count;
  }

  waited(ms: number): void {
    this.throttledRequests++;
    this.throttledMs += ms;
  }

  snapshot(): BillingSnapshot {
    return {
      commands: this.commands,
      requests: this.requests,
      byCommand: Object.fromEntries([...this.byCommand].sort(([a], [b]) => a.localeCompare(b))),
      scriptCalls: this.scriptCalls,
      throttledRequests: this.throttledRequests,
      throttledMs: Math.round(this.throttledMs * 1000) / 1000,
    };
  }

  reset(): void {
    this.commands = 0;
    this.requests = 0;
    this.scriptCalls = 0;
    this.byCommand = new Map();
    this.throttledRequests = 0;
    this.throttledMs = 0;
  }
}

/**
 * A token bucket of commands: `rate` per second, holding at most one second's worth. A request starts
 * once at least one command's budget is there, in arrival order, and is charged what it bills; a script's
 * inner calls are known only after it ran, so they are charged then and may drive the budget below zero,
 * which later requests wait off. Nothing is refused: over the cap, latency rises.
 */
export class CommandBudget {
  private tokens: number;
  private last = performance.now();
  private readonly waiting: { cost: number; since: number; start: (waitedMs: number) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly rate: number) {
    this.tokens = rate;
  }

  /** Resolves with the milliseconds waited (0 when the budget allowed it at once). */
  take(cost: number): Promise<number> | number {
    if (this.waiting.length === 0) {
      this.refill();
      if (this.tokens >= 1) {
        this.tokens -= cost;
        return 0;
      }
    }
    return new Promise((start) => {
      this.waiting.push({ cost, since: performance.now(), start });
      this.schedule();
    });
  }

  /** Commands found out after the request started (a script's calls). */
  charge(cost: number): void {
    this.tokens -= cost;
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.waiting.splice(0)) w.start(performance.now() - w.since);
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
  }

  private schedule(): void {
    if (this.timer) return;
    this.refill();
    while (this.waiting.length > 0 && this.tokens >= 1) {
      const next = this.waiting.shift()!;
      this.tokens -= next.cost;
      next.start(performance.now() - next.since);
    }
    if (this.waiting.length === 0) return;
    const ms = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.rate));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.schedule();
    }, ms);
  }
}
