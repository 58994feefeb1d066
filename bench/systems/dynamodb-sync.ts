/**
 * Baseline "dynamodb-sync": what a team without Redis would build. One TransactWriteItems per request:
 * a guarded stock decrement on the coupon item plus a conditional put of the issuance, retrying
 * transaction conflicts with jittered backoff. Same single-table model and client settings as the ledger.
 */
import { TransactionCanceledException, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { createDynamo } from '../../lib/ledger/dynamo.js';
import { answering, BAD_ID, env, ids, reply, type Event, type Result } from './shared.js';

let dynamo: ReturnType<typeof createDynamo> | undefined;
const client = () => (dynamo ??= createDynamo({ region: 'us-east-1', endpoint: process.env.DYNAMODB_ENDPOINT }));

export const handler = answering(async (event: Event): Promise<Result> => {
  const parsed = ids(event);
  if (!parsed) return BAD_ID;
  const table = env('BENCH_SYNC_TABLE');
  const now = new Date().toISOString();
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await client().send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Update: {
                TableName: table,
                Key: { PK: { S: `COUPON#${parsed.couponId}` }, SK: { S: 'META' } },
                UpdateExpression: 'SET stock = stock - :one',
                ConditionExpression: 'stock > :zero',
                ExpressionAttributeValues: { ':one': { N: '1' }, ':zero': { N: '0' } },
              },
            },
            {
              Put: {
                TableName: table,
                Item: {
                  PK: { S: `COUPON#${parsed.couponId}` },
                  SK: { S: `ISSUE#${parsed.userId}` },
                  userId: { S: parsed.userId },
                  requestedAt: { S: now },
                  issuedAt: { S: now },
                },
                ConditionExpression: 'attribute_not_exists(PK)',
              },
            },
          ],
        }),
      );
      return reply(200, { result: 'ACCEPTED', userId: parsed.userId });
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const [stock, put] = error.CancellationReasons ?? [];
      if (put?.Code === 'ConditionalCheckFailed') return reply(200, { result: 'ALREADY_ACCEPTED', userId: parsed.userId });
      if (stock?.Code === 'ConditionalCheckFailed') return reply(409, { error: 'SOLD_OUT' });
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * 2 ** attempt));
    }
  }
  return reply(503, { error: 'UNAVAILABLE', message: 'transaction kept conflicting' });
});
