/**
 * Faults only. Expected outcomes (sold out, already accepted, not open...) are typed values returned by
 * the use cases, never exceptions.
 */
export class FcfsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Configuration is missing or malformed; raised once, at cold start. */
export class ConfigError extends FcfsError {}

/** A backing store (Redis, its REST gateway, DynamoDB) cannot be reached or failed; safe to retry later. */
export class UnavailableError extends FcfsError {
  constructor(
    message: string,
    readonly retryAfterSeconds = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Input that a caller must fix; `code` is the API error code. */
export class InvalidInputError extends FcfsError {
  constructor(
    message: string,
    readonly code = 'INVALID_REQUEST',
  ) {
    super(message);
  }
}
