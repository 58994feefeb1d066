/**
 * The API functions behind a REST API (API Gateway v1) instead of an HTTP API: the `localstack` stage
 * only (docs/localstack.md), because LocalStack's free plan serves REST APIs but not HTTP APIs. Each
 * handler still receives the HTTP API's payload 2.0 (what functions/http.ts reads), translated from the
 * REST API's proxy event here; its answer goes back unchanged but for the fields REST API requires.
 * deploy/localstack.mjs points the stage's API functions at the exports below; no other stage uses them.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyResult, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import * as adminCreateCoupon from './admin-create-coupon.js';
import * as adminDeadLetters from './admin-dead-letters.js';
import * as adminGetCoupon from './admin-get-coupon.js';
import * as adminLive from './admin-live.js';
import * as adminPage from './admin-page.js';
import * as adminReconcile from './admin-reconcile.js';
import * as coupon from './coupon.js';
import * as issue from './issue.js';
import * as notFound from './not-found.js';
import * as userCoupon from './user-coupon.js';
import * as userCoupons from './user-coupons.js';

type HttpApiHandler = (event: APIGatewayProxyEventV2, context?: Context) => Promise<APIGatewayProxyResultV2>;

/**
 * The request's path below the API, as the HTTP API's $default stage sees it. A REST API's `path` may
 * carry what precedes its routes (the stage's name on LocalStack's and API Gateway's own URLs, a base
 * path mapping); the route's template filled with its parameters never does.
 */
function routePath(event: APIGatewayProxyEvent): string {
  const parameters = event.pathParameters ?? {};
  const filled = event.resource.replace(/\{([^}+]+)\+?\}/g, (placeholder, name: string) => parameters[name] ?? placeholder);
  return filled.includes('{') ? event.path : filled;
}

/** A REST API proxy event as the HTTP API (payload 2.0) would have delivered the same request. */
export function toHttpApiEvent(event: APIGatewayProxyEvent): APIGatewayProxyEventV2 {
  const context = event.requestContext;
  // Payload 2.0 lowercases header names and joins repeated headers with commas.
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(event.multiValueHeaders ?? {})) if (values) headers[name.toLowerCase()] = values.join(',');
  for (const [name, value] of Object.entries(event.headers ?? {}))
    if (value !== undefined && !(name.toLowerCase() in headers)) headers[name.toLowerCase()] = value;
  const query = event.multiValueQueryStringParameters ?? {};
  const rawQueryString = Object.entries(query)
    .flatMap(([name, values]) => (values ?? []).map((value) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`))
    .join('&');
  const queryStringParameters = Object.fromEntries(Object.entries(query).map(([name, values]) => [name, (values ?? []).join(',')]));
  const routeKey = `${event.httpMethod} ${event.resource}`;
  const path = routePath(event);
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString,
    headers,
    ...(Object.keys(queryStringParameters).length > 0 ? { queryStringParameters } : {}),
    ...(event.pathParameters ? { pathParameters: { ...event.pathParameters } as Record<string, string> } : {}),
    ...(event.stageVariables ? { stageVariables: { ...event.stageVariables } as Record<string, string> } : {}),
    ...(event.body !== null ? { body: event.body } : {}),
    isBase64Encoded: event.isBase64Encoded,
    requestContext: {
      accountId: context.accountId,
      apiId: context.apiId,
      domainName: context.domainName ?? headers.host ?? '',
      domainPrefix: context.domainPrefix ?? '',
      http: {
        method: event.httpMethod,
        path,
        protocol: context.protocol ?? 'HTTP/1.1',
        sourceIp: context.identity?.sourceIp ?? '',
        userAgent: context.identity?.userAgent ?? headers['user-agent'] ?? '',
      },
      requestId: context.requestId,
      routeKey,
      stage: context.stage,
      time: context.requestTime ?? new Date(context.requestTimeEpoch).toISOString(),
      timeEpoch: context.requestTimeEpoch,
    },
  };
}

/** A payload 2.0 answer as a REST API proxy integration must return it (statusCode and body required). */
export function toRestApiResult(result: APIGatewayProxyResultV2): APIGatewayProxyResult {
  if (typeof result === 'string') return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: result };
  if (result.statusCode === undefined) return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(result) };
  const { statusCode, headers, body, isBase64Encoded, cookies } = result;
  return {
    statusCode,
    headers: (headers ?? {}) as Record<string, string | number | boolean>,
    ...(cookies?.length ? { multiValueHeaders: { 'set-cookie': cookies } } : {}),
    body: body ?? '',
    isBase64Encoded: isBase64Encoded ?? false,
  };
}

/** An HTTP API handler behind a REST API. */
export function fromRestApi(handler: HttpApiHandler): (event: APIGatewayProxyEvent, context?: Context) => Promise<APIGatewayProxyResult> {
  return async (event, context) => toRestApiResult(await handler(toHttpApiEvent(event), context));
}

// One export per API function of serverless.yml: `functions/rest-api.<function>Rest`.
export const issueRest = fromRestApi(issue.handler);
export const userCouponRest = fromRestApi(userCoupon.handler);
export const userCouponsRest = fromRestApi(userCoupons.handler);
export const couponRest = fromRestApi(coupon.handler);
export const adminCreateCouponRest = fromRestApi(adminCreateCoupon.handler);
export const adminGetCouponRest = fromRestApi(adminGetCoupon.handler);
export const adminReconcileRest = fromRestApi(adminReconcile.handler);
export const adminDeadLettersRest = fromRestApi(adminDeadLetters.list);
export const adminRequeueDeadLettersRest = fromRestApi(adminDeadLetters.requeue);
export const adminLiveRest = fromRestApi(adminLive.handler);
export const adminPageRest = fromRestApi(adminPage.handler);
export const notFoundRest = fromRestApi(notFound.handler);
