import type { Context } from 'aws-lambda';
import type { HttpEvent } from '../../functions/http.js';

/** An API Gateway HTTP API (payload 2.0) event, as the handlers receive it. */
export function httpEvent(options: {
  method: string;
  path: string;
  pathParameters?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
  sourceIp?: string;
  jwtSubject?: string;
  query?: Record<string, string>;
}): HttpEvent {
  return {
    version: '2.0',
    routeKey: `${options.method} ${options.path}`,
    rawPath: options.path,
    rawQueryString: '',
    headers: options.headers ?? {},
    queryStringParameters: options.query,
    pathParameters: options.pathParameters,
    body: options.body,
    isBase64Encoded: false,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      requestId: 'test',
      routeKey: `${options.method} ${options.path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
      http: { method: options.method, path: options.path, protocol: 'HTTP/1.1', sourceIp: options.sourceIp ?? '203.0.113.7', userAgent: 'test' },
      ...(options.jwtSubject !== undefined ? { authorizer: { jwt: { claims: { sub: options.jwtSubject }, scopes: [] } } } : {}),
    },
  } as HttpEvent;
}

export function lambdaContext(remainingMs = 60_000): Context {
  const deadline = Date.now() + remainingMs;
  return { getRemainingTimeInMillis: () => deadline - Date.now() } as Context;
}
