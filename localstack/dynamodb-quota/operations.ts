/**
 * Each data-plane operation the quota proxy accounts: which items it touches (locked, so that the item
 * read before the write and after it is exactly what this write saw and left), what it is estimated to
 * cost before it runs (to admit it), and what it consumed once DynamoDB answered.
 *
 * Scan, PartiQL and the control plane pass through unaccounted.
 */
import type { Backend, BackendReply } from './backend.js';
import { indexWrites, minimalRead, read, refusedWrite, tableWrite, updateEstimate, type Charge } from './capacity.js';
import type { Item, ReadConsistency } from './item-size.js';
import { itemId, partitionValue, primaryKeyOf, type IndexSchema, type TableSchema } from './table-schema.js';

export interface OperationContext {
  readonly backend: Backend;
  schema(tableName: string): Promise<TableSchema | undefined>;
  /** The client's request sent on to DynamoDB, with this body. */
  forward(body: unknown): Promise<BackendReply>;
}

export interface Outcome {
  /** What the client gets: DynamoDB's reply, or one the operation rewrote. */
  readonly reply: BackendReply;
  readonly consumed: readonly Charge[];
}

/**
 * `single`: all or nothing, refused as a throttled operation. `transaction`: all or nothing, refused as a
 * cancelled transaction naming the throttled items. `batch`: the items that cannot be admitted are
 * handed back as unprocessed, as DynamoDB does.
 */
export type Admission = 'single' | 'transaction' | 'batch';

export interface Operation {
  readonly admission: Admission;
  /** Items to lock while the operation runs (writes only). */
  readonly itemIds: readonly string[];
  /** Reads what the estimate needs (the items before a write). */
  prepare(): Promise<void>;
  /** The estimated charges of each of the operation's items. */
  estimates(): readonly (readonly Charge[])[];
  /** Runs the operation with the admitted items (all of them, except in a batch). */
  execute(admitted: readonly boolean[]): Promise<Outcome>;
}

type Body = Record<string, any>;

/** The operation named by X-Amz-Target, or undefined to pass it through unaccounted. */
export async function accountedOperation(name: string, body: Body, context: OperationContext): Promise<Operation | undefined> {
  switch (name) {
    case 'PutItem':
    case 'UpdateItem':
    case 'DeleteItem':
      return singleWrite(name, body, context);
    case 'GetItem':
      return getItem(body, context);
    case 'Query':
      return query(body, context);
    case 'TransactWriteItems':
      return transactWrite(body, context);
    case 'TransactGetItems':
      return transactGet(body, context);
    case 'BatchWriteItem':
      return batchWrite(body, context);
    case 'BatchGetItem':
      return batchGet(body, context);
    default:
      return undefined;
  }
}

/** The error type of a reply (`ConditionalCheckFailedException`), or undefined for a 200. */
export function errorType(reply: BackendReply): string | undefined {
  if (reply.status === 200) return undefined;
  try {
    const type = String((JSON.parse(reply.body.toString('utf8')) as Body).__type ?? '');
    return type.slice(type.indexOf('#') + 1);
  } catch {
    return 'unknown';
  }
}

function parseReply(reply: BackendReply): Body {
  return JSON.parse(reply.body.toString('utf8')) as Body;
}

function rewritten(reply: BackendReply, body: Body): BackendReply {
  // The body changed: DynamoDB's CRC32 of it no longer holds.
  const { 'x-amz-crc32': _crc, 'content-length': _length, ...headers } = reply.headers;
  return { status: reply.status, headers, body: Buffer.from(JSON.stringify(body)) };
}

interface Target {
  readonly table: TableSchema;
  readonly key: Item;
}

async function target(context: OperationContext, tableName: unknown, keyOrItem: unknown): Promise<Target | undefined> {
  if (typeof tableName !== 'string' || !keyOrItem || typeof keyOrItem !== 'object') return undefined;
  const table = await context.schema(tableName);
  const key = table ? primaryKeyOf(table, keyOrItem as Item) : undefined;
  return table && key ? { table, key } : undefined;
}

