/** Item sizes by AWS's documented rules (localstack/dynamodb-quota/item-size.ts), which every unit count of the quota proxy starts from. */
import { describe, expect, it } from 'vitest';
import { itemSize, numberSize } from '../localstack/dynamodb-quota/item-size.js';

describe('item size by AWS rules', () => {
  it('strings by UTF-8 bytes, numbers by significant digits, lists and maps with their overhead', () => {
    expect(itemSize({ name: { S: 'héllo' } })).toBe(4 + 6);
    expect(numberSize('12345')).toBe(4);
    expect(numberSize('-0.00120')).toBe(2);
    expect(numberSize('1000')).toBe(2);
    expect(itemSize({ b: { B: Buffer.from('abcd').toString('base64') }, t: { BOOL: true }, n: { NULL: true } })).toBe(1 + 4 + 1 + 1 + 1 + 1);
    expect(itemSize({ l: { L: [{ S: 'ab' }, { N: '7' }] } })).toBe(1 + 3 + (2 + 1) + (2 + 1));
    expect(itemSize({ m: { M: { k: { S: 'v' } } } })).toBe(1 + 3 + (1 + 1 + 1));
  });
});
