/**
 * The HTTP edge shared by every API handler: the route wrappers (publicRoute, userRoute, adminRoute:
 * authorization, the query, faults to status codes, in one place), JSON responses, the error shape and
 * input parsing. A handler reads its path and body, calls one use case and maps its outcome.
 *
 * One validation style for every input: a reader takes the raw value and returns the typed value or
 * throws InvalidInputError (400 INVALID_REQUEST, one sentence); what a route does not take (a query
 * parameter here, a body field in lib's parsers) is refused, never ignored.
 */
import { timingSafeEqual } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { parseId } from '../lib/coupons/ids.js';
import { ConfigError, InvalidInputError, UnavailableError } from '../lib/errors.js';
import { isTransientAwsFault } from '../lib/ledger/faults.js';
import { addLambdaContext, log, sampledLog } from '../lib/log.js';
import { count, publishMetrics } from '../lib/metrics.js';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/** Every error answer: {"error": "<CODE>", "message": "<one clear sentence>"}. */
export function error(statusCode: number, code: string, message: string, headers: Record<string, string> = {}): HttpResult {
  return json(statusCode, { error: code, message }, headers);
}

/** 404 for a coupon the system does not know. */
export const couponNotFound = (couponId: string): HttpResult => error(404, 'COUPON_NOT_FOUND', `There is no coupon ${couponId}.`);

/**
 * Run a handler body; turn expected faults into their answers. Unknown errors become a generic 500:
 * the details go to the log, never to the client. Every log line of the invocation carries its request
 * id, and what it counted is published as one EMF line at its end.
 */
export function httpHandler(run: (event: HttpEvent) => Promise<HttpResult>): (event: HttpEvent, context?: Context) => Promise<APIGatewayProxyResultV2> {
  return async (event, context) => {
    addLambdaContext(context);
    try {
      return await run(event);
    } catch (fault) {
      return faultResponse(fault, event);
    } finally {
      publishMetrics();
    }
  };
}

/** While Redis or the ledger is down, every request is a 503: one line per 10 s says so, with the count. */
const warnUnavailable = sampledLog('warn', 'answered 503', 10_000);

function faultResponse(fault: unknown, event: HttpEvent): HttpResult {
  if (fault instanceof InvalidInputError) return error(400, fault.code, fault.message);
  if (fault instanceof UnavailableError || isTransientAwsFault(fault)) {
    warnUnavailable({ route: event.routeKey, error: fault });
    count('ServiceUnavailable');
    return error(503, 'UNAVAILABLE', 'The service is briefly unavailable; retry after the given delay.', {
      'retry-after': String(fault instanceof UnavailableError ? fault.retryAfterSeconds : 1),
    });
  }
  log.error(fault instanceof ConfigError ? 'configuration error' : 'unhandled error', { route: event.routeKey, error: fault });
  return error(500, 'INTERNAL', 'An unexpected error occurred; it has been logged.');
}

/** What a route's handler gets, checked: the event, its container's runtime and its query. */
export interface RouteInput<R, Q> {
  readonly event: HttpEvent;
  readonly runtime: R;
  readonly query: Q;
}

type Route<R, Q, Extra = object> = (input: RouteInput<R, Q> & Extra) => Promise<HttpResult>;

/** A route anyone may call: its query read (or refused), then its handler. */
export function publicRoute<R, S extends QuerySpec>(runtime: () => Promise<R>, query: S, run: Route<R, QueryOf<S>>) {
  return httpHandler(async (event) => {
    const values = readQuery(event, query);
    return run({ event, runtime: await runtime(), query: values });
  });
}

/**
 * A user's route, /users/{userId}/...: the path's userId and the query read (or refused) before the
 * runtime is asked for; under AUTH_MODE=jwt the userId must be the token's subject.
 */
export function userRoute<R extends { readonly config: { readonly authMode: 'none' | 'jwt' } }, S extends QuerySpec>(
  runtime: () => Promise<R>,
  query: S,
  run: Route<R, QueryOf<S>, { readonly userId: string }>,
) {
  return httpHandler(async (event) => {
    const userId = userIdParam(event);
    const values = readQuery(event, query);
    const built = await runtime();
    const denied = userDenied(event, userId, built.config.authMode);
    if (denied) return denied;
    return run({ event, runtime: built, query: values, userId });
  });
}

/** An admin route: the admin token first (401, 403: nothing else is read), then the query. */
export function adminRoute<R extends { adminToken(): Promise<string> }, S extends QuerySpec>(runtime: () => Promise<R>, query: S, run: Route<R, QueryOf<S>>) {
  return httpHandler(async (event) => {
    const built = await runtime();
    const denied = adminDenied(event, await built.adminToken());
    if (denied) return denied;
    return run({ event, runtime: built, query: readQuery(event, query) });
  });
}

/** A query parameter's reader: its raw value (undefined when absent) to the typed value, or InvalidInputError. */
export type QueryReader<T> = (raw: string | undefined, name: string) => T;
export type QuerySpec = Readonly<Record<string, QueryReader<unknown>>>;
export type QueryOf<S extends QuerySpec> = { readonly [K in keyof S]: ReturnType<S[K]> };