async function targets(context: OperationContext, pairs: readonly [unknown, unknown][]): Promise<Target[] | undefined> {
  const found: Target[] = [];
  for (const [tableName, keyOrItem] of pairs) {
    const one = await target(context, tableName, keyOrItem);
    if (!one) return undefined;
    found.push(one);
  }
  return found;
}

/** PutItem, UpdateItem, DeleteItem: the larger of the item before and after, its index writes. */
async function singleWrite(name: 'PutItem' | 'UpdateItem' | 'DeleteItem', body: Body, context: OperationContext): Promise<Operation | undefined> {
  const t = await target(context, body.TableName, name === 'PutItem' ? body.Item : body.Key);
  if (!t) return undefined;
  let before: Item | undefined;
  const after = (): Promise<Item | undefined> =>
    name === 'PutItem' ? Promise.resolve(body.Item as Item) : name === 'DeleteItem' ? Promise.resolve(undefined) : context.backend.getItem(t.table, t.key);
  const written = (next: Item | undefined) => [tableWrite(t.table, t.key, before, next, false), ...indexWrites(t.table, before, next)];
  return {
    admission: 'single',
    itemIds: [itemId(t.table, t.key)],
    prepare: async () => {
      before = await context.backend.getItem(t.table, t.key);
    },
    estimates: () => [name === 'UpdateItem' ? updateEstimate(t.table, t.key, before, false) : written(name === 'PutItem' ? (body.Item as Item) : undefined)],
    execute: async () => {
      const reply = await context.forward(body);
      const type = errorType(reply);
      if (type === undefined) return { reply, consumed: written(await after()) };
      if (type === 'ConditionalCheckFailedException') return { reply, consumed: [refusedWrite(t.table, t.key, before)] };
      return { reply, consumed: [] };
    },
  };
}

function consistencyOf(consistent: unknown): ReadConsistency {
  return consistent === true ? 'strong' : 'eventual';
}

/** GetItem: the whole item's size (a projection does not make it cheaper), per 4 KB. */
async function getItem(body: Body, context: OperationContext): Promise<Operation | undefined> {
  const t = await target(context, body.TableName, body.Key);
  if (!t) return undefined;
  const partition = partitionValue(t.key[t.table.hashKey]);
  const consistency = consistencyOf(body.ConsistentRead);
  return {
    admission: 'single',
    itemIds: [],
    prepare: async () => undefined,
    estimates: () => [[minimalRead(t.table, undefined, partition, consistency)]],
    execute: async () => {
      const reply = await context.forward(body);
      if (errorType(reply) !== undefined) return { reply, consumed: [] };
      let item = parseReply(reply).Item as Item | undefined;
      if (item && (body.ProjectionExpression || body.AttributesToGet)) item = await context.backend.getItem(t.table, t.key);
      return { reply, consumed: [read(t.table, undefined, partition, [item], consistency)] };
    },
  };
}

const FILTERING = ['ProjectionExpression', 'AttributesToGet', 'FilterExpression', 'QueryFilter', 'ConditionalOperator', 'Select'];

/**
 * Query: the total size of the items it evaluated, per 4 KB, charged to the partition key value it
 * queried (of the table or of the index). A filter or a projection does not lower the cost, so when the
 * request has one the same page is read again without it, uncounted, to learn the items' full sizes.
 */
async function query(body: Body, context: OperationContext): Promise<Operation | undefined> {
  if (typeof body.TableName !== 'string') return undefined;
  const table = await context.schema(body.TableName);
  if (!table) return undefined;
  const index: IndexSchema | undefined = table.indexes.find((i) => i.name === body.IndexName);
  const partition = queriedPartition(body, index ?? table);
  const consistency = consistencyOf(body.ConsistentRead);
  return {
    admission: 'single',
    itemIds: [],
    prepare: async () => undefined,
    estimates: () => [[minimalRead(table, index, partition, consistency)]],
    execute: async () => {
      const reply = await context.forward(body);
      if (errorType(reply) !== undefined) return { reply, consumed: [] };
      let items = (parseReply(reply).Items ?? []) as Item[];
      if (FILTERING.some((field) => body[field] !== undefined)) {
        const plain: Body = { ...body };
        for (const field of [...FILTERING, 'ReturnConsumedCapacity']) delete plain[field];
        const used = String(plain.KeyConditionExpression ?? '');
        plain.ExpressionAttributeNames = pick(body.ExpressionAttributeNames, used);
        plain.ExpressionAttributeValues = pick(body.ExpressionAttributeValues, used);
        items = ((await context.backend.call<Body>('Query', plain)).Items ?? []) as Item[];
      }
      return { reply, consumed: [read(table, index, partition, items, consistency)] };
    },
  };
}

