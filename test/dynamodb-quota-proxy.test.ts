/**
 * The quota proxy in front of the run's DynamoDB Local: exact units per partition key value for each
 * operation the project uses, throttling of a hot partition (and of a hot index partition) with
 * DynamoDB's own error shapes, an outage. Time is frozen (the proxy's clock option): a partition refills
 * only when a test moves the clock, so counts never depend on how fast this machine is.
 */
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  TransactGetItemsCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { Ledger } from '../lib/ledger/ledger.js';
import { couponPk, newCouponRecord, userGsiPk } from '../lib/ledger/model.js';
import { scaledDynamoLimits, startDynamoQuotaProxy, type DynamoQuotaProxy, type PartitionStats } from '../localstack/dynamodb-quota-proxy.js';
import { services } from './support/deps.js';

type Item = Record<string, AttributeValue>;

const run = `qp-${process.pid}-${Date.now().toString(36)}`;
let counter = 0;
const unique = (label: string) => `${run}-${label}-${++counter}`;

/** Bytes of an item of string attributes only, by the documented rule (names + UTF-8 values); ASCII here. */
const bytesOf = (item: Record<string, string>) => Object.entries(item).reduce((sum, [name, value]) => sum + name.length + value.length, 0);

/** An item of string attributes padded (attribute `pad`) to exactly `bytes`. */
function sized(bytes: number, attributes: Record<string, string>): Item {
  const pad = 'x'.repeat(bytes - bytesOf(attributes) - 'pad'.length);
  const item: Record<string, string> = { ...attributes, pad };
  expect(bytesOf(item)).toBe(bytes);
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, { S: value }]));
}

function partition(proxy: DynamoQuotaProxy, table: string, index: string | undefined, key: string): PartitionStats | undefined {
  const resource = proxy.stats().resources.find((r) => r.table === table && r.index === index);
  return resource?.topPartitions.find((p) => p.partition === key);
}

const writes = (proxy: DynamoQuotaProxy, table: string, key: string, index?: string) => partition(proxy, table, index, key)?.writeUnits ?? 0;
const reads = (proxy: DynamoQuotaProxy, table: string, key: string, index?: string) => partition(proxy, table, index, key)?.readUnits ?? 0;

function client(endpoint: string, extra: Partial<DynamoDBClientConfig> = {}): DynamoDBClient {
  return new DynamoDBClient({ region: 'us-east-1', endpoint, maxAttempts: 1, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, ...extra });
}

