/**
 * List prices of what a drop uses (US East, N. Virginia; checked 2026-12-01), and a drop's cost at them.
 * Sources in bench/README.md ("Prices").
 */
export const PRICES = {
  /** Upstash Redis pay-as-you-go: $0.20 per 100,000 commands (upstash.com/pricing/redis). */
  upstashPerCommand: 0.2 / 100_000,
  /** DynamoDB on-demand: $0.625 per million write request units, $0.125 per million read request units (aws.amazon.com/dynamodb/pricing/on-demand). */
  dynamodbPerWriteUnit: 0.625 / 1_000_000,
  dynamodbPerReadUnit: 0.125 / 1_000_000,
  /** Lambda (arm64, as serverless.yml deploys): $0.20 per million requests, $0.0000133334 per GB-second (aws.amazon.com/lambda/pricing). */
  lambdaPerRequest: 0.2 / 1_000_000,
  lambdaPerGbSecond: 0.0000133334,
  /** API Gateway HTTP API: $1.00 per million requests, first 300 million a month (aws.amazon.com/api-gateway/pricing). */
  httpApiPerRequest: 1 / 1_000_000,
} as const;

/** serverless.yml's memorySize for the request path (the baselines are priced at the same). */
export const LAMBDA_MEMORY_GB = 1;
/**
 * Billed duration assumed per request (Lambda bills each invocation by the millisecond): an answer a
 * container gives itself takes about 1 ms, one that waits on Redis or DynamoDB in the same region a few;
 * this machine cannot measure a Lambda's duration, so 10 ms is charged for every request of every
 * system. Even at 100 ms the Lambda term stays below the HTTP API's (bench/README.md).
 */
export const LAMBDA_MS_PER_REQUEST = 10;

export interface Usage {
  readonly requests: number;
  readonly billedCommands: number;
  readonly writeUnits: number;
  readonly readUnits: number;
}

export interface Cost {
  readonly upstash: number;
  readonly dynamodb: number;
  readonly lambda: number;
  readonly http_api: number;
  readonly total: number;
}

export function costOf(usage: Usage): Cost {
  const upstash = usage.billedCommands * PRICES.upstashPerCommand;
  const dynamodb = usage.writeUnits * PRICES.dynamodbPerWriteUnit + usage.readUnits * PRICES.dynamodbPerReadUnit;
  const lambda = usage.requests * (PRICES.lambdaPerRequest + LAMBDA_MEMORY_GB * (LAMBDA_MS_PER_REQUEST / 1_000) * PRICES.lambdaPerGbSecond);
  const httpApi = usage.requests * PRICES.httpApiPerRequest;
  const round = (usd: number) => Math.round(usd * 1e6) / 1e6;
  return {
    upstash: round(upstash),
    dynamodb: round(dynamodb),
    lambda: round(lambda),
    http_api: round(httpApi),
    total: round(upstash + dynamodb + lambda + httpApi),
  };
}