/** The placeholders of a map that an expression uses (DynamoDB refuses unused ones). */
function pick(map: Record<string, unknown> | undefined, expression: string): Record<string, unknown> | undefined {
  if (!map) return undefined;
  const kept = Object.fromEntries(Object.entries(map).filter(([placeholder]) => new RegExp(`${placeholder}(?![A-Za-z0-9_])`).test(expression)));
  return Object.keys(kept).length > 0 ? kept : undefined;
}

/** The partition key value of a Query: `hash = :value` in its key condition (or the legacy KeyConditions). */
export function queriedPartition(body: Body, keys: { hashKey: string }): string {
  if (body.KeyConditions) return partitionValue(body.KeyConditions[keys.hashKey]?.AttributeValueList?.[0]);
  const names: Record<string, string> = body.ExpressionAttributeNames ?? {};
  const values: Record<string, Item[string]> = body.ExpressionAttributeValues ?? {};
  const operand = '(#[A-Za-z0-9_]+|:[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*)';
  const equality = new RegExp(`${operand}\\s*=\\s*${operand}`, 'g');
  for (const [, left, right] of String(body.KeyConditionExpression ?? '').matchAll(equality)) {
    const [path, value] = left!.startsWith(':') ? [right!, left!] : [left!, right!];
    const name = path.startsWith('#') ? names[path] : path;
    if (name === keys.hashKey && value.startsWith(':')) return partitionValue(values[value]);
  }
  return '(unparsed key condition)';
}

interface WriteAction {
  readonly kind: 'Put' | 'Update' | 'Delete' | 'ConditionCheck';
  readonly target: Target;
  readonly item: Item | undefined;
}

/**
 * TransactWriteItems: two units per KB of each item (the larger of before and after; a ConditionCheck
 * the item it checked), plus its index writes. Cancelled by DynamoDB: the prepare phase only (see
 * refusedWrite). Throttled: not sent, a cancellation naming the throttled items.
 */
async function transactWrite(body: Body, context: OperationContext): Promise<Operation | undefined> {
  const raw = (body.TransactItems ?? []) as Body[];
  const kinds = raw.map((entry) => (['Put', 'Update', 'Delete', 'ConditionCheck'] as const).find((kind) => entry[kind]));
  if (kinds.some((kind) => kind === undefined)) return undefined;
  const found = await targets(
    context,
    raw.map((entry, i) => {
      const action = entry[kinds[i]!] as Body;
      return [action.TableName, kinds[i] === 'Put' ? action.Item : action.Key];
    }),
  );
  if (!found) return undefined;
  const actions: WriteAction[] = found.map((t, i) => ({ kind: kinds[i]!, target: t, item: kinds[i] === 'Put' ? (raw[i]!.Put.Item as Item) : undefined }));
  let before = new Map<string, Item>();
  const id = (a: WriteAction) => itemId(a.target.table, a.target.key);
  const charges = (a: WriteAction, after: Item | undefined): Charge[] => {
    const old = before.get(id(a));
    const { table, key } = a.target;
    if (a.kind === 'ConditionCheck') return [tableWrite(table, key, old, old, true)];
    return [tableWrite(table, key, old, after, true), ...indexWrites(table, old, after)];
  };
  return {
    admission: 'transaction',
    itemIds: actions.map(id),
    prepare: async () => {
      before = await context.backend.getItems(actions.map((a) => a.target));
    },
    estimates: () =>
      actions.map((a) =>
        a.kind === 'Update'
          ? updateEstimate(a.target.table, a.target.key, before.get(id(a)), true)
          : charges(a, a.kind === 'Put' ? a.item : a.kind === 'Delete' ? undefined : before.get(id(a))),
      ),
    execute: async () => {
      const reply = await context.forward(body);
      const type = errorType(reply);
      if (type === 'TransactionCanceledException') {
        return { reply, consumed: actions.map((a) => refusedWrite(a.target.table, a.target.key, before.get(id(a)))) };
      }
      if (type !== undefined) return { reply, consumed: [] };
      const updated = await context.backend.getItems(actions.filter((a) => a.kind === 'Update').map((a) => a.target));
      const after = (a: WriteAction) =>
        a.kind === 'Put' ? a.item : a.kind === 'Update' ? updated.get(id(a)) : a.kind === 'Delete' ? undefined : before.get(id(a));
      return { reply, consumed: actions.flatMap((a) => charges(a, after(a))) };
    },
  };
}

