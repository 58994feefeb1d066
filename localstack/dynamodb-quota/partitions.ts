/**
 * Per-partition throughput: a token bucket for reads and one for writes per partition key value of each
 * table and index, and the units every partition consumed (totals, per-second peaks, throttled requests).
 *
 * A bucket holds `burstSeconds` (default 1) of its rate and refills continuously. A request is admitted
 * when every bucket it touches holds its estimated units (a request larger than a full bucket is admitted
 * on a full bucket); those units are reserved at once, so concurrent requests cannot all pass on the same
 * tokens. When DynamoDB has answered, the reservation is replaced by what the request really consumed,
 * which may leave a bucket in debt: the partition then refuses until it has refilled. A throttled request
 * consumes nothing.
 */
import type { Charge } from './capacity.js';

export interface PartitionLimits {
  /** Write units per second per partition key value; undefined: no write limit. */
  readonly writeUnitsPerSecond?: number;
  /** Read units per second per partition key value; undefined: no read limit. */
  readonly readUnitsPerSecond?: number;
  /** How many seconds of unused throughput a partition can save up (default 1). */
  readonly burstSeconds?: number;
}

export interface PartitionStats {
  readonly partition: string;
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly throttledRequests: number;
  readonly peakWriteUnitsPerSecond: number;
  readonly peakReadUnitsPerSecond: number;
}

export interface ResourceStats {
  readonly table: string;
  /** Undefined: the table itself. */
  readonly index: string | undefined;
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly throttledRequests: number;
  readonly partitionCount: number;
  /** The partitions that consumed the most units (reads and writes together), most first. */
  readonly topPartitions: readonly PartitionStats[];
}

interface Bucket {
  level: number;
  at: number;
}

interface Usage {
  writeUnits: number;
  readUnits: number;
  throttledRequests: number;
  peakWriteUnitsPerSecond: number;
  peakReadUnitsPerSecond: number;
  second: number;
  writeThisSecond: number;
  readThisSecond: number;
}

const TOP_PARTITIONS = 10;

export class PartitionLedger {
  private readonly buckets = new Map<string, Bucket>();
  private readonly usage = new Map<string, Map<string, Usage>>();

  constructor(
    private readonly limits: PartitionLimits | undefined,
    private readonly clock: () => number,
  ) {}

  /**
   * Admits the charges if no bucket they touch is short, reserving their units; otherwise returns the
   * charges whose buckets are short (and reserves nothing).
   */
  admit(charges: readonly Charge[]): Charge[] {
    if (!this.limits) return [];
    const demand = new Map<string, { units: number; rate: number }>();
    for (const charge of charges) {
      const rate = this.rate(charge.kind);
      if (rate === undefined) continue;
      const key = bucketKey(charge);
      const entry = demand.get(key) ?? { units: 0, rate };
      entry.units += charge.units;
      demand.set(key, entry);
    }
    const short = new Set<string>();
    for (const [key, { units, rate }] of demand) {
      const capacity = rate * this.burstSeconds();
      if (this.refill(key, rate).level < Math.min(units, capacity)) short.add(key);
    }
    if (short.size > 0) return charges.filter((charge) => short.has(bucketKey(charge)));
    for (const [key, { units }] of demand) this.buckets.get(key)!.level -= units;
    return [];
  }

  /** Replaces a reservation by what the request consumed, and records the consumption. */
  settle(reserved: readonly Charge[], consumed: readonly Charge[]): void {
    if (this.limits) {
      const net = new Map<string, { charge: Charge; units: number }>();
      for (const [charges, sign] of [
        [reserved, +1],
        [consumed, -1],
      ] as const) {
        for (const charge of charges) {
          const key = bucketKey(charge);
          const entry = net.get(key) ?? { charge, units: 0 };
          entry.units += sign * charge.units;
          net.set(key, entry);
        }
      }
      for (const { charge, units } of net.values()) this.adjust(charge, units);
    }
    const second = Math.floor(this.clock() / 1000);
    for (const charge of consumed) {
      const usage = this.usageOf(charge);
      if (usage.second !== second) {
        usage.second = second;
        usage.writeThisSecond = 0;
        usage.readThisSecond = 0;
      }
      if (charge.kind === 'write') {
        usage.writeUnits += charge.units;
        usage.writeThisSecond += charge.units;
        usage.peakWriteUnitsPerSecond = Math.max(usage.peakWriteUnitsPerSecond, usage.writeThisSecond);
      } else {
        usage.readUnits += charge.units;
        usage.readThisSecond += charge.units;
        usage.peakReadUnitsPerSecond = Math.max(usage.peakReadUnitsPerSecond, usage.readThisSecond);
      }
    }
  }

