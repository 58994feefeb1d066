import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { META_SK } from '../lib/ledger/model.js';
import type { Stack } from './stack.js';

/**
 * After an unclean stop (kill -9, a crash, a power cut), reconcile every coupon the local ledger holds.
 *
 * Why the local stack needs this and AWS does not: DynamoDB Local acknowledges a transaction a moment
 * before its write reaches the database file. Killed in that moment, it comes back without a
 * transaction it had acknowledged (bench/dynamodb-local-durability.ts shows it; docs/operations.md has
 * the figures). The drain had already marked those items
 * ISSUED in Redis, so nothing would ever write them again. Reconcile finds them (MARKED_NOT_PERSISTED)
 * and queues them again, and corrects any counter that moved with them. DynamoDB itself does not acknowledge before
 * the write is durable, so a deployed stage never needs it.
 *
 * Returns one line per coupon that had differences or could not be reconciled (none when all were in
 * sync), and how many could not, or not completely (`retry`).
 */
export async function reconcileAfterUncleanStop(stack: Stack, adminToken: string): Promise<{ lines: string[]; failed: number }> {
  const lines: string[] = [];
  let failed = 0;
  for (const couponId of await ledgerCouponIds(stack)) {
    const url = `${stack.apiUrl}/api/v2/admin/coupons/${encodeURIComponent(couponId)}/reconcile`;
    const reply = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } }).catch((error: unknown) => error as Error);
    const body =
      reply instanceof Response ? ((await reply.json().catch(() => ({}))) as { summary?: Record<string, number>; retry?: boolean; message?: string }) : {};
    if (!(reply instanceof Response) || !reply.ok) {
      failed += 1;
      const why = reply instanceof Response ? `${reply.status} ${body.message ?? ''}` : String(reply);
      lines.push(`coupon ${couponId}: reconcile failed (${why}); run npm run reconcile -- --coupon ${couponId}`);
      continue;
    }
    const found = Object.entries(body.summary ?? {});
    const what = found.map(([kind, count]) => `${count} ${kind}`).join(', ');
    if (body.retry) {
      // A counter moved while it was checked (requests are already arriving): not finished.
      failed += 1;
      lines.push(
        `coupon ${couponId}: ${found.length > 0 ? `found ${what}, ` : ''}not finished, state moved meanwhile; run npm run reconcile -- --coupon ${couponId}`,
      );
      continue;
    }
    if (found.length === 0) continue;
    lines.push(`coupon ${couponId}: repaired ${what}`);
  }
  return { lines, failed };
}

/**
 * Every couponId in the ledger. A full Scan: fine for a local table, never used on a request path.
 */
async function ledgerCouponIds(stack: Stack): Promise<string[]> {
  const dynamo = createDynamo({ region: stack.env.AWS_REGION ?? 'us-east-1', endpoint: stack.dynamodbEndpoint });
  const ids: string[] = [];
  try {
    let startKey: Record<string, any> | undefined;
    do {
      const page = await dynamo.send(
        new ScanCommand({
          TableName: stack.env.TABLE_NAME,
          FilterExpression: 'SK = :meta',
          ExpressionAttributeValues: { ':meta': { S: META_SK } },
          ProjectionExpression: 'couponId',
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) if (item.couponId?.S) ids.push(item.couponId.S);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  } finally {
    dynamo.destroy();
  }
  return ids;
}
