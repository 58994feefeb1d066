/**
 * What a new container of the issue handler does before its first answer: one Secrets Manager read
 * (Parameter Store, used before, allows 40 calls a second for a whole account), retried with jitter when
 * throttled and answered 503 while it stays unavailable; and its small AWS client signs as the SDK does.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterEach, describe, expect, it } from 'vitest';
import { signV4 } from '../lib/aws/sigv4.js';
import { loadConfig } from '../lib/config.js';
import { createCoupon } from '../lib/coupons/campaigns.js';
import { issueCoupon } from '../lib/coupons/issue.js';
import { ConfigError, UnavailableError } from '../lib/errors.js';
import { buildIssueRuntime } from '../lib/issue-runtime.js';
import { startSecretsEmulator, type SecretsEmulator } from '../localstack/secrets-emulator.js';
import { services, testDeps, uniqueCouponId } from './support/deps.js';

let emulator: SecretsEmulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

/** The settings of a deployed issue function, against the local services and secret store. */
function deployedSettings(secretsUrl: string, prefix: string): Record<string, string> {
  const s = services();
  return {
    STAGE: 'local',
    AWS_REGION: 'us-east-1',
    TABLE_NAME: s.tableName,
    DYNAMODB_ENDPOINT: s.dynamodbEndpoint,
    UPSTASH_SECRET_ID: 'fcfs-coupons/test/upstash',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsUrl,
    REDIS_KEY_PREFIX: prefix,
  };
}

const upstashSecret = () => JSON.stringify({ url: services().gatewayUrl, token: services().gatewayToken });

describe('a new issue container', () => {
  it('reads one Secrets Manager secret, once, and nothing from Parameter Store, then answers', async () => {
    emulator = await startSecretsEmulator({ secrets: { 'fcfs-coupons/test/upstash': upstashSecret() } });
    const deps = testDeps();
    const couponId = uniqueCouponId('cold');
    await createCoupon(deps, { couponId, name: 'cold start', totalQuantity: 5, startsAt: undefined, endsAt: undefined });

    const runtime = await buildIssueRuntime(loadConfig(deployedSettings(emulator.url, deps.store.keyPrefix)));
    expect(emulator.stats().calls).toEqual({ 'secretsmanager.GetSecretValue': 1, 'AmazonSSM.GetParameter': 0, 'AmazonSSM.GetParameters': 0 });
    expect(await issueCoupon(runtime, couponId, 'u1')).toEqual({ kind: 'ACCEPTED', ticket: 1 });
    expect(await issueCoupon(runtime, couponId, 'u2')).toEqual({ kind: 'ACCEPTED', ticket: 2 });
    expect(emulator.stats().calls['secretsmanager.GetSecretValue']).toBe(1);
  });

  it('retries a throttling secret store with jitter, then answers 503 (UnavailableError); a later start reads it', async () => {
    let now = 1_000_000;
    // One call a second, on a frozen clock: the first read takes the second's only call.
    emulator = await startSecretsEmulator({
      secrets: { 'fcfs-coupons/test/upstash': upstashSecret(), other: '{}' },
      secretsManagerTransactionsPerSecond: 1,
      clock: () => now,
    });
    await fetch(emulator.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' },
      body: '{"SecretId":"other"}',
    });
    const config = loadConfig(deployedSettings(emulator.url, 'cold-throttled'));
    await expect(buildIssueRuntime(config)).rejects.toBeInstanceOf(UnavailableError);
    expect(emulator.stats().throttled['secretsmanager.GetSecretValue']).toBe(3);
    now += 5_000;
    await expect(buildIssueRuntime(config)).resolves.toMatchObject({ config });
  });

  it('refuses a secret that does not exist, or is not a JSON object, with one sentence naming it', async () => {
    emulator = await startSecretsEmulator({ secrets: { 'fcfs-coupons/test/upstash': 'not json' } });
    await expect(buildIssueRuntime(loadConfig({ ...deployedSettings(emulator.url, 'x'), UPSTASH_SECRET_ID: 'nope' }))).rejects.toThrow(
      new ConfigError("secret nope cannot be read: secretsmanager answered 400 ResourceNotFoundException: Secrets Manager can't find the specified secret."),
    );
    await expect(buildIssueRuntime(loadConfig(deployedSettings(emulator.url, 'x')))).rejects.toThrow(
      /secret fcfs-coupons\/test\/upstash must hold a JSON object/,
    );
  });

  it('refuses the SSM parameter settings of earlier versions rather than ignoring them', () => {
    expect(() =>
      loadConfig({ STAGE: 'prod', TABLE_NAME: 't', UPSTASH_REDIS_REST_TOKEN_PARAM: '/x/token', UPSTASH_SECRET_ID: 's', ADMIN_TOKEN_SECRET_ID: 'a' }),
    ).toThrow(/UPSTASH_REDIS_REST_TOKEN_PARAM: SSM parameters are no longer read/);
  });
});

describe("the admission path's AWS client", () => {
  it('signs a request exactly as the AWS SDK does (SigV4)', async () => {
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token' };
    const when = new Date('2026-12-01T10:00:00Z');
    const body = JSON.stringify({ couponId: 'c1' });
    const request = {
      method: 'POST' as const,
      host: 'lambda.ap-northeast-2.amazonaws.com',
      path: '/2015-03-31/functions/fcfs-coupons-prod-drain/invocations',
      headers: { 'content-type': 'application/json', 'x-amz-invocation-type': 'Event' },
      body,
    };
    const ours = signV4(request, credentials, 'ap-northeast-2', 'lambda', when);
    const sdk = await new SignatureV4({ credentials, region: 'ap-northeast-2', service: 'lambda', sha256: NodeSha256, applyChecksum: true }).sign(
      { method: 'POST', protocol: 'https:', hostname: request.host, path: request.path, query: {}, headers: { ...request.headers, host: request.host }, body },
      { signingDate: when },
    );
    expect(ours.authorization).toBe(sdk.headers.authorization);
  });
});

/** The hash the SDK's signer takes, over node:crypto (what the SDK itself uses on Node). */
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret ? createHmac('sha256', toBytes(secret)) : createHash('sha256');
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
