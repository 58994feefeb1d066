import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/**
 * The ledger's single-table model. Tools outside this code read it, so it is documented (docs/) and
 * built only here:
 *
 *   Coupon     PK=COUPON#<couponId>                SK=META
 *              name, totalQuantity, issuedCount, startsAt, endsAt?, status, createdAt, epoch?,
 *              epoch1?, epoch2?, ..., definition?, partitions?, shards?
 *   Issuance   PK=COUPON#<couponId>#P<nn>          SK=ISSUE#<userId>
 *              GSI1PK=USER#<userId>  GSI1SK=COUPON#<couponId>
 *              couponId, userId, ticket, requestedAt, issuedAt
 *
 * A coupon's issuances are spread over `partitions` partition key values, nn = a stable hash of the
 * user id (issuancePartition), so that no partition key value takes a coupon's whole flow: DynamoDB
 * gives each partition 1,000 write units a second. A coupon without `partitions` (created before they
 * existed) keeps every issuance under PK=COUPON#<couponId>, as `partitions: 1` does. Only the META
 * item's counter is written by every batch (one update per transaction of up to 99 items).
 *
 * Times are ISO-8601 strings in UTC.
 */
export type Item = Record<string, AttributeValue>;

export const GSI1 = 'GSI1';

export const couponPk = (couponId: string) => `COUPON#${couponId}`;

/** The META attribute of a shard's epoch: `epoch` for the first (as before shards existed), `epoch<n>`. */
export const epochAttribute = (shard: number) => (shard === 0 ? 'epoch' : `epoch${shard}`);

/**
 * Issuance partitions of a new coupon: a coupon then persists up to 16 partitions' worth of writes a
 * second (1,000 WCU each), more than one drain's sequential transactions need (see the docs' ledger page).
 */
export const DEFAULT_ISSUANCE_PARTITIONS = 16;
/** Partition key values a new coupon's issuances are spread over, at most. */
export const MAX_ISSUANCE_PARTITIONS = 256;