describe('DynamoDB quota proxy: units consumed per partition key value', () => {
  let proxy: DynamoQuotaProxy;
  let db: DynamoDBClient;
  const table = () => services().tableName;

  beforeAll(async () => {
    proxy = await startDynamoQuotaProxy({ target: services().dynamodbEndpoint });
    db = client(proxy.url);
  });
  afterAll(async () => {
    db.destroy();
    await proxy.close();
  });
  beforeEach(() => proxy.reset());

  it('a PutItem of 1.5 KB costs 2 write units, and its new GSI entry 2 index write units', async () => {
    const [pk, gsi] = [unique('put'), unique('g')];
    await db.send(new PutItemCommand({ TableName: table(), Item: sized(1536, { PK: pk, SK: 'A', GSI1PK: gsi, GSI1SK: 'S' }) }));
    expect(writes(proxy, table(), pk)).toBe(2);
    expect(writes(proxy, table(), gsi, 'GSI1')).toBe(2);
    expect(proxy.stats().resources.find((r) => r.index === undefined)).toMatchObject({ writeUnits: 2, readUnits: 0, throttledRequests: 0 });
  });

  it('a transactional Put of 1.5 KB costs twice as much: 4 write units', async () => {
    const pk = unique('tx');
    await db.send(new TransactWriteItemsCommand({ TransactItems: [{ Put: { TableName: table(), Item: sized(1536, { PK: pk, SK: 'A' }) } }] }));
    expect(writes(proxy, table(), pk)).toBe(4);
  });

  it('an UpdateItem costs the larger of the item before and after it', async () => {
    const pk = unique('update');
    const key = { PK: { S: pk }, SK: { S: 'A' } };
    await db.send(new PutItemCommand({ TableName: table(), Item: sized(1536, { PK: pk, SK: 'A' }) }));
    expect(writes(proxy, table(), pk)).toBe(2);
    // 1,536 -> 2,560 bytes: 3 units.
    await db.send(
      new UpdateItemCommand({
        TableName: table(),
        Key: key,
        UpdateExpression: 'SET extra = :e',
        ExpressionAttributeValues: { ':e': { S: 'e'.repeat(1024 - 'extra'.length) } },
      }),
    );
    expect(writes(proxy, table(), pk)).toBe(2 + 3);
    // 2,560 -> 1,024 bytes: still the larger, 3 units.
    await db.send(new UpdateItemCommand({ TableName: table(), Key: key, UpdateExpression: 'REMOVE #pad', ExpressionAttributeNames: { '#pad': 'pad' } }));
    expect(writes(proxy, table(), pk)).toBe(2 + 3 + 3);
  });

  it('GSI writes by AWS rules: a new entry 1, an index key change 2 (old and new partition), a projected attribute 1, a removed key 1, an item outside the index 0', async () => {
    const [pk, g1, g2] = [unique('gsi'), unique('g1'), unique('g2')];
    const key = { PK: { S: pk }, SK: { S: 'A' } };
    const update = (expression: string, values?: Item) =>
      db.send(new UpdateItemCommand({ TableName: table(), Key: key, UpdateExpression: expression, ExpressionAttributeValues: values }));
    await db.send(new PutItemCommand({ TableName: table(), Item: { ...key, GSI1PK: { S: g1 }, GSI1SK: { S: 'S' } } }));
    expect([writes(proxy, table(), g1, 'GSI1'), writes(proxy, table(), g2, 'GSI1')]).toEqual([1, 0]);
    await update('SET GSI1PK = :g', { ':g': { S: g2 } });
    expect([writes(proxy, table(), g1, 'GSI1'), writes(proxy, table(), g2, 'GSI1')]).toEqual([1 + 1, 1]);
    await update('SET note = :n', { ':n': { S: 'projected, since the index projects ALL' } });
    expect(writes(proxy, table(), g2, 'GSI1')).toBe(1 + 1);
    await update('REMOVE GSI1PK');
    expect(writes(proxy, table(), g2, 'GSI1')).toBe(1 + 1 + 1);
    await update('SET note = :n', { ':n': { S: 'no longer in the index' } });
    expect(writes(proxy, table(), g2, 'GSI1')).toBe(3);
    expect(writes(proxy, table(), pk)).toBe(5);
  });

  it('a GetItem of 5 KB: strongly consistent 2 read units, eventually consistent 1; a missing item still 1', async () => {
    const pk = unique('get');
    const key = { PK: { S: pk }, SK: { S: 'A' } };
    await db.send(new PutItemCommand({ TableName: table(), Item: sized(5120, { PK: pk, SK: 'A' }) }));
    await db.send(new GetItemCommand({ TableName: table(), Key: key, ConsistentRead: true }));
    expect(reads(proxy, table(), pk)).toBe(2);
    await db.send(new GetItemCommand({ TableName: table(), Key: key, ProjectionExpression: 'SK' }));
    expect(reads(proxy, table(), pk)).toBe(2 + 1);
    await db.send(new GetItemCommand({ TableName: table(), Key: { ...key, SK: { S: 'missing' } }, ConsistentRead: true }));
    expect(reads(proxy, table(), pk)).toBe(2 + 1 + 1);
  });

  it('a Query over 10 items of 1,000 bytes costs their total per 4 KB on the queried partition key value, projection or not; on GSI1, on the index partition', async () => {
    const [pk, gsi] = [unique('query'), unique('gq')];
    for (let i = 0; i < 10; i++) {
      await db.send(new PutItemCommand({ TableName: table(), Item: sized(1000, { PK: pk, SK: `I${i}`, GSI1PK: gsi, GSI1SK: `I${i}` }) }));
    }
    const query = (consistent: boolean, projection?: string) =>
      db.send(
        new QueryCommand({
          TableName: table(),
          KeyConditionExpression: 'PK = :pk',
          ExpressionAttributeValues: { ':pk': { S: pk } },
          ConsistentRead: consistent,
          ProjectionExpression: projection,
        }),
      );
    // 10,000 bytes: 3 blocks of 4 KB.
    expect((await query(false)).Items).toHaveLength(10);
    expect(reads(proxy, table(), pk)).toBe(1.5);
    await query(true);
    expect(reads(proxy, table(), pk)).toBe(1.5 + 3);
    await query(true, 'SK');
    expect(reads(proxy, table(), pk)).toBe(1.5 + 3 + 3);
    await db.send(
      new QueryCommand({
        TableName: table(),
        IndexName: 'GSI1',
        KeyConditionExpression: '#pk = :g',
        ExpressionAttributeNames: { '#pk': 'GSI1PK' },
        ExpressionAttributeValues: { ':g': { S: gsi } },
      }),
    );
    expect(reads(proxy, table(), gsi, 'GSI1')).toBe(1.5);
  });

  it('a failed condition still costs the existing item (1 unit when there is none); a cancelled transaction costs its prepare phase', async () => {
    const pk = unique('condition');
    await db.send(new PutItemCommand({ TableName: table(), Item: sized(1536, { PK: pk, SK: 'A' }) }));
    const before = writes(proxy, table(), pk);
    await expect(
      db.send(new PutItemCommand({ TableName: table(), Item: { PK: { S: pk }, SK: { S: 'A' } }, ConditionExpression: 'attribute_not_exists(PK)' })),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect(writes(proxy, table(), pk) - before).toBe(2);
    await expect(
      db.send(
        new UpdateItemCommand({
          TableName: table(),
          Key: { PK: { S: pk }, SK: { S: 'none' } },
          UpdateExpression: 'SET a = :a',
          ConditionExpression: 'attribute_exists(PK)',
          ExpressionAttributeValues: { ':a': { S: 'a' } },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect(writes(proxy, table(), pk) - before).toBe(2 + 1);
    await expect(
      db.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: table(), Item: sized(1536, { PK: pk, SK: 'B' }) } },
            { Put: { TableName: table(), Item: { PK: { S: pk }, SK: { S: 'A' } }, ConditionExpression: 'attribute_not_exists(PK)' } },
          ],
        }),
      ),
    ).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    // Prepare only: the new item 1 (none existed), the existing 1.5 KB item 2.
    expect(writes(proxy, table(), pk) - before).toBe(2 + 1 + 1 + 2);
  });

  it('BatchWriteItem counts each put as a PutItem, BatchGetItem each item as a GetItem rounded on its own', async () => {
    const pk = unique('batch');
    await db.send(
      new BatchWriteItemCommand({
        RequestItems: { [table()]: [sized(500, { PK: pk, SK: 'A' }), sized(3584, { PK: pk, SK: 'B' })].map((Item) => ({ PutRequest: { Item } })) },
      }),
    );
    expect(writes(proxy, table(), pk)).toBe(1 + 4);
    await db.send(
      new BatchGetItemCommand({
        RequestItems: { [table()]: { ConsistentRead: true, Keys: ['A', 'B', 'missing'].map((sk) => ({ PK: { S: pk }, SK: { S: sk } })) } },
      }),
    );
    expect(reads(proxy, table(), pk)).toBe(1 + 1 + 1);
  });

  it('a TransactGetItems costs 2 read units per 4 KB of each whole item', async () => {
    const pk = unique('txget');
    await db.send(new PutItemCommand({ TableName: table(), Item: sized(5120, { PK: pk, SK: 'A' }) }));
    await db.send(
      new TransactGetItemsCommand({
        TransactItems: ['A', 'missing'].map((sk) => ({ Get: { TableName: table(), Key: { PK: { S: pk }, SK: { S: sk } }, ProjectionExpression: 'SK' } })),
      }),
    );
    expect(reads(proxy, table(), pk)).toBe(2 * 2 + 2);
  });

  it("the ledger's batch of 3 issuances: 2 units per item and for the counter on the coupon's partition, 1 on each user's GSI partition", async () => {
    const ledger = new Ledger(createDynamo({ region: 'us-east-1', endpoint: proxy.url }), table());
    const couponId = unique('coupon');
    const now = Date.now();
    await ledger.createCoupon(newCouponRecord({ couponId, name: 'c', totalQuantity: 10, startsAt: now, endsAt: undefined, createdAt: now }));
    const users = ['u1', 'u2', 'u3'].map((u) => `${couponId}-${u}`);
    await ledger.persistBatch(
      couponId,
      10,
      users.map((userId, i) => ({ userId, ticket: i + 1, requestedAt: now })),
    );
    expect(writes(proxy, table(), couponPk(couponId))).toBe(1 + 3 * 2 + 2);
    for (const userId of users) expect(writes(proxy, table(), userGsiPk(userId), 'GSI1')).toBe(1);
  });

  it('another process reads the stats on /_fcfs/stats and resets them, switches an outage and sets a latency there', async () => {
    const pk = unique('http');
    await db.send(new PutItemCommand({ TableName: table(), Item: { PK: { S: pk }, SK: { S: 'A' } } }));
    const overHttp = (await (await fetch(`${proxy.url}/_fcfs/stats`)).json()) as { requests: number };
    expect(overHttp).toEqual(JSON.parse(JSON.stringify(proxy.stats())));
    expect(overHttp.requests).toBe(1);
    expect((await fetch(`${proxy.url}/_fcfs/reset`, { method: 'POST' })).status).toBe(200);
    expect(proxy.stats()).toMatchObject({ requests: 0, resources: [] });

    const post = async (path: string, body: unknown) => (await fetch(`${proxy.url}/_fcfs/${path}`, { method: 'POST', body: JSON.stringify(body) })).json();
    expect(await post('latency', { ms: 5 })).toEqual({ latencyMs: 5 });
    await db.send(new GetItemCommand({ TableName: table(), Key: { PK: { S: pk }, SK: { S: 'A' } } }));
    expect(await post('latency', { ms: 0 })).toEqual({ latencyMs: 0 });
    expect(await post('outage', { on: true })).toEqual({ outage: true });
    await expect(db.send(new GetItemCommand({ TableName: table(), Key: { PK: { S: pk }, SK: { S: 'A' } } }))).rejects.toMatchObject({
      name: 'InternalServerError',
    });
    expect(await post('outage', { on: false })).toEqual({ outage: false });
    expect(proxy.stats()).toMatchObject({ requests: 1, outageFailures: 1 });
  });
});

