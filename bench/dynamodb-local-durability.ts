/**
 * `node --import tsx bench/dynamodb-local-durability.ts [rounds] [writers]`
 *
 * Does DynamoDB Local keep every transaction it acknowledged when it is killed with SIGKILL?
 * Each round starts DynamoDB Local on a fresh folder, writes single-item ledger transactions
 * (ledger.persistBatch) from `writers` loops for 1.5-3.5 s, kills it at that random moment, starts it
 * again on the same folder and lists the acknowledged issuances that are gone, with how long before
 * the kill each was acknowledged. Exit code 0 either way: it measures, it does not judge.
 *
 * The answer (README, Reliability) is why `npm start` reconciles after an unclean stop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { newCouponRecord } from '../lib/ledger/model.js';
import { Ledger } from '../lib/ledger/ledger.js';
import { freePort, startDynamo, type Spawned } from '../localstack/processes.js';
import { ensureTable } from '../localstack/table.js';

const rounds = Number(process.argv[2] ?? 10);
const writers = Number(process.argv[3] ?? 1);
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(writers) || writers < 1) {
  console.error('usage: bench/dynamodb-local-durability.ts [rounds >= 1] [writers >= 1]');
  process.exit(1);
}

const TABLE = 'durability-probe';
const QUANTITY = 1_000_000;

async function start(port: number, dataDir: string): Promise<{ dynamodb: Spawned; ledger: Ledger; close: () => void }> {
  const dynamodb = await startDynamo({ port, dataDir, logFile: join(dataDir, 'dynamodb.log') });
  // One attempt: a retried request could be written twice, or written after the kill is counted.
  const client = createDynamo({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 });
  await ensureTable(client, TABLE);
  return { dynamodb, ledger: new Ledger(client, TABLE), close: () => client.destroy() };
}

let lostRounds = 0;
let userSeq = 0;
for (let round = 1; round <= rounds; round++) {
  const dataDir = mkdtempSync(join(tmpdir(), 'ddb-durability-'));
  const port = await freePort();
  const first = await start(port, dataDir);
  const couponId = `probe-${round}`;
  await first.ledger.createCoupon(newCouponRecord({ couponId, name: 'probe', totalQuantity: QUANTITY, startsAt: 0, endsAt: undefined, createdAt: Date.now() }));

  const acknowledged: { userId: string; at: number }[] = [];
  let killed = false;
  const loops = Array.from({ length: writers }, async () => {
    while (!killed) {
      const userId = `u${++userSeq}`;
      try {
        await first.ledger.persistBatch(couponId, QUANTITY, [{ userId, ticket: userSeq, requestedAt: Date.now() }]);
      } catch {
        return; // the kill
      }
      acknowledged.push({ userId, at: Date.now() });
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 1_500 + Math.random() * 2_000));
  const killedAt = Date.now();
  first.dynamodb.child.kill('SIGKILL');
  killed = true;
  await Promise.all(loops);
  await new Promise((resolve) => (first.dynamodb.child.exitCode !== null ? resolve(undefined) : first.dynamodb.child.once('exit', resolve)));
  first.close();

  const second = await start(port, dataDir);
  const held = new Set<string>();
  for await (const page of second.ledger.issuancesOf(couponId)) for (const item of page) held.add(item.userId);
  const issuedCount = (await second.ledger.getCoupon(couponId, true))?.issuedCount;
  const gone = acknowledged.filter((a) => !held.has(a.userId));
  if (gone.length > 0) lostRounds += 1;
  const detail = gone.map((g) => `${g.userId} acknowledged ${killedAt - g.at} ms before the kill`).join('; ');
  console.log(
    `round ${round}: ${acknowledged.length} acknowledged, ${held.size} held after restart (issuedCount ${issuedCount}), ` +
      `${gone.length} lost${detail ? `: ${detail}` : ''}`,
  );
  second.dynamodb.child.kill('SIGKILL');
  second.close();
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(`\n${lostRounds} of ${rounds} rounds lost an acknowledged transaction (${writers} writer${writers === 1 ? '' : 's'}).`);
process.exit(0);
