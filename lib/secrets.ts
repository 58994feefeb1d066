import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { SecretSource } from './config.js';
import { ConfigError } from './errors.js';

let ssm: SSMClient | undefined;

/**
 * Resolve a secret given directly or as an SSM SecureString parameter. Called once per cold start by
 * the composition root; the value is kept in memory and never logged.
 */
export async function resolveSecret(source: SecretSource, region: string): Promise<string> {
  if ('value' in source) return source.value;
  ssm ??= new SSMClient({ region });
  const reply = await ssm.send(new GetParameterCommand({ Name: source.ssmParameter, WithDecryption: true }));
  const value = reply.Parameter?.Value;
  if (!value) throw new ConfigError(`SSM parameter ${source.ssmParameter} is empty`);
  return value;
}
