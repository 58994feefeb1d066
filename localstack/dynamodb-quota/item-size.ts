/**
 * The size of a DynamoDB item by AWS's rules, on the wire format (AttributeValue JSON, binary as base64),
 * and the capacity units a size costs. Source: developer guide, "DynamoDB item sizes and formats"
 * (CapacityUnitCalculations) and "DynamoDB read and write operations" (read-write-operations).
 */

export interface AttributeValue {
  readonly S?: string;
  readonly N?: string;
  readonly B?: string;
  readonly BOOL?: boolean;
  readonly NULL?: boolean;
  readonly SS?: readonly string[];
  readonly NS?: readonly string[];
  readonly BS?: readonly string[];
  readonly L?: readonly AttributeValue[];
  readonly M?: Readonly<Record<string, AttributeValue>>;
}

export type Item = Readonly<Record<string, AttributeValue>>;

/** An item's size in bytes: the sum of its attribute names' UTF-8 bytes and its values' sizes. */
export function itemSize(item: Item | undefined): number {
  if (!item) return 0;
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name, 'utf8') + valueSize(value);
  return size;
}

/**
 * A value's size without its name. Lists and maps cost 3 bytes plus 1 byte per element (a map element
 * also its key's bytes). AWS does not state a set's size; a set is counted as the sum of its elements.
 */
export function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S, 'utf8');
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return Buffer.byteLength(value.B, 'base64');
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS) return value.SS.reduce((sum, s) => sum + Buffer.byteLength(s, 'utf8'), 0);
  if (value.NS) return value.NS.reduce((sum, n) => sum + numberSize(n), 0);
  if (value.BS) return value.BS.reduce((sum, b) => sum + Buffer.byteLength(b, 'base64'), 0);
  if (value.L) return 3 + value.L.reduce((sum, element) => sum + valueSize(element) + 1, 0);
  if (value.M) {
    return 3 + Object.entries(value.M).reduce((sum, [key, element]) => sum + Buffer.byteLength(key, 'utf8') + valueSize(element) + 1, 0);
  }
  return 0;
}

/**
 * AWS: "approximately (1 byte per two significant digits) + (1 byte)", leading and trailing zeroes trimmed.
 * The exact encoding is not published; this is the documented approximation.
 */
export function numberSize(n: string): number {
  const mantissa = n.trim().replace(/^[+-]/, '').split(/e/i)[0] ?? '';
  const digits = mantissa.replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(digits.length / 2) + 1;
}

export const WRITE_UNIT_BYTES = 1024;
export const READ_UNIT_BYTES = 4096;

/** Write units of one write of this many bytes: 1 per started KB, at least 1. */
export function writeUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / WRITE_UNIT_BYTES));
}

export type ReadConsistency = 'eventual' | 'strong' | 'transactional';

/** Read units of one read of this many bytes: per started 4 KB (at least one), 0.5 / 1 / 2 by consistency. */
export function readUnits(bytes: number, consistency: ReadConsistency): number {
  const blocks = Math.max(1, Math.ceil(bytes / READ_UNIT_BYTES));
  return blocks * (consistency === 'eventual' ? 0.5 : consistency === 'strong' ? 1 : 2);
}
