import { InvalidInputError } from '../errors.js';

/** Ids of users and coupons: what can safely be a Redis key part, a DynamoDB key part and a URL segment. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export const isValidId = (raw: unknown): raw is string => typeof raw === 'string' && ID_PATTERN.test(raw);

export function parseId(kind: 'userId' | 'couponId', raw: unknown): string {
  if (!isValidId(raw)) {
    throw new InvalidInputError(`${kind} must be 1 to 64 characters of A-Z, a-z, 0-9, "_" or "-"`);
  }
  return raw;
}