/** Which of a coupon's partitions holds a user's issuance: FNV-1a (32 bits) of the user id, modulo. */
export function issuancePartition(userId: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(userId, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

/** The partition key values of a coupon's issuances. */
export function issuancePks(couponId: string, partitions: number): string[] {
  if (partitions <= 1) return [couponPk(couponId)];
  return Array.from({ length: partitions }, (_, p) => `${couponPk(couponId)}#P${String(p).padStart(2, '0')}`);
}

export function issuancePk(couponId: string, userId: string, partitions: number): string {
  return partitions <= 1 ? couponPk(couponId) : issuancePks(couponId, partitions)[issuancePartition(userId, partitions)]!;
}
export const META_SK = 'META';
export const issueSk = (userId: string) => `ISSUE#${userId}`;
export const ISSUE_SK_PREFIX = 'ISSUE#';
export const userGsiPk = (userId: string) => `USER#${userId}`;
export const couponGsiSk = (couponId: string) => `COUPON#${couponId}`;

/** ACTIVE until issuedCount reaches totalQuantity, then FINISHED. */
export type LedgerCouponStatus = 'ACTIVE' | 'FINISHED';

export interface CouponRecord {
  readonly couponId: string;
  readonly name: string;
  readonly totalQuantity: number;
  readonly issuedCount: number;
  readonly startsAt: number;
  /** Undefined: open until sold out. */
  readonly endsAt: number | undefined;
  readonly status: LedgerCouponStatus;
  readonly createdAt: number;
  /**
   * How many times the coupon's Redis state has been rebuilt from the ledger (absent: 0), for its first
   * shard: `epochs[0]`. A batch is written only if it was claimed in its shard's current epoch (see
   * Ledger.persistBatch).
   */
  readonly epoch: number;
  /** Every shard's epoch (attribute `epoch` for shard 0, `epoch<n>` for shard n; absent: 0). */
  readonly epochs: readonly number[];
  /** Upstash databases (shards) the coupon's units are spread over (absent: 1). */
  readonly shards: number;
  /** The create request as given (see couponDefinition); absent on coupons created before it was kept. */
  readonly definition: string | undefined;
  /** Partition key values its issuances are spread over (1: all under PK=COUPON#<couponId>). */
  readonly partitions: number;
}

export interface IssuanceRecord {
  readonly couponId: string;
  readonly userId: string;
  readonly ticket: number;
  readonly requestedAt: number;
  readonly issuedAt: number;
}

/** A new coupon's record: nothing issued, first epoch, one shard and one issuance partition unless given. */
export function newCouponRecord(
  fields: Pick<CouponRecord, 'couponId' | 'name' | 'totalQuantity' | 'startsAt' | 'endsAt'> &
    Partial<Pick<CouponRecord, 'definition' | 'partitions' | 'shards' | 'createdAt'>>,
): CouponRecord {
  const shards = fields.shards ?? 1;
  return {
    issuedCount: 0,
    status: 'ACTIVE',
    createdAt: Date.now(),
    epoch: 0,
    epochs: Array.from({ length: shards }, () => 0),
    definition: undefined,
    partitions: 1,
    ...fields,
    shards,
  };
}

export function couponToItem(coupon: CouponRecord): Item {
  const item: Item = {
    PK: { S: couponPk(coupon.couponId) },
    SK: { S: META_SK },
    entity: { S: 'Coupon' },
    couponId: { S: coupon.couponId },
    name: { S: coupon.name },
    totalQuantity: { N: String(coupon.totalQuantity) },
    issuedCount: { N: String(coupon.issuedCount) },
    startsAt: { S: iso(coupon.startsAt) },
    status: { S: coupon.status },
    createdAt: { S: iso(coupon.createdAt) },
    epoch: { N: String(coupon.epoch) },
  };
  if (coupon.endsAt !== undefined) item.endsAt = { S: iso(coupon.endsAt) };
  if (coupon.definition !== undefined) item.definition = { S: coupon.definition };
  if (coupon.partitions > 1) item.partitions = { N: String(coupon.partitions) };
  if (coupon.shards > 1) item.shards = { N: String(coupon.shards) };
  for (let shard = 1; shard < coupon.shards; shard++) {
    const epoch = coupon.epochs[shard] ?? 0;
    if (epoch > 0) item[epochAttribute(shard)] = { N: String(epoch) };
  }
  return item;
}

export function couponFromItem(item: Item): CouponRecord {
  const shards = item.shards?.N ? Number(item.shards.N) : 1;
  const epochs = Array.from({ length: shards }, (_, shard) => Number(item[epochAttribute(shard)]?.N ?? 0));
  return {
    epochs,
    shards,
    couponId: str(item, 'couponId'),
    name: str(item, 'name'),
    totalQuantity: num(item, 'totalQuantity'),
    issuedCount: num(item, 'issuedCount'),
    startsAt: Date.parse(str(item, 'startsAt')),
    endsAt: item.endsAt?.S ? Date.parse(item.endsAt.S) : undefined,
    status: str(item, 'status') === 'FINISHED' ? 'FINISHED' : 'ACTIVE',
    createdAt: Date.parse(str(item, 'createdAt')),
    epoch: item.epoch?.N ? Number(item.epoch.N) : 0,
    definition: item.definition?.S,
    partitions: item.partitions?.N ? Number(item.partitions.N) : 1,
  };
}

export function issuanceToItem(issuance: IssuanceRecord, partitions: number): Item {
  return {
    PK: { S: issuancePk(issuance.couponId, issuance.userId, partitions) },
    SK: { S: issueSk(issuance.userId) },
    GSI1PK: { S: userGsiPk(issuance.userId) },
    GSI1SK: { S: couponGsiSk(issuance.couponId) },
    entity: { S: 'Issuance' },
    couponId: { S: issuance.couponId },
    userId: { S: issuance.userId },
    ticket: { N: String(issuance.ticket) },
    requestedAt: { S: iso(issuance.requestedAt) },
    issuedAt: { S: iso(issuance.issuedAt) },
  };
}

export function issuanceFromItem(item: Item): IssuanceRecord {
  return {
    couponId: str(item, 'couponId'),
    userId: str(item, 'userId'),
    ticket: num(item, 'ticket'),
    requestedAt: Date.parse(str(item, 'requestedAt')),
    issuedAt: Date.parse(str(item, 'issuedAt')),
  };
}

export const iso = (epochMs: number) => new Date(epochMs).toISOString();

function str(item: Item, name: string): string {
  const value = item[name]?.S;
  if (value === undefined) throw new Error(`ledger item ${item.PK?.S}/${item.SK?.S} has no string ${name}`);
  return value;
}

function num(item: Item, name: string): number {
  const value = item[name]?.N;
  if (value === undefined) throw new Error(`ledger item ${item.PK?.S}/${item.SK?.S} has no number ${name}`);
  return Number(value);
}
