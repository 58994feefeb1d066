/**
 * The answers DynamoDB gives that the quota proxy makes itself: throttling (single operations, batches,
 * transactions) and the faults of an outage. Shapes and messages as AWS documents them (sources in
 * docs/quota-emulation.md):
 *
 * - an on-demand table answers a throttled single operation with `ThrottlingException` ("For tables
 *   using on-demand mode, this exception might be returned for any data plane API operation", error
 *   handling guide), a provisioned table with `ProvisionedThroughputExceededException`; both HTTP 400,
 *   both with throttling reasons `<Table|Index><Read|Write>KeyRangeThroughputExceeded` and the ARN of
 *   the table or index. The service model spells the member `throttlingReasons` on ThrottlingException
 *   and `ThrottlingReasons` on ProvisionedThroughputExceededException;
 * - a throttled transaction is a `TransactionCanceledException` whose reasons carry `ThrottlingError`
 *   (on-demand) or `ProvisionedThroughputExceeded` (provisioned) on the throttled items and `None` on
 *   the others, with the messages the API reference lists for each.
 */
import { randomUUID } from 'node:crypto';
import type { Charge } from './capacity.js';
import type { TableSchema } from './table-schema.js';

export interface ProxyReply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const ON_DEMAND_TABLE =
  'Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html';
const ON_DEMAND_INDEX =
  'Throughput exceeds the current capacity for one or more global secondary indexes. DynamoDB is automatically scaling your index so please try again shortly.';
const PROVISIONED_TABLE =
  'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.';
const PROVISIONED_INDEX =
  'The level of configured provisioned throughput for one or more global secondary indexes of the table was exceeded. Consider increasing your provisioning level for the under-provisioned global secondary indexes with the UpdateTable API.';

export function dynamoError(status: number, type: string, fields: Record<string, unknown>): ProxyReply {
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': requestId() },
    body: JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, ...fields }),
  };
}

/** A single operation (or a batch none of whose items could be admitted) refused by these partitions. */
export function throttledOperation(refused: readonly Charge[]): ProxyReply {
  const table = refused[0]!.table;
  const message = messageFor(
    table,
    refused.every((charge) => charge.index !== undefined),
  );
  const reasons = throttlingReasons(refused);
  return table.onDemand
    ? dynamoError(400, 'ThrottlingException', { message, throttlingReasons: reasons })
    : dynamoError(400, 'ProvisionedThroughputExceededException', { message, ThrottlingReasons: reasons });
}

/** A transaction refused because some of its items' partitions are short: `refusedPerItem[i]` for item i. */
export function throttledTransaction(refusedPerItem: readonly (readonly Charge[])[]): ProxyReply {
  const reasons = refusedPerItem.map((refused) => {
    if (refused.length === 0) return { Code: 'None' };
    const table = refused[0]!.table;
    return {
      Code: table.onDemand ? 'ThrottlingError' : 'ProvisionedThroughputExceeded',
      Message: messageFor(
        table,
        refused.every((charge) => charge.index !== undefined),
      ),
    };
  });
  return dynamoError(400, 'TransactionCanceledException', {
    Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
    CancellationReasons: reasons,
  });
}

/** What an outage answers when it answers at all. */
export function internalServerError(): ProxyReply {
  return dynamoError(500, 'InternalServerError', { message: 'Internal server error' });
}

function messageFor(table: TableSchema, indexOnly: boolean): string {
  if (table.onDemand) return indexOnly ? ON_DEMAND_INDEX : ON_DEMAND_TABLE;
  return indexOnly ? PROVISIONED_INDEX : PROVISIONED_TABLE;
}

function throttlingReasons(refused: readonly Charge[]): { reason: string; resource: string }[] {
  const reasons = new Map<string, { reason: string; resource: string }>();
  for (const charge of refused) {
    const reason = `${charge.index ? 'Index' : 'Table'}${charge.kind === 'read' ? 'Read' : 'Write'}KeyRangeThroughputExceeded`;
    const resource = charge.index?.arn ?? charge.table.arn;
    reasons.set(`${reason} ${resource}`, { reason, resource });
  }
  return [...reasons.values()];
}

function requestId(): string {
  return randomUUID().replaceAll('-', '').toUpperCase().slice(0, 32);
}
