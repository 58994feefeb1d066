/**
 * `npm run reconcile -- --coupon <id> [--dry-run] [--json] [--api <base url>]`
 *
 * Compares a coupon's Redis state with the ledger, reports every difference and repairs it (not with
 * --dry-run), through the admin API: the local stack by default, or any stage with --api and
 * ADMIN_TOKEN. Exit code: 0 in sync or repaired, 2 differences left (dry run) or not finished (state
 * changed meanwhile: run it again), 1 on error.
 */
import { isValidId } from '../lib/coupons/ids.js';
import { parseCommandLine, refuse, type Tool } from './command-line.js';

const RECONCILE: Tool = { name: 'reconcile', usage: 'npm run reconcile -- --coupon <couponId> [--dry-run] [--json] [--api <base url>]', refusedExitCode: 1 };

function fail(message: string): never {
  console.error(`reconcile: ${message}`);
  process.exit(1);
}

const values = parseCommandLine(RECONCILE, {
  coupon: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  // Never taken from BASE_URL: a repair goes to another stage only when asked for by name.
  api: { type: 'string', default: `http://127.0.0.1:${process.env.API_PORT ?? 8080}` },
});

if (!values.coupon) refuse(RECONCILE, '--coupon <couponId> is required, e.g. npm run reconcile -- --coupon 1');
if (!isValidId(values.coupon)) refuse(RECONCILE, `--coupon must be 1 to 64 characters of A-Z, a-z, 0-9, "_" or "-", got "${values.coupon}"`);
if (!/^https?:\/\/\S+$/.test(values.api!)) refuse(RECONCILE, `--api must be an http(s) URL, got "${values.api}"`);
const url = `${values.api!.replace(/\/$/, '')}/api/v2/admin/coupons/${encodeURIComponent(values.coupon)}/reconcile${values['dry-run'] ? '?dryRun=true' : ''}`;
const response = await fetch(url, {
  method: 'POST',
  headers: { authorization: `Bearer ${process.env.ADMIN_TOKEN || 'local-admin-token'}` },
}).catch((error: unknown) => fail(`cannot reach ${values.api} (${String(error)}); is the stack running (npm start)?`));
const body = (await response.json().catch(() => ({}))) as Record<string, any>;
// The admin API answers every failure with { error, message } (functions/http.ts), API Gateway with
// { message } (a refused token); anything else is some other server on that port.
if (!response.ok && typeof body.message === 'string') fail(`${response.status}${typeof body.error === 'string' ? ` ${body.error}` : ''}: ${body.message}`);
if (!response.ok) {
  fail(
    `${values.api} answered ${response.status} without the admin API's error body: is it the stack (npm start) or the stage you meant? Check --api and API_PORT.`,
  );
}
if (typeof body.summary !== 'object' || body.summary === null) {
  fail(
    `${values.api} answered ${response.status} with something other than a reconcile report: is it the stack (npm start) or the stage you meant? Check --api and API_PORT.`,
  );
}

if (values.json) {
  console.log(JSON.stringify(body, null, 2));
} else {
  const r = body;
  console.log(`Coupon ${r.couponId}${r.dryRun ? ' (dry run: nothing changed)' : ''}`);
  console.log(`  ledger  total ${r.ledger.totalQuantity}, issuedCount ${r.ledger.issuedCount}, issuances ${r.ledger.issuances}`);
  console.log(
    `  redis   remaining ${r.redis.remaining}, winners ${r.redis.winners} (issued ${r.redis.issued}, rejected ${r.redis.rejected}), ` +
      `queued ${r.redis.queued}, in flight ${r.redis.inflight}, dead-lettered ${r.redis.deadLettered}`,
  );
  const kinds = Object.entries(r.summary as Record<string, number>);
  if (kinds.length === 0) console.log('  in sync: no differences');
  for (const [kind, count] of kinds) console.log(`  ${kind.padEnd(30)} ${count}`);
  for (const d of (r.differences as { kind: string; userId?: string; detail: string }[]).slice(0, 20)) {
    console.log(`    - ${d.kind}${d.userId ? ` ${d.userId}` : ''}: ${d.detail}`);
  }
  if (r.differences.length > 20) console.log(`    ... and ${r.differences.length - 20} more (--json lists them)`);
  if (r.repaired) console.log('  repaired');
  if (r.retry) console.log(`  some state changed while ${r.dryRun ? 'reading' : 'repairing'}: run reconcile again`);
}
const differences = Object.keys(body.summary ?? {}).length > 0;
// retry without differences: `remaining` moved while it was read, so it was not checked at all.
process.exit((differences && body.dryRun) || body.retry ? 2 : 0);