/** TransactGetItems: two units per 4 KB of each whole item. */
async function transactGet(body: Body, context: OperationContext): Promise<Operation | undefined> {
  const gets = ((body.TransactItems ?? []) as Body[]).map((entry) => entry.Get as Body | undefined);
  if (gets.some((get) => !get)) return undefined;
  const found = await targets(
    context,
    gets.map((get) => [get!.TableName, get!.Key]),
  );
  if (!found) return undefined;
  const charge = (t: Target, item: Item | undefined) => read(t.table, undefined, partitionValue(t.key[t.table.hashKey]), [item], 'transactional');
  return {
    admission: 'transaction',
    itemIds: [],
    prepare: async () => undefined,
    estimates: () => found.map((t) => [charge(t, undefined)]),
    execute: async () => {
      const reply = await context.forward(body);
      if (errorType(reply) !== undefined) return { reply, consumed: [] };
      const responses = (parseReply(reply).Responses ?? []) as { Item?: Item }[];
      const projected = gets.some((get) => get!.ProjectionExpression);
      const full = projected ? await context.backend.getItems(found) : undefined;
      return {
        reply,
        consumed: found.map((t, i) => charge(t, full ? full.get(itemId(t.table, t.key)) : responses[i]?.Item)),
      };
    },
  };
}

interface BatchWrite {
  readonly tableName: string;
  readonly request: Body;
  readonly target: Target;
  readonly item: Item | undefined;
}

/**
 * BatchWriteItem: each put or delete as a PutItem or DeleteItem. Items on a throttled partition come back
 * in UnprocessedItems, with the ones DynamoDB left; all of them throttled, the batch is refused.
 */
async function batchWrite(body: Body, context: OperationContext): Promise<Operation | undefined> {
  const writes: { tableName: string; request: Body }[] = Object.entries((body.RequestItems ?? {}) as Record<string, Body[]>).flatMap(([tableName, requests]) =>
    requests.map((request) => ({ tableName, request })),
  );
  const found = await targets(
    context,
    writes.map(({ tableName, request }) => [tableName, request.PutRequest?.Item ?? request.DeleteRequest?.Key]),
  );
  if (!found) return undefined;
  const items: BatchWrite[] = writes.map((w, i) => ({ ...w, target: found[i]!, item: w.request.PutRequest?.Item as Item | undefined }));
  let before = new Map<string, Item>();
  const id = (w: BatchWrite) => itemId(w.target.table, w.target.key);
  const charges = (w: BatchWrite) => {
    const old = before.get(id(w));
    return [tableWrite(w.target.table, w.target.key, old, w.item, false), ...indexWrites(w.target.table, old, w.item)];
  };
  return {
    admission: 'batch',
    itemIds: items.map(id),
    prepare: async () => {
      before = await context.backend.getItems(items.map((w) => w.target));
    },
    estimates: () => items.map(charges),
    execute: async (admitted) => {
      const sent = items.filter((_, i) => admitted[i]);
      const held = items.filter((_, i) => !admitted[i]);
      const reply = await context.forward({ ...body, RequestItems: groupByTable(sent, (w) => w.request) });
      if (errorType(reply) !== undefined) return { reply, consumed: [] };
      const answer = parseReply(reply);
      const unprocessed = (answer.UnprocessedItems ?? {}) as Record<string, Body[]>;
      const left = new Set(
        Object.values(unprocessed)
          .flat()
          .map((request) => JSON.stringify(request)),
      );
      const consumed = sent.filter((w) => !left.has(JSON.stringify(w.request))).flatMap(charges);
      if (held.length === 0) return { reply, consumed };
      for (const w of held) (unprocessed[w.tableName] ??= []).push(w.request);
      return { reply: rewritten(reply, { ...answer, UnprocessedItems: unprocessed }), consumed };
    },
  };
}

