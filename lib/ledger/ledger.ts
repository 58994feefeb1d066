import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  QueryCommand,
  ThrottlingException,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type CancellationReason,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { InvalidInputError } from '../errors.js';
import { LedgerRefusedError, LedgerThrottledError } from './faults.js';
import {
  couponFromItem,
  couponGsiSk,
  couponPk,
  couponToItem,
  DEFAULT_ISSUANCE_PARTITIONS,
  epochAttribute,
  GSI1,
  ISSUE_SK_PREFIX,
  issuanceFromItem,
  issuancePk,
  issuancePks,
  issuanceToItem,
  META_SK,
  userGsiPk,
  type CouponRecord,
  type IssuanceRecord,
  type Item,
} from './model.js';

/** An item the drain asks the ledger to persist. */
export interface IssuanceRequest {
  readonly userId: string;
  readonly ticket: number;
  readonly requestedAt: number;
}

/** What the ledger decided, per user: persisted (now or earlier) or refused by the coupon's cap. */
export type LedgerDecision = { readonly kind: 'ISSUED'; readonly issuedAt: number } | { readonly kind: 'REJECTED' };

export interface BatchResult {
  readonly decisions: Map<string, LedgerDecision>;
  /** Items this call added to the ledger (excludes redeliveries that were already there). */
  readonly newlyIssued: number;
  /** Set when the cap refused items: Redis admitted more than the ledger allows. */
  readonly capExceeded: boolean;
  /**
   * Items not written because they were claimed in an earlier epoch than the ledger's: the coupon's
   * Redis state was rebuilt since (or is being rebuilt). Nothing of them is in the ledger.
   */
  readonly stale: readonly IssuanceRequest[];
  /** The ledger's epoch, when stale items were found. */
  readonly ledgerEpoch: number | undefined;
}

export type CreateCouponResult = { readonly kind: 'CREATED' } | { readonly kind: 'COUPON_EXISTS' };

export interface Page<T> {
  readonly items: T[];
  readonly cursor: string | undefined;
}

/** Puts per transaction: DynamoDB's 100-action limit less the coupon counter update. */
export const MAX_BATCH = 99;

/** Transaction conflicts (another writer on the same META) are retried this many times. */
const CONFLICT_RETRIES = 8;

/**
 * The durable record of every issuance: DynamoDB, single table. The ledger, not Redis, has the last word
 * on how many units exist: every batch moves the coupon's issuedCount in the same transaction as its
 * issuance items, guarded so it can never pass totalQuantity.
 */
export class Ledger {
  /** Issuance partitions per coupon: fixed when a coupon is created, so read once per container. */
  private readonly partitions = new Map<string, number>();

  constructor(
    private readonly dynamo: DynamoDBClient,
    readonly tableName: string,
    /** Issuance partitions of the coupons created from now on (LEDGER_PARTITIONS). */
    readonly newCouponPartitions = DEFAULT_ISSUANCE_PARTITIONS,
  ) {}

  /** Write a coupon's META; a repeat of an existing couponId changes nothing. */
  async createCoupon(coupon: CouponRecord): Promise<CreateCouponResult> {
    try {
      await this.dynamo.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: couponToItem(coupon),
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
      return { kind: 'CREATED' };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return { kind: 'COUPON_EXISTS' };
      throw error;
    }
  }

