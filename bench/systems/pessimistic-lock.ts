/**
 * Baseline "pessimistic-lock": the design the seed replaced. One SQL transaction per request locks the
 * coupon row (SELECT ... FOR UPDATE), checks the user and the stock, inserts the issuance and decrements
 * the stock, in PostgreSQL. A pool of connections per container, prepared statements, nothing else.
 */
import pg from 'pg';
import { answering, BAD_ID, env, ids, reply, type Event, type Result } from './shared.js';

let pool: pg.Pool | undefined;
const db = () => (pool ??= new pg.Pool({ connectionString: env('BENCH_PG_URL'), max: Number(process.env.BENCH_PG_POOL ?? 20) }));

export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS bench_coupons (id text PRIMARY KEY, total int NOT NULL, stock int NOT NULL);
  CREATE TABLE IF NOT EXISTS bench_issuances (
    coupon_id text NOT NULL, user_id text NOT NULL, requested_at timestamptz NOT NULL, issued_at timestamptz NOT NULL,
    PRIMARY KEY (coupon_id, user_id));`;

export const handler = answering(async (event: Event): Promise<Result> => {
  const parsed = ids(event);
  if (!parsed) return BAD_ID;
  const client = await db().connect();
  try {
    await client.query('BEGIN');
    const coupon = await client.query({ name: 'lock', text: 'SELECT stock FROM bench_coupons WHERE id = $1 FOR UPDATE', values: [parsed.couponId] });
    if (coupon.rowCount === 0) {
      await client.query('ROLLBACK');
      return reply(404, { error: 'COUPON_NOT_FOUND' });
    }
    const existing = await client.query({
      name: 'has',
      text: 'SELECT 1 FROM bench_issuances WHERE coupon_id = $1 AND user_id = $2',
      values: [parsed.couponId, parsed.userId],
    });
    if (existing.rowCount) {
      await client.query('COMMIT');
      return reply(200, { result: 'ALREADY_ACCEPTED', userId: parsed.userId });
    }
    if (coupon.rows[0].stock <= 0) {
      await client.query('COMMIT');
      return reply(409, { error: 'SOLD_OUT' });
    }
    await client.query({ name: 'insert', text: 'INSERT INTO bench_issuances VALUES ($1, $2, now(), now())', values: [parsed.couponId, parsed.userId] });
    await client.query({ name: 'decrement', text: 'UPDATE bench_coupons SET stock = stock - 1 WHERE id = $1', values: [parsed.couponId] });
    await client.query('COMMIT');
    return reply(200, { result: 'ACCEPTED', userId: parsed.userId });
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
});
