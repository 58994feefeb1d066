/**
 * What the quota proxy needs to know of a table, read from DescribeTable: its keys, its global secondary
 * indexes (keys and projection), its ARNs (named in throttling reasons) and its capacity mode (which
 * decides the throttling error's shape). Local secondary indexes are not modelled.
 */
import type { AttributeValue, Item } from './item-size.js';

export interface KeySchema {
  readonly hashKey: string;
  readonly rangeKey: string | undefined;
}

export interface IndexSchema extends KeySchema {
  readonly name: string;
  readonly arn: string;
  readonly projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
  readonly nonKeyAttributes: readonly string[];
}

export interface TableSchema extends KeySchema {
  readonly name: string;
  readonly arn: string;
  readonly onDemand: boolean;
  readonly indexes: readonly IndexSchema[];
}

interface KeyElement {
  readonly AttributeName: string;
  readonly KeyType: 'HASH' | 'RANGE';
}

interface TableDescription {
  readonly TableName: string;
  readonly TableArn: string;
  readonly KeySchema: readonly KeyElement[];
  readonly BillingModeSummary?: { readonly BillingMode?: string };
  readonly GlobalSecondaryIndexes?: readonly {
    readonly IndexName: string;
    readonly IndexArn: string;
    readonly KeySchema: readonly KeyElement[];
    readonly Projection?: { readonly ProjectionType?: 'ALL' | 'KEYS_ONLY' | 'INCLUDE'; readonly NonKeyAttributes?: readonly string[] };
  }[];
}

export function schemaFromDescription(table: TableDescription): TableSchema {
  return {
    name: table.TableName,
    arn: table.TableArn,
    onDemand: table.BillingModeSummary?.BillingMode === 'PAY_PER_REQUEST',
    ...keysOf(table.KeySchema),
    indexes: (table.GlobalSecondaryIndexes ?? []).map((index) => ({
      name: index.IndexName,
      arn: index.IndexArn,
      ...keysOf(index.KeySchema),
      projection: index.Projection?.ProjectionType ?? 'ALL',
      nonKeyAttributes: index.Projection?.NonKeyAttributes ?? [],
    })),
  };
}

function keysOf(elements: readonly KeyElement[]): KeySchema {
  const hash = elements.find((e) => e.KeyType === 'HASH');
  if (!hash) throw new Error('a key schema without a HASH key');
  return { hashKey: hash.AttributeName, rangeKey: elements.find((e) => e.KeyType === 'RANGE')?.AttributeName };
}

/** The item's primary key, or undefined when it lacks a key attribute (DynamoDB will refuse it). */
export function primaryKeyOf(schema: KeySchema, item: Item): Item | undefined {
  const hash = item[schema.hashKey];
  if (!hash) return undefined;
  if (!schema.rangeKey) return { [schema.hashKey]: hash };
  const range = item[schema.rangeKey];
  return range ? { [schema.hashKey]: hash, [schema.rangeKey]: range } : undefined;
}

/** One string per item of a table, for locks and lookups. */
export function itemId(table: TableSchema, key: Item): string {
  return JSON.stringify([table.name, key[table.hashKey], table.rangeKey ? key[table.rangeKey] : null]);
}

/** A partition key value as a person reads it (the key's attribute type is fixed by the schema). */
export function partitionValue(value: AttributeValue | undefined): string {
  return value?.S ?? value?.N ?? value?.B ?? '(none)';
}

/**
 * The item as the index stores it (its projection), or undefined when the item is not in the index
 * (it lacks an index key attribute: GSIs are sparse).
 */
export function indexEntry(table: TableSchema, index: IndexSchema, item: Item | undefined): Item | undefined {
  if (!item || !primaryKeyOf(index, item)) return undefined;
  if (index.projection === 'ALL') return item;
  const names = new Set([table.hashKey, table.rangeKey, index.hashKey, index.rangeKey]);
  if (index.projection === 'INCLUDE') for (const name of index.nonKeyAttributes) names.add(name);
  const entry: Record<string, AttributeValue> = {};
  for (const name of names) {
    const value = name === undefined ? undefined : item[name];
    if (name !== undefined && value) entry[name] = value;
  }
  return entry;
}

/** Equal values (or items), whatever the order of their attributes. */
export function sameValue(a: AttributeValue | Item | undefined, b: AttributeValue | Item | undefined): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}
