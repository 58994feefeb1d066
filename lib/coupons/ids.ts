import { InvalidInputError } from '../errors.js';

/**
 * Coupon ids: what can safely be a Redis key's hash tag (`{<couponId>}`, lib/redis/keys.ts), a DynamoDB
 * key part and a URL segment. The operator chooses them.
 */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * User ids are what identity providers put in a token's `sub`, which the user routes compare with the
 * path (AUTH_MODE=jwt): Auth0 `auth0|5f1c…` and `google-oauth2|1048…`, Google's and GitHub's digits,
 * Cognito's UUIDs and `us-east-1:<uuid>` identities, Okta's `00u…`, Apple's `001234.<hex>.1234`,
 * Azure AD's base64url, e-mail addresses. A user id is stored as Redis hash field `u:<userId>` and ZSET
 * member (passed as a script argument, never split), and as ledger keys `ISSUE#<userId>` and
 * `USER#<userId>` (lib/ledger/model.ts), so it may hold printable ASCII but not:
 * - `#`, the ledger's key separator;
 * - `/`, `\`, `?` and `%`, which a URL would split or decode again (the path carries ids percent-encoded,
 *   decoded once: functions/http.ts);
 * - whitespace, control characters, quotes, `<>`, backticks, brackets and braces (logs, JSON, HTML);
 * - anything outside ASCII, and more than 128 characters (a JWT subject of a common provider is far
 *   shorter; DynamoDB's sort key allows 1,024 bytes);
 * - nothing but dots (`.`, `..`): a URL's path segments that clients resolve away.
 */
export const USER_ID_PATTERN = /^(?!\.+$)[A-Za-z0-9._~:@|+=!$&*,;-]{1,128}$/;

export const isValidId = (raw: unknown): raw is string => typeof raw === 'string' && ID_PATTERN.test(raw);
export const isValidUserId = (raw: unknown): raw is string => typeof raw === 'string' && USER_ID_PATTERN.test(raw);

export function parseId(kind: 'userId' | 'couponId', raw: unknown): string {
  if (kind === 'userId') {
    if (!isValidUserId(raw)) {
      throw new InvalidInputError('userId must be 1 to 128 printable ASCII characters without spaces, quotes, "#", "/", "\\", "?", "%", brackets or braces');
    }
    return raw;
  }
  if (!isValidId(raw)) {
    throw new InvalidInputError(`${kind} must be 1 to 64 characters of A-Z, a-z, 0-9, "_" or "-"`);
  }
  return raw;
}
