import { AwsCallError, AwsEndpoint, credentialsFromEnv } from './aws/client.js';
import { ConfigError, UnavailableError } from './errors.js';

/**
 * A secret given directly (local runs) or as the id of a Secrets Manager secret holding a JSON object
 * (deployed stages). Secrets Manager serves GetSecretValue at thousands of calls a second per account;
 * Parameter Store, used before, serves 40 (shared by every function of the account), which a drop's cold
 * starts would exceed in its first second.
 */
export type SecretRef = { readonly value: string } | { readonly secretId: string; readonly field: string };

const ATTEMPTS = 3;
const CALL_TIMEOUT_MS = 1_000;
/** The pause before retry `attempt` (1-based), jittered: at most 1.5 times 50 ms × 2^attempt. */
const retryPause = (attempt: number) => 50 * 2 ** attempt * (0.5 + Math.random());

/** The longest a cold start's secret read can take: every attempt at its timeout, every pause at its longest. */
export const SECRET_READ_MAX_MS =
  ATTEMPTS * CALL_TIMEOUT_MS + Array.from({ length: ATTEMPTS - 1 }, (_, i) => 50 * 2 ** (i + 1) * 1.5).reduce((a, b) => a + b, 0);

/**
 * Reads Secrets Manager secrets, each at most once per container (cold start): one GetSecretValue call,
 * retried with jittered backoff when the store is slow or throttles. A store still unavailable is an
 * UnavailableError (the request is answered 503 and the next one tries again); a missing or malformed
 * secret, or no permission to read it, is a ConfigError.
 */
export class SecretStore {
  private readonly endpoint: AwsEndpoint;
  private readonly secrets = new Map<string, Promise<Record<string, unknown>>>();

  constructor(region: string, endpoint: string | undefined) {
    this.endpoint = new AwsEndpoint('secretsmanager', region, endpoint, () => credentialsFromEnv(process.env, endpoint !== undefined));
  }

  /** The value given directly, or its field of a JSON secret (secrets read once, whatever their fields). */
  async resolve(ref: SecretRef): Promise<string> {
    if ('value' in ref) return ref.value;
    const secret = await this.read(ref.secretId);
    const value = secret[ref.field];
    if (typeof value !== 'string' || value === '') throw new ConfigError(`secret ${ref.secretId} has no string field "${ref.field}"`);
    return value;
  }

  /** A JSON secret as a whole (read once per container). */
  read(secretId: string): Promise<Record<string, unknown>> {
    let secret = this.secrets.get(secretId);
    if (!secret) {
      secret = this.fetch(secretId);
      // A failed read is not kept: the next cold-start attempt tries again.
      secret.catch(() => this.secrets.delete(secretId));
      this.secrets.set(secretId, secret);
    }
    return secret;
  }

  private async fetch(secretId: string): Promise<Record<string, unknown>> {
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await this.endpoint.call({
          path: '/',
          headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' },
          body: JSON.stringify({ SecretId: secretId }),
          timeoutMs: CALL_TIMEOUT_MS,
        });
        return parseSecret(secretId, (JSON.parse(reply.text) as { SecretString?: string }).SecretString);
      } catch (error) {
        if (!(error instanceof AwsCallError)) throw error;
        if (!error.transient) throw new ConfigError(`secret ${secretId} cannot be read: ${error.message}`, { cause: error });
        if (attempt >= ATTEMPTS) throw new UnavailableError(`Secrets Manager is unavailable (${secretId})`, 1, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, retryPause(attempt)));
      }
    }
  }
}

function parseSecret(secretId: string, text: string | undefined): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text ?? '');
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    /* below */
  }
  throw new ConfigError(`secret ${secretId} must hold a JSON object (see docs/deploy.md)`);
}