describe('DynamoDB quota proxy: a hot partition is throttled as DynamoDB throttles it', () => {
  let proxy: DynamoQuotaProxy;
  let db: DynamoDBClient;
  let direct: DynamoDBClient;
  let now = 1_000_000;
  const table = () => services().tableName;
  /** Every answer of the SDK, as the SDK's retry logic classified each error. */
  const classified: string[] = [];

  beforeAll(async () => {
    proxy = await startDynamoQuotaProxy({ target: services().dynamodbEndpoint, limits: { writeUnitsPerSecond: 10, readUnitsPerSecond: 30 }, clock: () => now });
    db = client(proxy.url, {
      // The SDK's own verdict on each error, as its retry middleware hands it to a retry strategy.
      retryStrategy: {
        acquireInitialRetryToken: async () => ({ getRetryCount: () => 0, getRetryDelay: () => 0 }),
        refreshRetryTokenForRetry: async (_token: unknown, info: { errorType: string }) => {
          classified.push(info.errorType);
          throw new Error('no retry');
        },
        recordSuccess: () => undefined,
      },
    });
    direct = createDynamo({ region: 'us-east-1', endpoint: services().dynamodbEndpoint });
  });
  afterAll(async () => {
    db.destroy();
    direct.destroy();
    await proxy.close();
  });
  beforeEach(() => {
    proxy.reset();
    classified.length = 0;
    now += 60_000;
  });

  const put = (pk: string, sk: string, extra: Item = {}) =>
    db.send(new PutItemCommand({ TableName: table(), Item: { PK: { S: pk }, SK: { S: sk }, ...extra } }));
  const stored = async (pk: string, sk: string) =>
    (await direct.send(new GetItemCommand({ TableName: table(), Key: { PK: { S: pk }, SK: { S: sk } }, ConsistentRead: true }))).Item;

  it('30 one-unit writes at once to one partition key: 10 pass, 20 are throttled; the same 30 over 30 keys all pass', async () => {
    const hot = unique('hot');
    const burst = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => put(hot, `S${i}`)));
    expect(burst.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(burst.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.name)).toEqual(Array(20).fill('ThrottlingException'));
    expect(partition(proxy, table(), undefined, hot)).toMatchObject({ writeUnits: 10, throttledRequests: 20, peakWriteUnitsPerSecond: 10 });

    const spread = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => put(unique(`cold${i}`), 'S')));
    expect(spread.filter((r) => r.status === 'rejected')).toHaveLength(0);
    expect(proxy.stats()).toMatchObject({ requests: 60, throttledRequests: 20 });

    now += 1_000;
    await expect(put(hot, 'after-a-second')).resolves.toBeDefined();
  });

  it('a throttled single operation on an on-demand table: ThrottlingException (400), reason and ARN, classified by the SDK as throttling; nothing written', async () => {
    const hot = unique('shape');
    await Promise.allSettled(Array.from({ length: 10 }, (_, i) => put(hot, `S${i}`)));
    const error = await put(hot, 'refused').then(
      () => undefined,
      (e: unknown) => e as Record<string, any>,
    );
    expect(error).toMatchObject({
      name: 'ThrottlingException',
      $metadata: { httpStatusCode: 400 },
      throttlingReasons: [{ reason: 'TableWriteKeyRangeThroughputExceeded', resource: expect.stringMatching(new RegExp(`:table/${table()}$`)) }],
    });
    expect(error?.message).toMatch(/^Throughput exceeds the current capacity of your table or index\./);
    // DynamoDB's model marks no error @retryable, so $retryable is unset: the SDK classifies by the error's name.
    expect(error?.$retryable).toBeUndefined();
    expect(classified).toEqual(['THROTTLING']);
    expect(await stored(hot, 'refused')).toBeUndefined();
  });

  it('on a provisioned table the same refusal is a ProvisionedThroughputExceededException with ThrottlingReasons', async () => {
    const provisioned = `quota-proxy-provisioned-${process.pid}`;
    await direct.send(
      new CreateTableCommand({
        TableName: provisioned,
        AttributeDefinitions: [{ AttributeName: 'PK', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'PK', KeyType: 'HASH' }],
        ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 },
      }),
    );
    const write = (i: number) => db.send(new PutItemCommand({ TableName: provisioned, Item: { PK: { S: 'hot' }, n: { N: String(i) } } }));
    await Promise.allSettled(Array.from({ length: 10 }, (_, i) => write(i)));
    await expect(write(99)).rejects.toMatchObject({
      name: 'ProvisionedThroughputExceededException',
      message: expect.stringMatching(/^The level of configured provisioned throughput for the table was exceeded/),
      ThrottlingReasons: [{ reason: 'TableWriteKeyRangeThroughputExceeded', resource: expect.stringMatching(new RegExp(`:table/${provisioned}$`)) }],
    });
    expect(classified.at(-1)).toBe('THROTTLING');
  });

  it('a throttled transaction is cancelled with ThrottlingError on the hot item and None on the others, and writes nothing', async () => {
    const [hot, cold] = [unique('txhot'), unique('txcold')];
    await Promise.allSettled(Array.from({ length: 10 }, (_, i) => put(hot, `S${i}`)));
    const error = await db
      .send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: table(), Item: { PK: { S: cold }, SK: { S: 'A' } } } },
            {
              Update: {
                TableName: table(),
                Key: { PK: { S: hot }, SK: { S: 'S0' } },
                UpdateExpression: 'SET n = :n',
                ExpressionAttributeValues: { ':n': { N: '1' } },
              },
            },
          ],
        }),
      )
      .then(
        () => undefined,
        (e: unknown) => e as Record<string, any>,
      );
    expect(error).toMatchObject({
      name: 'TransactionCanceledException',
      message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [None, ThrottlingError]',
      CancellationReasons: [
        { Code: 'None' },
        { Code: 'ThrottlingError', Message: expect.stringMatching(/^Throughput exceeds the current capacity of your table or index\./) },
      ],
    });
    expect(await stored(cold, 'A')).toBeUndefined();
    expect((await stored(hot, 'S0'))?.n).toBeUndefined();
    expect(writes(proxy, table(), cold)).toBe(0);
  });

  it('back-pressure: writes to distinct keys whose GSI partition is over its cap are throttled, naming the index', async () => {
    const gsi = unique('hotindex');
    const burst = await Promise.allSettled(Array.from({ length: 15 }, (_, i) => put(unique(`user${i}`), 'S', { GSI1PK: { S: gsi }, GSI1SK: { S: `S${i}` } })));
    const refused = burst.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    expect(refused).toHaveLength(5);
    expect(refused[0]).toMatchObject({
      name: 'ThrottlingException',
      message:
        'Throughput exceeds the current capacity for one or more global secondary indexes. DynamoDB is automatically scaling your index so please try again shortly.',
      throttlingReasons: [{ reason: 'IndexWriteKeyRangeThroughputExceeded', resource: expect.stringMatching(/\/index\/GSI1$/) }],
    });
    expect(partition(proxy, table(), 'GSI1', gsi)).toMatchObject({ writeUnits: 10, throttledRequests: 5 });
  });

  it('a batch sends what the hot partition can take and hands the rest back as UnprocessedItems', async () => {
    const hot = unique('batchhot');
    const requests = Array.from({ length: 15 }, (_, i) => ({ PutRequest: { Item: { PK: { S: hot }, SK: { S: `S${i}` } } } }));
    const answer = await db.send(new BatchWriteItemCommand({ RequestItems: { [table()]: requests } }));
    expect(answer.UnprocessedItems?.[table()]).toHaveLength(5);
    const left = new Set(answer.UnprocessedItems?.[table()]?.map((r) => r.PutRequest?.Item?.SK?.S));
    for (const { PutRequest } of requests) {
      const sk = PutRequest.Item.SK.S;
      expect(await stored(hot, sk), sk).toEqual(left.has(sk) ? undefined : PutRequest.Item);
    }
    expect(partition(proxy, table(), undefined, hot)).toMatchObject({ writeUnits: 10, throttledRequests: 1 });
  });

  it('the scale factor divides both partition limits', () => {
    expect(scaledDynamoLimits(100)).toEqual({ writeUnitsPerSecond: 10, readUnitsPerSecond: 30 });
    expect(() => scaledDynamoLimits(0)).toThrow(RangeError);
  });
});

