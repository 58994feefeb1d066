import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export interface DynamoConnection {
  readonly region: string;
  /** DynamoDB Local's URL; unset in AWS. */
  readonly endpoint: string | undefined;
  /** SDK attempts per call (throttling, 5xx and network errors are retried with jittered backoff). */
  readonly maxAttempts?: number;
  /** Per attempt: the whole request (connecting included), and connecting alone. */
  readonly requestTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
}

/** Built once per cold start by the composition root, with the bounds of config.ledger (lib/budgets.ts sums them). */
export function createDynamo(connection: DynamoConnection): DynamoDBClient {
  const client = new DynamoDBClient({
    region: connection.region,
    endpoint: connection.endpoint,
    maxAttempts: connection.maxAttempts ?? 6,
    retryMode: 'standard',
    requestHandler: {
      // One timer per attempt from the request's start (waiting for a socket, connecting, the whole
      // reply). Without throwOnRequestTimeout the SDK's handler only logs a warning when it passes: the
      // 5 s this client set before bounded nothing.
      requestTimeout: connection.requestTimeoutMs ?? 5_000,
      throwOnRequestTimeout: true,
      connectionTimeout: connection.connectTimeoutMs ?? 1_000,
      httpAgent: { keepAlive: true, maxSockets: 64 },
    },
    // DynamoDB Local accepts any credentials; real AWS uses the default provider chain.
    ...(connection.endpoint && !process.env.AWS_ACCESS_KEY_ID ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  });
  // The SDK's logger middleware filters every input and output for sensitive fields before handing
  // them to its logger, even the default no-op one, at a cost measured in docs/decisions/0004. Nothing
  // here logs SDK calls; faults reach us as errors.
  client.middlewareStack.remove('loggerMiddleware');
  return client;
}
