import { AwsCallError, AwsEndpoint, credentialsFromEnv } from '../aws/client.js';
import { UnavailableError } from '../errors.js';
import { couponFromItem, couponPk, META_SK, type CouponRecord, type Item } from './model.js';

/** Reads a coupon's META: the one ledger read the admission path makes (a coupon Redis does not know). */
export interface CouponReader {
  getCoupon(couponId: string): Promise<CouponRecord | undefined>;
}

/** The one ledger read of the admission path, connection included (lib/budgets.ts counts it). */
export const COUPON_READ_TIMEOUT_MS = 1_000;

/**
 * CouponReader over DynamoDB's JSON API with our small signed client: the issue handler reads one item
 * and carries no AWS SDK (docs: cold start). The item is DynamoDB's wire format, which is what the
 * model's couponFromItem reads.
 */
export class DynamoCouponReader implements CouponReader {
  private readonly endpoint: AwsEndpoint;

  constructor(
    region: string,
    endpoint: string | undefined,
    private readonly tableName: string,
  ) {
    this.endpoint = new AwsEndpoint('dynamodb', region, endpoint, () => credentialsFromEnv(process.env, endpoint !== undefined));
  }

  async getCoupon(couponId: string): Promise<CouponRecord | undefined> {
    try {
      const reply = await this.endpoint.call({
        path: '/',
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.GetItem' },
        body: JSON.stringify({ TableName: this.tableName, Key: { PK: { S: couponPk(couponId) }, SK: { S: META_SK } }, ConsistentRead: true }),
        timeoutMs: COUPON_READ_TIMEOUT_MS,
      });
      const item = (JSON.parse(reply.text) as { Item?: Item }).Item;
      return item ? couponFromItem(item) : undefined;
    } catch (error) {
      if (error instanceof AwsCallError && error.transient) throw new UnavailableError('the ledger is unavailable (read coupon)', 1, { cause: error });
      throw error;
    }
  }
}
