/**
 * The local Secrets Manager and Parameter Store: what the AWS SDK (SSM) and a raw JSON 1.1 POST (Secrets
 * Manager, whose client is not a dependency) get back, the count of calls per API, and Parameter Store's
 * throttling above its rate on a frozen clock.
 */
import { GetParameterCommand, GetParametersCommand, SSMClient, type SSMClientConfig } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import { startSecretsEmulator, type SecretsEmulator } from '../localstack/secrets-emulator.js';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
let emulator: SecretsEmulator | undefined;

afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

function ssm(endpoint: string, extra: Partial<SSMClientConfig> = {}): SSMClient {
  return new SSMClient({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1, ...extra });
}

async function getSecretValue(url: string, secretId: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' },
    body: JSON.stringify({ SecretId: secretId }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('secrets emulator', () => {
  it('serves SSM parameters to the AWS SDK (decrypted only when asked) and counts each call per API', async () => {
    emulator = await startSecretsEmulator({ parameters: { '/fcfs/admin-token': 'hunter2', plain: { value: 'p', type: 'String' } } });
    const client = ssm(emulator.url);
    try {
      const decrypted = await client.send(new GetParameterCommand({ Name: '/fcfs/admin-token', WithDecryption: true }));
      expect(decrypted.Parameter).toMatchObject({ Name: '/fcfs/admin-token', Type: 'SecureString', Value: 'hunter2', Version: 1 });
      expect(decrypted.Parameter?.ARN).toBe('arn:aws:ssm:us-east-1:000000000000:parameter/fcfs/admin-token');
      const encrypted = await client.send(new GetParameterCommand({ Name: '/fcfs/admin-token' }));
      expect(encrypted.Parameter?.Value).not.toBe('hunter2');
      await expect(client.send(new GetParameterCommand({ Name: '/missing' }))).rejects.toMatchObject({
        name: 'ParameterNotFound',
        $metadata: { httpStatusCode: 400 },
      });
      const both = await client.send(new GetParametersCommand({ Names: ['plain', '/missing'], WithDecryption: true }));
      expect(both).toMatchObject({ Parameters: [{ Name: 'plain', Value: 'p', Type: 'String' }], InvalidParameters: ['/missing'] });
      expect(emulator.stats()).toEqual({
        calls: { 'secretsmanager.GetSecretValue': 0, 'AmazonSSM.GetParameter': 3, 'AmazonSSM.GetParameters': 1 },
        throttled: { 'secretsmanager.GetSecretValue': 0, 'AmazonSSM.GetParameter': 0, 'AmazonSSM.GetParameters': 0 },
      });
    } finally {
      client.destroy();
    }
  });

  it('serves Secrets Manager secrets to a plain JSON 1.1 POST, ResourceNotFoundException for an unknown one', async () => {
    emulator = await startSecretsEmulator({ secrets: { 'fcfs/upstash': '{"token":"t"}' } });
    const found = await getSecretValue(emulator.url, 'fcfs/upstash');
    expect(found).toMatchObject({ status: 200, body: { Name: 'fcfs/upstash', SecretString: '{"token":"t"}', VersionStages: ['AWSCURRENT'] } });
    expect(await getSecretValue(emulator.url, 'nope')).toMatchObject({ status: 400, body: { __type: 'ResourceNotFoundException' } });
    expect(emulator.stats().calls['secretsmanager.GetSecretValue']).toBe(2);
    const overHttp = (await (await fetch(`${emulator.url}/_fcfs/stats`)).json()) as unknown;
    expect(overHttp).toEqual(emulator.stats());
  });

  it('above 40 Parameter Store calls in a second (GetParameter and GetParameters together) answers ThrottlingException, which the SDK classifies as throttling', async () => {
    const now = 1_000_000;
    emulator = await startSecretsEmulator({ parameters: { a: 'x' }, clock: () => now });
    const classified: string[] = [];
    const client = ssm(emulator.url, {
      retryStrategy: {
        acquireInitialRetryToken: async () => ({ getRetryCount: () => 0, getRetryDelay: () => 0 }),
        refreshRetryTokenForRetry: async (_token: unknown, info: { errorType: string }) => {
          classified.push(info.errorType);
          throw new Error('no retry');
        },
        recordSuccess: () => undefined,
      },
    });
    try {
      const calls = await Promise.allSettled([
        ...Array.from({ length: 30 }, () => client.send(new GetParameterCommand({ Name: 'a', WithDecryption: true }))),
        ...Array.from({ length: 15 }, () => client.send(new GetParametersCommand({ Names: ['a'], WithDecryption: true }))),
      ]);
      const refused = calls.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
      expect(refused).toHaveLength(5);
      expect(refused[0]).toMatchObject({ name: 'ThrottlingException', message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });
      expect(classified).toEqual(Array(5).fill('THROTTLING'));
      const { calls: counted, throttled } = emulator.stats();
      expect(counted['AmazonSSM.GetParameter'] + counted['AmazonSSM.GetParameters']).toBe(45);
      expect(throttled['AmazonSSM.GetParameter'] + throttled['AmazonSSM.GetParameters']).toBe(5);
      // Secrets Manager has its own, far larger rate.
      expect((await getSecretValue(emulator.url, 'missing')).body.__type).toBe('ResourceNotFoundException');
    } finally {
      client.destroy();
    }
  });

  it("the project's SecretStore reaches it through its endpoint: one GetSecretValue per secret, whatever its fields", async () => {
    emulator = await startSecretsEmulator({ secrets: { 'fcfs/upstash': JSON.stringify({ url: 'https://u.example', token: 's3cret' }) } });
    const { SecretStore } = await import('../lib/secrets.js');
    const store = new SecretStore('us-east-1', emulator.url);
    const ref = (field: string) => ({ secretId: 'fcfs/upstash', field });
    expect(await Promise.all([store.resolve(ref('url')), store.resolve(ref('token'))])).toEqual(['https://u.example', 's3cret']);
    expect(emulator.stats().calls['secretsmanager.GetSecretValue']).toBe(1);
  });
});
