/**
 * Telling DynamoDB faults that may pass from those that will not.
 */

/** DynamoDB refused part of a batch for a reason retrying will not fix (e.g. an item it cannot store). */
export class LedgerRefusedError extends Error {
  override readonly name = 'LedgerRefusedError';
}

/**
 * DynamoDB throttled a batch (a partition over its write capacity): nothing was written. Not retried in
 * place: the drain slows down (a smaller batch after a coupon-wide back-off), which is what lets the
 * partition recover.
 */
export class LedgerThrottledError extends Error {
  override readonly name = 'LedgerThrottledError';
}

/**
 * Faults that may pass: no answer at all (network, timeout), a 5xx, throttling, or a transaction that
 * kept conflicting. Anything else (a 4xx such as ValidationException, LedgerRefusedError) fails again
 * the same way.
 */
export function isTransientLedgerError(error: unknown): boolean {
  const e = error as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  if (error instanceof LedgerRefusedError) return false;
  if (error instanceof LedgerThrottledError) return true;
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined || status >= 500) return true;
  return /Throttl|ProvisionedThroughputExceeded|RequestLimitExceeded|TransactionConflict|TransactionInProgress|TransactionCanceled/.test(e.name ?? '');
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * An error that came from the AWS SDK (a service reply or its network layer) and may pass: what an
 * HTTP handler answers 503 with Retry-After. Errors of our own code are never in this class.
 */
export function isTransientAwsFault(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { $metadata?: unknown; code?: string; name?: string };
  const fromSdk = e.$metadata !== undefined || NETWORK_CODES.has(e.code ?? '') || e.name === 'TimeoutError';
  return (fromSdk || error instanceof LedgerThrottledError) && isTransientLedgerError(error);
}