describe('DynamoDB quota proxy: an outage', () => {
  it('fails every call (a 500 or a reset connection) and changes nothing, then recovers', async () => {
    const proxy = await startDynamoQuotaProxy({ target: services().dynamodbEndpoint });
    const db = client(proxy.url);
    const direct = createDynamo({ region: 'us-east-1', endpoint: services().dynamodbEndpoint });
    const pk = unique('outage');
    try {
      proxy.setOutage(true);
      const calls = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => db.send(new PutItemCommand({ TableName: services().tableName, Item: { PK: { S: pk }, SK: { S: `S${i}` } } }))),
      );
      const failures = calls.map((r) =>
        r.status === 'rejected' ? ((r.reason as { name: string; code?: string }).code ?? (r.reason as { name: string }).name) : 'written',
      );
      expect(failures.filter((f) => f === 'InternalServerError')).toHaveLength(3);
      expect(failures.filter((f) => f === 'ECONNRESET')).toHaveLength(3);
      const left = await direct.send(
        new QueryCommand({
          TableName: services().tableName,
          KeyConditionExpression: 'PK = :pk',
          ExpressionAttributeValues: { ':pk': { S: pk } },
          ConsistentRead: true,
        }),
      );
      expect(left.Items).toEqual([]);
      expect(proxy.stats()).toMatchObject({ outageFailures: 6, requests: 0 });

      proxy.setOutage(false);
      await db.send(new PutItemCommand({ TableName: services().tableName, Item: { PK: { S: pk }, SK: { S: 'after' } } }));
      expect(writes(proxy, services().tableName, pk)).toBe(1);
    } finally {
      db.destroy();
      direct.destroy();
      await proxy.close();
    }
  });
});