interface BatchRead {
  readonly tableName: string;
  readonly target: Target;
}

/** BatchGetItem: each item as a GetItem (rounded to 4 KB one by one). Throttled items come back unprocessed. */
async function batchGet(body: Body, context: OperationContext): Promise<Operation | undefined> {
  const requestItems = (body.RequestItems ?? {}) as Record<string, Body>;
  const keys = Object.entries(requestItems).flatMap(([tableName, request]) => ((request.Keys ?? []) as Item[]).map((key) => ({ tableName, key })));
  const found = await targets(
    context,
    keys.map(({ tableName, key }) => [tableName, key]),
  );
  if (!found) return undefined;
  const reads: BatchRead[] = keys.map((k, i) => ({ tableName: k.tableName, target: found[i]! }));
  const charge = (r: BatchRead, item: Item | undefined) =>
    read(r.target.table, undefined, partitionValue(r.target.key[r.target.table.hashKey]), [item], consistencyOf(requestItems[r.tableName]!.ConsistentRead));
  return {
    admission: 'batch',
    itemIds: [],
    prepare: async () => undefined,
    estimates: () => reads.map((r) => [charge(r, undefined)]),
    execute: async (admitted) => {
      const sent = reads.filter((_, i) => admitted[i]);
      const held = reads.filter((_, i) => !admitted[i]);
      const withKeys = (group: readonly BatchRead[]) =>
        Object.fromEntries(Object.entries(groupByTable(group, (r) => r.target.key)).map(([name, list]) => [name, { ...requestItems[name], Keys: list }]));
      const reply = await context.forward({ ...body, RequestItems: withKeys(sent) });
      if (errorType(reply) !== undefined) return { reply, consumed: [] };
      const answer = parseReply(reply);
      const unprocessed = (answer.UnprocessedKeys ?? {}) as Record<string, Body>;
      const left = new Set(
        Object.entries(unprocessed).flatMap(([name, request]) => ((request.Keys ?? []) as Item[]).map((key) => JSON.stringify([name, key]))),
      );
      const processed = sent.filter((r) => !left.has(JSON.stringify([r.tableName, r.target.key])));
      const projected = Object.values(requestItems).some((request) => request.ProjectionExpression || request.AttributesToGet);
      const items = new Map<string, Item>();
      if (projected) for (const [k, v] of await context.backend.getItems(processed.map((r) => r.target))) items.set(k, v);
      else {
        for (const [name, list] of Object.entries((answer.Responses ?? {}) as Record<string, Item[]>)) {
          const table = await context.schema(name);
          for (const item of list) if (table) items.set(itemId(table, primaryKeyOf(table, item)!), item);
        }
      }
      const consumed = processed.map((r) => charge(r, items.get(itemId(r.target.table, r.target.key))));
      if (held.length === 0) return { reply, consumed };
      for (const [name, request] of Object.entries(withKeys(held))) {
        const kept = unprocessed[name];
        unprocessed[name] = kept ? { ...kept, Keys: [...(kept.Keys as Item[]), ...(request.Keys as Item[])] } : request;
      }
      return { reply: rewritten(reply, { ...answer, UnprocessedKeys: unprocessed }), consumed };
    },
  };
}

function groupByTable<T extends { tableName: string }, V>(entries: readonly T[], value: (entry: T) => V): Record<string, V[]> {
  const grouped: Record<string, V[]> = {};
  for (const entry of entries) (grouped[entry.tableName] ??= []).push(value(entry));
  return grouped;
}
