import { describe, expect, it } from 'vitest';
import { userIdParam } from '../functions/http.js';
import { isValidId, isValidUserId, parseId } from '../lib/coupons/ids.js';
import { InvalidInputError } from '../lib/errors.js';
import { couponGsiSk, issueSk, userGsiPk } from '../lib/ledger/model.js';
import { userField, userOfField } from '../lib/redis/codec.js';
import { httpEvent } from './support/events.js';

const SUBJECTS = [
  'auth0|5f1c2e3d4a5b6c7d8e9f0a1b',
  'google-oauth2|104857329876543210987',
  'samlp|corp-sso|j.doe@corp.example',
  'oauth2|github|1234567',
  '104857329876543210987',
  'a1b2c3d4-5e6f-4a8b-9c0d-1e2f3a4b5c6d',
  'us-east-1:7d3c1f2e-9a8b-4c5d-8e7f-6a5b4c3d2e1f',
  'CognitoIdentity:us-east-1:7d3c1f2e-9a8b-4c5d-8e7f-6a5b4c3d2e1f',
  '00u1a2b3c4D5e6F7g8h9',
  '001234.0a1b2c3d4e5f60718293a4b5c6d7e8f9.1234',
  'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
  'jane.doe+coupons@example.com',
  'x'.repeat(128),
];
const UNSAFE = [
  '',
  'team#42',
  'org/user',
  'org\\user',
  'jane doe',
  'jane\tdoe',
  'jane\ndoe',
  '\u0000',
  'fifty%off',
  'who?',
  'o"neil',
  "o'neil",
  '<b>',
  '{x}',
  '[x]',
  'josé',
  '.',
  '..',
  '...',
  'x'.repeat(129),
];

describe('user ids', () => {
  it("accept the common identity providers' subjects, which stay whole in every key they become", () => {
    for (const sub of SUBJECTS) {
      expect(parseId('userId', sub)).toBe(sub);
      expect(userOfField(userField(sub))).toBe(sub);
      expect(issueSk(sub)).toBe(`ISSUE#${sub}`);
      expect(userGsiPk(sub).split('#')).toEqual(['USER', sub]);
    }
    // Coupon ids keep their narrow set: they are Redis hash tags.
    expect(isValidId('auth0|5f1c')).toBe(false);
    expect(couponGsiSk('spring-sale')).toBe('COUPON#spring-sale');
  });

  it('refuse what is unsafe in a key or a path', () => {
    for (const id of UNSAFE) {
      expect(isValidUserId(id), JSON.stringify(id)).toBe(false);
      expect(() => parseId('userId', id)).toThrow(InvalidInputError);
    }
  });

  it('are read from the path decoded once, however the gateway hands them over', () => {
    const event = (userId: string) => httpEvent({ method: 'POST', path: '/x', pathParameters: { userId, couponId: 'c' } });
    // Decoded by API Gateway (or serverless offline), or still encoded: the same user.
    expect(userIdParam(event('auth0|5f1c'))).toBe('auth0|5f1c');
    expect(userIdParam(event('auth0%7C5f1c'))).toBe('auth0|5f1c');
    expect(userIdParam(event('jane.doe%2Bcoupons%40example.com'))).toBe('jane.doe+coupons@example.com');
    // Never twice: an encoded percent sign stays a percent sign, which no user id holds.
    expect(() => userIdParam(event('a%2525b'))).toThrow(InvalidInputError);
    expect(() => userIdParam(event('a%25b'))).toThrow(InvalidInputError);
    expect(() => userIdParam(event('a%2Fb'))).toThrow(InvalidInputError);
    expect(() => userIdParam(event('%E0%A4%A'))).toThrow('userId is not a valid percent-encoded path segment');
  });
});