  async getCoupon(couponId: string, consistent = false): Promise<CouponRecord | undefined> {
    const reply = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { PK: { S: couponPk(couponId) }, SK: { S: META_SK } },
        ConsistentRead: consistent,
      }),
    );
    if (!reply.Item) return undefined;
    const coupon = couponFromItem(reply.Item);
    this.partitions.set(couponId, coupon.partitions);
    return coupon;
  }

  async getIssuance(couponId: string, userId: string): Promise<IssuanceRecord | undefined> {
    const reply = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { PK: { S: issuancePk(couponId, userId, await this.partitionsOf(couponId)) }, SK: { S: `${ISSUE_SK_PREFIX}${userId}` } },
        ConsistentRead: true,
      }),
    );
    return reply.Item ? issuanceFromItem(reply.Item) : undefined;
  }

  /** How many partition key values the coupon's issuances are spread over (1 when it has no META). */
  private async partitionsOf(couponId: string): Promise<number> {
    return this.partitions.get(couponId) ?? (await this.getCoupon(couponId, true))?.partitions ?? 1;
  }

  /**
   * Persist a batch of winners (at most MAX_BATCH, in ticket order) in one TransactWriteItems:
   * one Put per item guarded by attribute_not_exists(PK), plus one Update adding the batch size to the
   * coupon's issuedCount, guarded by issuedCount <= totalQuantity - batchSize and by the coupon's epoch
   * being the one the batch was claimed in.
   *
   * The epoch fences batches claimed before a rebuild. A rebuild moves the epoch on before it scans the
   * ledger, so every batch it does not see in its scan is refused from then on:
   *
   *   drain    claim u2,u3 (epoch 0) ............................ write: refused, stale -> readmitted
   *   Redis          state lost
   *   rebuild                        epoch 0->1 | scan | count | load (epoch 1)
   *
   * Without the fence the write could land after its users' page was scanned (their tickets never
   * restored, their tickets given again to newcomers) or after the counter was read (units sold twice).
   *
   * When the transaction is cancelled:
   * - a Put whose condition failed is a redelivery of an item already persisted: it is decided ISSUED
   *   (with its original issuedAt) and dropped, and the rest is retried, so it is counted once;
   * - a failed counter guard means Redis admitted more than the ledger allows (it lost state): only what
   *   the cap still allows is persisted, in ticket order, and the rest is REJECTED;
   * - a failed epoch guard means the batch was claimed before a rebuild: nothing is written and the
   *   undecided items come back as stale, for the drain to give them back to the rebuilt state;
   * - a conflict with another transaction on the same counter is retried with jittered backoff;
   * - throttling (a partition over its capacity) is thrown as LedgerThrottledError at once, for the
   *   drain to slow down rather than retry in place.
   * Anything else is a fault and is thrown: the caller releases the batch for another attempt.
   *
   * @param epoch the epoch of its shard the batch was claimed in (0 until that shard is first rebuilt)
   * @param shard the shard (Upstash database) the batch was claimed from
   */
  async persistBatch(couponId: string, totalQuantity: number, batch: readonly IssuanceRequest[], epoch = 0, shard = 0): Promise<BatchResult> {
    if (batch.length > MAX_BATCH) throw new RangeError(`a batch holds at most ${MAX_BATCH} items, got ${batch.length}`);
    const decisions = new Map<string, LedgerDecision>();
    let pending = [...batch].sort((a, b) => a.ticket - b.ticket);
    let newlyIssued = 0;
    let capExceeded = false;
    let conflicts = 0;

    const partitions = await this.partitionsOf(couponId);
    while (pending.length > 0) {
      const issuedAt = Date.now();
      try {
        await this.dynamo.send(
          new TransactWriteItemsCommand({ TransactItems: this.batchActions(couponId, totalQuantity, pending, issuedAt, { epoch, shard }, partitions) }),
        );
        for (const item of pending) decisions.set(item.userId, { kind: 'ISSUED', issuedAt });
        newlyIssued += pending.length;
        break;
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons: CancellationReason[] = error.CancellationReasons ?? [];
        const counterReason = reasons[pending.length];
        const refused = reasons.filter((r) => r.Code === 'ValidationError');
        if (refused.length > 0) {
          // An item DynamoDB cannot store: not transient, so the drain isolates it instead of retrying.
          throw new LedgerRefusedError(`the ledger refused ${refused.length} item(s): ${refused[0]?.Message ?? 'ValidationError'}`, { cause: error });
        }

        const alreadyPersisted = pending.filter((_, i) => reasons[i]?.Code === 'ConditionalCheckFailed');
        if (alreadyPersisted.length > 0) {
          for (const [i, item] of pending.entries()) {
            if (reasons[i]?.Code !== 'ConditionalCheckFailed') continue;
            decisions.set(item.userId, { kind: 'ISSUED', issuedAt: await this.persistedAt(couponId, item, reasons[i]) });
          }
          const done = new Set(alreadyPersisted.map((item) => item.userId));
          pending = pending.filter((item) => !done.has(item.userId));
          continue;
        }

        if (counterReason?.Code === 'ConditionalCheckFailed') {
          const coupon = counterReason.Item ? couponFromItem(counterReason.Item) : await this.getCoupon(couponId, true);
          if (!coupon) throw new Error(`coupon ${couponId} has no META in the ledger`, { cause: error });
          const ledgerEpoch = coupon.epochs[shard] ?? 0;
          if (ledgerEpoch !== epoch) return { decisions, newlyIssued, capExceeded, stale: pending, ledgerEpoch };
          const capacity = Math.max(0, coupon.totalQuantity - coupon.issuedCount);
          capExceeded = true;
          for (const item of pending.slice(capacity)) decisions.set(item.userId, { kind: 'REJECTED' });
          pending = pending.slice(0, capacity);
          continue;
        }

        if (reasons.some((r) => r.Code === 'ThrottlingError' || r.Code === 'ProvisionedThroughputExceeded')) {
          throw new LedgerThrottledError(`the ledger throttled a batch of ${pending.length}: ${reasons.find((r) => r.Message)?.Message ?? 'ThrottlingError'}`, {
            cause: error,
          });
        }
        const conflicting = reasons.some((r) => r.Code === 'TransactionConflict');
        if (conflicting && conflicts < CONFLICT_RETRIES) {
          conflicts += 1;
          await sleep(jitteredBackoff(conflicts));
          continue;
        }
        throw error;
      }
    }
    return { decisions, newlyIssued, capExceeded, stale: [], ledgerEpoch: undefined };
  }

  /**
   * Start a new epoch of a shard before its Redis state is rebuilt: from now on, batches claimed from the
   * lost state are refused (see persistBatch). Returns the new epoch.
   */
  async nextEpoch(couponId: string, shard = 0): Promise<number> {
    const reply = await this.dynamo.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: { PK: { S: couponPk(couponId) }, SK: { S: META_SK } },
        UpdateExpression: 'SET #epoch = if_not_exists(#epoch, :zero) + :one',
        ConditionExpression: 'attribute_exists(PK)',
        ExpressionAttributeNames: { '#epoch': epochAttribute(shard) },
        ExpressionAttributeValues: { ':zero': { N: '0' }, ':one': { N: '1' } },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Number(reply.Attributes?.[epochAttribute(shard)]?.N);
  }

  /**
   * Mark the coupon FINISHED once every unit is persisted. True when this call marked it. Throttled (the
   * META item's partition busy with the drains' counter updates, past the SDK's attempts), it is not
   * marked now, as if incomplete: a later drain of the coupon marks it (drain.ts, finishedInLedger), and
   * nothing waits for the mark.
   */
  async markFinishedIfComplete(couponId: string): Promise<boolean> {
    try {
      await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { PK: { S: couponPk(couponId) }, SK: { S: META_SK } },
          UpdateExpression: 'SET #status = :finished',
          ConditionExpression: 'issuedCount = totalQuantity AND #status <> :finished',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':finished': { S: 'FINISHED' } },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      if (error instanceof ThrottlingException || error instanceof ProvisionedThroughputExceededException) return false;
      throw error;
    }
  }

  /**
   * Correct the coupon's counter to the number of issuance items (reconcile), only if it still holds
   * the value read. True when corrected.
   */
  async correctIssuedCount(couponId: string, expected: number, actual: number): Promise<boolean> {
    try {
      await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { PK: { S: couponPk(couponId) }, SK: { S: META_SK } },
          UpdateExpression: 'SET issuedCount = :actual',
          ConditionExpression: 'issuedCount = :expected',
          ExpressionAttributeValues: { ':actual': { N: String(actual) }, ':expected': { N: String(expected) } },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Every issuance of a coupon, in pages, partition after partition (to rebuild Redis state and to reconcile). */
  async *issuancesOf(couponId: string): AsyncGenerator<IssuanceRecord[]> {
    for (const pk of issuancePks(couponId, await this.partitionsOf(couponId))) {
      let startKey: Item | undefined;
      do {
        const reply = await this.dynamo.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'PK = :pk AND begins_with(SK, :issue)',
            ExpressionAttributeValues: { ':pk': { S: pk }, ':issue': { S: ISSUE_SK_PREFIX } },
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        );
        yield (reply.Items ?? []).map(issuanceFromItem);
        startKey = reply.LastEvaluatedKey;
      } while (startKey);
    }
  }

  /** A user's issued coupons, newest index order, from GSI1. */
  async issuancesOfUser(userId: string, limit: number, cursor?: string): Promise<Page<IssuanceRecord>> {
    const reply = await this.dynamo.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: GSI1,
        KeyConditionExpression: 'GSI1PK = :user AND begins_with(GSI1SK, :coupon)',
        ExpressionAttributeValues: { ':user': { S: userGsiPk(userId) }, ':coupon': { S: couponGsiSk('') } },
        Limit: limit,
        ExclusiveStartKey: cursor ? decodeCursor(cursor, userGsiPk(userId)) : undefined,
      }),
    );
    return {
      items: (reply.Items ?? []).map(issuanceFromItem),
      cursor: reply.LastEvaluatedKey ? encodeCursor(reply.LastEvaluatedKey) : undefined,
    };
  }

  private batchActions(
    couponId: string,
    totalQuantity: number,
    pending: readonly IssuanceRequest[],
    issuedAt: number,
    claimed: { epoch: number; shard: number },
    partitions: number,
  ): TransactWriteItem[] {
    const puts: TransactWriteItem[] = pending.map((item) => ({
      Put: {
        TableName: this.tableName,
        Item: issuanceToItem({ couponId, userId: item.userId, ticket: item.ticket, requestedAt: item.requestedAt, issuedAt }, partitions),
        ConditionExpression: 'attribute_not_exists(PK)',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    }));
    const counter: TransactWriteItem = {
      Update: {
        TableName: this.tableName,
        Key: { PK: { S: couponPk(couponId) }, SK: { S: META_SK } },
        UpdateExpression: 'SET issuedCount = issuedCount + :n',
        // issuedCount + n <= totalQuantity, written without arithmetic, which conditions cannot do. The
        // epoch is absent until the first rebuild, when only epoch-0 claims can exist.
        ConditionExpression: 'attribute_exists(PK) AND issuedCount <= :limit AND (attribute_not_exists(#epoch) OR #epoch = :epoch)',
        ExpressionAttributeNames: { '#epoch': epochAttribute(claimed.shard) },
        ExpressionAttributeValues: {
          ':n': { N: String(pending.length) },
          ':limit': { N: String(totalQuantity - pending.length) },
          ':epoch': { N: String(claimed.epoch) },
        },
        // The coupon as it was, in the cancellation: which guard failed needs no second read.
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
    return [...puts, counter];
  }

  /**
   * issuedAt of an item whose Put found it already there (from the cancellation, else a read).
   * Throws when neither shows the item: deciding it ISSUED would have the drain acknowledge an item the
   * ledger does not hold, and nothing would ever write it. Thrown, the batch goes back for another try.
   */
  private async persistedAt(couponId: string, item: IssuanceRequest, reason: CancellationReason | undefined): Promise<number> {
    const old = reason?.Item?.issuedAt?.S;
    if (old) return Date.parse(old);
    const existing = await this.getIssuance(couponId, item.userId);
    if (!existing) {
      throw new Error(`the ledger refused ${item.userId}'s issuance as already there, but does not hold it`);
    }
    return existing.issuedAt;
  }
}

function jitteredBackoff(attempt: number): number {
  return Math.random() * Math.min(1_000, 10 * 2 ** attempt);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function encodeCursor(key: Item): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** A cursor is only accepted for the partition it was issued for. */
function decodeCursor(cursor: string, gsiPk: string): Item {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString());
  } catch {
    key = undefined;
  }
  const item = key as Item | undefined;
  const fits = (value: string | undefined, prefix: string) => typeof value === 'string' && value.startsWith(prefix) && value.length <= 100;
  if (
    typeof item !== 'object' ||
    item === null ||
    item.GSI1PK?.S !== gsiPk ||
    !fits(item.PK?.S, 'COUPON#') ||
    item.SK?.S !== `${ISSUE_SK_PREFIX}${gsiPk.slice('USER#'.length)}` ||
    !fits(item.GSI1SK?.S, 'COUPON#')
  ) {
    throw new InvalidInputError('cursor is not one this API returned for this user');
  }
  return { PK: { S: item.PK!.S! }, SK: { S: item.SK!.S! }, GSI1PK: { S: gsiPk }, GSI1SK: { S: item.GSI1SK!.S! } };
}