/** A route that takes no query parameter. */
export const NO_QUERY = {} as const satisfies QuerySpec;

export const queryParam = {
  /** Optional; digits only (a use case checks its range). */
  integer: ((raw, name) => {
    if (raw === undefined) return undefined;
    if (!/^\d{1,9}$/.test(raw)) throw new InvalidInputError(`${name} must be a non-negative integer`);
    return Number(raw);
  }) satisfies QueryReader<number | undefined>,
  /** Optional; true or false. */
  boolean: ((raw, name) => {
    if (raw === undefined) return undefined;
    if (raw !== 'true' && raw !== 'false') throw new InvalidInputError(`${name} must be true or false`);
    return raw === 'true';
  }) satisfies QueryReader<boolean | undefined>,
  /** Optional; as given (a use case checks it, e.g. an opaque cursor). */
  text: ((raw) => raw) satisfies QueryReader<string | undefined>,
};

/** The query read by `spec`; a parameter the route does not take is refused, not ignored. */
export function readQuery<S extends QuerySpec>(event: HttpEvent, spec: S): QueryOf<S> {
  const query = event.queryStringParameters ?? {};
  const takes = Object.keys(spec);
  const unknown = Object.keys(query).filter((name) => !takes.includes(name));
  if (unknown.length > 0) {
    throw new InvalidInputError(
      `unknown query parameter(s): ${unknown.slice(0, 5).join(', ')}; this route takes ${takes.length > 0 ? takes.join(', ') : 'none'}`,
    );
  }
  const values: Record<string, unknown> = {};
  for (const name of takes) values[name] = spec[name]!(query[name], name);
  return values as QueryOf<S>;
}

export const MAX_BODY_BYTES = 4 * 1024;

/** Parse a JSON body of at most MAX_BODY_BYTES; InvalidInputError otherwise. */
export function jsonBody(event: HttpEvent): unknown {
  if (event.body === undefined || event.body === null || event.body === '') {
    throw new InvalidInputError('a JSON body is required');
  }
  const raw = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
  if (raw.length > MAX_BODY_BYTES) throw new InvalidInputError(`the body must be at most ${MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new InvalidInputError('the body is not valid JSON');
  }
}

/**
 * Admin routes: `Authorization: Bearer <token>`, compared in constant time. Undefined when allowed.
 * API Gateway's authorizer (functions/admin-authorizer.ts) has checked it already; this check keeps a
 * handler safe when it is invoked any other way.
 */
export function adminDenied(event: HttpEvent, adminToken: string): HttpResult | undefined {
  const verdict = bearerVerdict(event.headers?.authorization ?? event.headers?.Authorization, adminToken);
  if (verdict === 'MISSING') return error(401, 'UNAUTHORIZED', 'This route needs an admin token: Authorization: Bearer <token>.');
  if (verdict === 'WRONG') return error(403, 'FORBIDDEN', 'The admin token is not valid.');
  return undefined;
}

/** An Authorization header against the expected bearer token. */
export function bearerVerdict(header: string | undefined, expected: string): 'MISSING' | 'WRONG' | 'VALID' {
  const match = header ? /^Bearer (.+)$/.exec(header) : null;
  if (!match) return 'MISSING';
  return constantTimeEqual(match[1]!, expected) ? 'VALID' : 'WRONG';
}

function constantTimeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  // Compare equal-length buffers so the time taken says nothing about the expected token.
  return timingSafeEqual(a.length === b.length ? a : b, b) && a.length === b.length;
}

/**
 * User routes under AUTH_MODE=jwt: API Gateway's JWT authorizer has verified the token; the path's
 * userId must be the token's subject, so no one acts for someone else. Undefined when allowed.
 */
export function userDenied(event: HttpEvent, userId: string, authMode: 'none' | 'jwt'): HttpResult | undefined {
  if (authMode === 'none') return undefined;
  const claims = (event.requestContext as { authorizer?: { jwt?: { claims?: Record<string, unknown> } } }).authorizer?.jwt?.claims;
  const subject = claims?.sub;
  if (typeof subject !== 'string' || subject === '') {
    return error(401, 'UNAUTHORIZED', 'This route needs a valid bearer token (JWT) for the user.');
  }
  if (subject !== userId) return error(403, 'FORBIDDEN', 'The token does not belong to this user.');
  return undefined;
}

export function pathParam(event: HttpEvent, name: string): string | undefined {
  return event.pathParameters?.[name];
}

/** The path's couponId, checked (lib/coupons/ids.ts). */
export const couponIdParam = (event: HttpEvent): string => parseId('couponId', pathParam(event, 'couponId'));

/**
 * The path's userId, as a client sends it: percent-encoded (`auth0%7C5f1c…`). API Gateway and serverless
 * offline hand path parameters over decoded; one that still holds a `%` is decoded once here. A valid
 * user id holds no `%` (lib/coupons/ids.ts), so no id can be taken for another by decoding it again.
 */
export function userIdParam(event: HttpEvent): string {
  let value = pathParam(event, 'userId');
  if (value?.includes('%')) {
    try {
      value = decodeURIComponent(value);
    } catch {
      throw new InvalidInputError('userId is not a valid percent-encoded path segment');
    }
  }
  return parseId('userId', value);
}
