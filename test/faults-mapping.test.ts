import { describe, expect, it } from 'vitest';
import { isTransientAwsFault, isTransientLedgerError, LedgerRefusedError } from '../lib/ledger/faults.js';
import { asRedisFault } from '../lib/redis/client.js';
import { UnavailableError } from '../lib/errors.js';

/** Which faults are worth a retry (503, released batch) and which are bugs or refusals (500, isolation). */
describe('fault classification', () => {
  it('Redis: script errors, unknown commands and bad credentials are faults; the rest is unavailability', () => {
    for (const message of [
      'ERR Error running script (call to f_x): @user_script:1: oops',
      'WRONGTYPE Operation against a key',
      'Unauthorized, command was: evalsha',
      'ERR unknown command',
    ]) {
      expect(asRedisFault(new Error(message), 'x')).not.toBeInstanceOf(UnavailableError);
    }
    for (const message of [
      'ERR max concurrent connections exceeded',
      'LOADING Redis is loading',
      'Redis is unavailable: connection not ready',
      'connect ECONNREFUSED 127.0.0.1:1',
      'BUSY Redis is busy',
    ]) {
      expect(asRedisFault(new Error(message), 'x')).toBeInstanceOf(UnavailableError);
    }
  });

  it('DynamoDB: throttling, 5xx and network faults pass; validation refusals and our own bugs do not', () => {
    const sdk = (name: string, status?: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
    expect(isTransientAwsFault(sdk('ThrottlingException', 400))).toBe(true);
    expect(isTransientAwsFault(sdk('InternalServerError', 500))).toBe(true);
    expect(isTransientAwsFault(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isTransientAwsFault(sdk('ValidationException', 400))).toBe(false);
    expect(isTransientAwsFault(new TypeError('x is undefined'))).toBe(false);
    expect(isTransientLedgerError(new LedgerRefusedError('item too large'))).toBe(false);
  });
});