  /** Records one throttled request against each partition that refused it. */
  throttled(refused: readonly Charge[]): void {
    const seen = new Set<string>();
    for (const charge of refused) {
      const key = `${resourceKey(charge)}\u0000${charge.partition}`;
      if (seen.has(key)) continue;
      seen.add(key);
      this.usageOf(charge).throttledRequests += 1;
    }
  }

  stats(): ResourceStats[] {
    return [...this.usage.entries()].map(([resource, partitions]) => {
      const [table, index] = JSON.parse(resource) as [string, string | null];
      const all = [...partitions.entries()].map(([partition, u]) => ({
        partition,
        writeUnits: u.writeUnits,
        readUnits: u.readUnits,
        throttledRequests: u.throttledRequests,
        peakWriteUnitsPerSecond: u.peakWriteUnitsPerSecond,
        peakReadUnitsPerSecond: u.peakReadUnitsPerSecond,
      }));
      return {
        table,
        index: index ?? undefined,
        writeUnits: sum(all, (p) => p.writeUnits),
        readUnits: sum(all, (p) => p.readUnits),
        throttledRequests: sum(all, (p) => p.throttledRequests),
        partitionCount: all.length,
        topPartitions: all
          .sort((a, b) => b.writeUnits + b.readUnits - (a.writeUnits + a.readUnits) || b.throttledRequests - a.throttledRequests)
          .slice(0, TOP_PARTITIONS),
      };
    });
  }

  /** Forgets every count and refills every bucket. */
  reset(): void {
    this.buckets.clear();
    this.usage.clear();
  }

  private rate(kind: Charge['kind']): number | undefined {
    return kind === 'write' ? this.limits?.writeUnitsPerSecond : this.limits?.readUnitsPerSecond;
  }

  private burstSeconds(): number {
    return this.limits?.burstSeconds ?? 1;
  }

  private refill(key: string, rate: number): Bucket {
    const now = this.clock();
    const capacity = rate * this.burstSeconds();
    const bucket = this.buckets.get(key);
    if (!bucket) {
      const full = { level: capacity, at: now };
      this.buckets.set(key, full);
      return full;
    }
    bucket.level = Math.min(capacity, bucket.level + (rate * Math.max(0, now - bucket.at)) / 1000);
    bucket.at = now;
    return bucket;
  }

  private adjust(charge: Charge, units: number): void {
    const rate = this.rate(charge.kind);
    if (rate === undefined) return;
    const bucket = this.refill(bucketKey(charge), rate);
    bucket.level = Math.min(rate * this.burstSeconds(), bucket.level + units);
  }

  private usageOf(charge: Charge): Usage {
    const resource = resourceKey(charge);
    let partitions = this.usage.get(resource);
    if (!partitions) this.usage.set(resource, (partitions = new Map()));
    let usage = partitions.get(charge.partition);
    if (!usage) {
      usage = {
        writeUnits: 0,
        readUnits: 0,
        throttledRequests: 0,
        peakWriteUnitsPerSecond: 0,
        peakReadUnitsPerSecond: 0,
        second: 0,
        writeThisSecond: 0,
        readThisSecond: 0,
      };
      partitions.set(charge.partition, usage);
    }
    return usage;
  }
}

function resourceKey(charge: Charge): string {
  return JSON.stringify([charge.table.name, charge.index?.name ?? null]);
}

function bucketKey(charge: Charge): string {
  return `${resourceKey(charge)}\u0000${charge.kind}\u0000${charge.partition}`;
}

function sum<T>(items: readonly T[], of: (item: T) => number): number {
  return items.reduce((total, item) => total + of(item), 0);
}
