/**
 * What the baselines share with fcfs-coupons: the same HTTP contract (200 when the user holds a unit,
 * 409 when sold out, 400 for a bad id), the same id rule and the same clients, built once per container.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ID_PATTERN } from '../../lib/coupons/ids.js';

export type Event = APIGatewayProxyEventV2;
export type Result = APIGatewayProxyStructuredResultV2;

export function reply(statusCode: number, body: unknown): Result {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** The path's ids, or undefined when one is not valid (answer BAD_ID). */
export function ids(event: Event): { userId: string; couponId: string } | undefined {
  const userId = event.pathParameters?.userId ?? '';
  const couponId = event.pathParameters?.couponId ?? '';
  if (!ID_PATTERN.test(userId) || !ID_PATTERN.test(couponId)) return undefined;
  return { userId, couponId };
}

export const BAD_ID = reply(400, { error: 'INVALID_REQUEST', message: 'userId and couponId must match ^[A-Za-z0-9_-]{1,64}$' });

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

/**
 * A handler that answers 503 (as fcfs-coupons does for a store it cannot reach) instead of throwing:
 * serverless offline answers a thrown error with status 200 and the error as the body, where API Gateway
 * would answer 500, and either way the client would not get the clear answer every system owes it.
 */
export function answering(run: (event: Event) => Promise<Result>): (event: Event) => Promise<Result> {
  return async (event) => {
    try {
      return await run(event);
    } catch (error) {
      console.error(`answered 503: ${error instanceof Error ? error.message : String(error)}`);
      return reply(503, { error: 'UNAVAILABLE', message: 'the store did not answer in time; retry shortly' });
    }
  };
}
