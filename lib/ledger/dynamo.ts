import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export interface DynamoConnection {
  readonly region: string;
  /** DynamoDB Local's URL; unset in AWS. */
  readonly endpoint: string | undefined;
  /** SDK attempts per call (throttling, 5xx and network errors are retried with jittered backoff). */
  readonly maxAttempts?: number;
}

/** Built once per cold start by the composition root. */
export function createDynamo(connection: DynamoConnection): DynamoDBClient {
  const client = new DynamoDBClient({
    region: connection.region,
    endpoint: connection.endpoint,
    maxAttempts: connection.maxAttempts ?? 6,
    retryMode: 'standard',
    requestHandler: { requestTimeout: 5_000, connectionTimeout: 1_000, httpAgent: { keepAlive: true, maxSockets: 64 } },
    // DynamoDB Local accepts any credentials; real AWS uses the default provider chain.
    ...(connection.endpoint && !process.env.AWS_ACCESS_KEY_ID
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
  });
  // The SDK's logger middleware filters every input and output for sensitive fields before handing
  // them to its logger, even the default no-op one: measured, a quarter of the client's CPU per item of
  // a 99-item transaction (67 -> 48 µs). Nothing here logs SDK calls; faults reach us as errors.
  client.middlewareStack.remove('loggerMiddleware');
  return client;
}
