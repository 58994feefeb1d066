/**
 * What each write and read costs, per partition key value, for the table and for each global secondary
 * index: AWS's rules (sources in docs/quota-emulation.md), applied to the item as it was before the
 * operation and as it is after it.
 */
import { itemSize, readUnits, writeUnits, type Item, type ReadConsistency } from './item-size.js';
import { indexEntry, partitionValue, sameValue, type IndexSchema, type TableSchema } from './table-schema.js';

/** Units one operation takes from one partition of a table or of an index. */
export interface Charge {
  readonly table: TableSchema;
  /** Undefined: the table itself. */
  readonly index: IndexSchema | undefined;
  readonly partition: string;
  readonly kind: 'read' | 'write';
  readonly units: number;
}

/**
 * A write to the table: the larger of the item before and after (PutItem, UpdateItem; DeleteItem has no
 * after), 1 unit per started KB, at least 1; a transactional write costs twice (prepare and commit).
 */
export function tableWrite(table: TableSchema, key: Item, before: Item | undefined, after: Item | undefined, transactional: boolean): Charge {
  const units = writeUnits(Math.max(itemSize(before), itemSize(after))) * (transactional ? 2 : 1);
  return { table, index: undefined, partition: partitionValue(key[table.hashKey]), kind: 'write', units };
}

/**
 * A conditional write whose condition was false: "If the item does not currently exist in the table,
 * DynamoDB consumes one write capacity unit. If the item does exist, the number of write capacity units
 * consumed depends on the size of the item" (WorkingWithItems, capacity units consumed by conditional
 * writes). Nothing is written to any index. A cancelled transaction is charged this way for each of its
 * items, once: the prepare phase ran, the commit did not (AWS does not document a cancelled transaction's
 * cost; this is our reading).
 */
export function refusedWrite(table: TableSchema, key: Item, before: Item | undefined): Charge {
  return { table, index: undefined, partition: partitionValue(key[table.hashKey]), kind: 'write', units: writeUnits(itemSize(before)) };
}

/**
 * The writes each global secondary index takes for a table write, by AWS's GSI rules: an item entering
 * the index, one write of its entry; leaving it, one write (the delete) on the old partition; its index
 * key changing, both; only projected attributes changing, one write (of the larger entry); no change to
 * its entry, none. Each write costs 1 unit per started KB of the entry, at least 1. Index writes are not
 * doubled for a transaction: AWS documents the two-phase cost for the transaction's items only.
 */
export function indexWrites(table: TableSchema, before: Item | undefined, after: Item | undefined): Charge[] {
  const charges: Charge[] = [];
  for (const index of table.indexes) {
    const old = indexEntry(table, index, before);
    const next = indexEntry(table, index, after);
    const charge = (entry: Item, units: number): Charge => ({ table, index, partition: partitionValue(entry[index.hashKey]), kind: 'write', units });
    if (!old && !next) continue;
    if (old && !next) charges.push(charge(old, writeUnits(itemSize(old))));
    else if (!old && next) charges.push(charge(next, writeUnits(itemSize(next))));
    else if (old && next) {
      const keyChanged =
        !sameValue(old[index.hashKey], next[index.hashKey]) || (index.rangeKey !== undefined && !sameValue(old[index.rangeKey], next[index.rangeKey]));
      if (keyChanged) charges.push(charge(old, writeUnits(itemSize(old))), charge(next, writeUnits(itemSize(next))));
      else if (!sameValue(old, next)) charges.push(charge(next, writeUnits(Math.max(itemSize(old), itemSize(next)))));
    }
  }
  return charges;
}

/**
 * Before an UpdateItem runs, its after-image is unknown: it is admitted on the item's current size and
 * on the index partitions the item is in now. What it really wrote is charged once DynamoDB answered.
 */
export function updateEstimate(table: TableSchema, key: Item, before: Item | undefined, transactional: boolean): Charge[] {
  const charges = [tableWrite(table, key, before, before, transactional)];
  for (const index of table.indexes) {
    const entry = indexEntry(table, index, before);
    if (entry) charges.push({ table, index, partition: partitionValue(entry[index.hashKey]), kind: 'write', units: writeUnits(itemSize(entry)) });
  }
  return charges;
}

/** A read of these items from one partition: their total size, per started 4 KB (at least one). */
export function read(
  table: TableSchema,
  index: IndexSchema | undefined,
  partition: string,
  items: readonly (Item | undefined)[],
  consistency: ReadConsistency,
): Charge {
  const bytes = items.reduce((sum, item) => sum + itemSize(item), 0);
  return { table, index, partition, kind: 'read', units: readUnits(bytes, consistency) };
}

/** The least a read can cost, to admit it before its size is known. */
export function minimalRead(table: TableSchema, index: IndexSchema | undefined, partition: string, consistency: ReadConsistency): Charge {
  return read(table, index, partition, [], consistency);
}
