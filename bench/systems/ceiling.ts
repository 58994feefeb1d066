/**
 * Not a coupon system: the ceiling. A handler that does no I/O and answers what an admission answers,
 * served by the same serverless offline (in-process, same log level) and driven by the same load
 * generator as every system. Whatever it reaches is what serverless offline and the load generator
 * themselves allow on this machine in this run, so the other systems' numbers can be read against it.
 */
import { BAD_ID, ids, reply, type Event, type Result } from './shared.js';

let ticket = 0;

export async function handler(event: Event): Promise<Result> {
  const parsed = ids(event);
  if (!parsed) return BAD_ID;
  ticket += 1;
  return reply(200, { result: 'ACCEPTED', couponId: parsed.couponId, userId: parsed.userId, ticket });
}
