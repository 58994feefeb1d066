import type { APIGatewayRequestAuthorizerEventV2, APIGatewaySimpleAuthorizerResult } from 'aws-lambda';
import { loadConfig } from '../lib/config.js';
import { SecretStore } from '../lib/secrets.js';
import { bearerVerdict } from './http.js';

let adminToken: Promise<string> | undefined;

/** The admin token, read once per container (Secrets Manager on deployed stages, ADMIN_TOKEN locally). */
function expectedToken(): Promise<string> {
  adminToken ??= (async () => {
    const config = loadConfig();
    return new SecretStore(config.region, config.secretsEndpoint).resolve(config.adminToken);
  })().catch((error: unknown) => {
    adminToken = undefined;
    throw error;
  });
  return adminToken;
}

/**
 * The admin routes' Lambda authorizer (HTTP API, simple responses): API Gateway refuses a request
 * without Authorization by itself (401) and caches this answer per header value (serverless.yml), so
 * unauthenticated traffic never reaches the admin handlers, their Redis or their ledger.
 * An unreadable secret is thrown, not answered false: API Gateway would cache a refusal for the TTL,
 * locking the operator out after a moment's outage.
 */
export async function handler(event: APIGatewayRequestAuthorizerEventV2): Promise<APIGatewaySimpleAuthorizerResult> {
  const headers = event.headers ?? {};
  const header = headers.authorization ?? headers.Authorization ?? event.identitySource?.[0];
  return { isAuthorized: bearerVerdict(header, await expectedToken()) === 'VALID' };
}
