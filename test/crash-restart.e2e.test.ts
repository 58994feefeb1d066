import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TransactionCanceledException, TransactWriteItemsCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamo } from '../lib/ledger/dynamo.js';
import { Ledger } from '../lib/ledger/ledger.js';
import { couponPk, DEFAULT_ISSUANCE_PARTITIONS, issuancePk, issueSk, META_SK } from '../lib/ledger/model.js';
import { freePort, PROJECT_ROOT } from '../localstack/processes.js';
import { api, eventually, inParallel } from './support/http.js';

/**
 * `npm start` killed with SIGKILL, whole process group at once (redis-server, gateway, DynamoDB Local,
 * serverless offline with a drain mid-flight), then started again on the same data: every request that
 * was answered ACCEPTED ends up in the ledger exactly once, and nothing else does.
 *
 * DynamoDB Local sometimes loses the last transaction it acknowledged before a kill -9 (see
 * localstack/recover.ts). The test makes that happen every time, by removing one persisted issuance
 * (item and counter, as a lost transaction would) just before the kill: the restart must repair it.
 */
describe('npm start survives kill -9 of its whole process group', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fcfs-crash-'));
  const adminToken = 'crash-admin-token';
  let current: ChildProcess | undefined;
  afterAll(async () => {
    if (current?.pid && current.exitCode === null) killGroup(current, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('persists every accepted request exactly once after a crash mid-drain', async (context) => {
    context.onTestFailed(() => console.error(`npm start output:\n${outputs.join('\n---- restart ----\n')}`));
    const ports = {
      API_PORT: await freePort(),
      LAMBDA_PORT: await freePort(),
      DYNAMODB_PORT: await freePort(),
      GATEWAY_PORT: await freePort(),
      REDIS_PORT: await freePort(),
    };
    const env = {
      ...process.env,
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      DATA_DIR: dataDir,
      ADMIN_TOKEN: adminToken,
      SEED_COUPON_QUANTITY: '0',
      // A slow drain (one item per transaction) so the kill lands while it works, and a short lease so
      // the restarted drain takes its claims back soon; a lease must outlast a ledger write, or npm start
      // refuses it: one attempt of at most 3 s.
      DRAIN_BATCH_SIZE: '1',
      DRAIN_CLAIM_LEASE_MS: '4000',
      LEDGER_ATTEMPTS: '1',
      LEDGER_REQUEST_TIMEOUT_MS: '3000',
      LOG_LEVEL: 'warn',
    };
    const apiUrl = `http://127.0.0.1:${ports.API_PORT}`;
    const client = api(apiUrl, adminToken);
    const couponId = `crash-${Date.now()}`;

    current = await startAndWait(env);
    // npm start prints the live operator page's address, and the page is served there.
    expect(outputs.at(-1)).toContain(`Operator page      ${apiUrl}/admin`);
    const operatorPage = await fetch(`${apiUrl}/admin`);
    expect([operatorPage.status, operatorPage.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    expect((await client.createCoupon({ couponId, name: 'crash', totalQuantity: 400 })).status).toBe(201);
    const users = Array.from({ length: 1_200 }, (_, i) => `u${(i * 7_919) % 600}`);
    const replies = await inParallel(users.length, 40, (i) => client.issue(users[i]!, couponId));
    expect(replies.filter((r) => r.status >= 500)).toEqual([]);
    const accepted = new Set(users.filter((_, i) => replies[i]!.body.result === 'ACCEPTED'));
    expect(accepted.size).toBe(400);

    // Wait until the drain has persisted some, but not all, then kill everything at once.
    const midway = await eventually(
      () => client.adminCoupon(couponId),
      (r) => r.body.issued > 0,
      30_000,
      'the drain to start',
    );
    expect(midway.body.issued).toBeLessThan(400);
    const dynamo = createDynamo({ region: 'us-east-1', endpoint: `http://127.0.0.1:${ports.DYNAMODB_PORT}` });
    const ledger = new Ledger(dynamo, 'fcfs-coupons-local');
    // An issuance the drain has written and acknowledged (Redis answers ISSUED): what a lost transaction leaves.
    const [written] = (await ledger.issuancesOf(couponId).next()).value!;
    await eventually(
      () => client.status(written!.userId, couponId),
      (r) => r.body.status === 'ISSUED',
      10_000,
      'the acknowledgement',
    );
    await loseIssuance(dynamo, ledger.tableName, couponId, written!.userId);
    // DynamoDB Local's own loss window is the last few ms before the kill: let the removal leave it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    killGroup(current, 'SIGKILL');
    await exited(current);

    current = await startAndWait(env);
    expect(outputs.at(-1)).toMatch(/coupon crash-\d+: repaired [^\n]*\b\d+ MARKED_NOT_PERSISTED/);
    await eventually(
      async () => (await ledger.getCoupon(couponId, true))?.issuedCount,
      (n) => n === 400,
      90_000,
      'every accepted request persisted',
    );
    const persisted: string[] = [];
    for await (const page of ledger.issuancesOf(couponId)) persisted.push(...page.map((p) => p.userId));
    expect(persisted).toHaveLength(400);
    expect(persisted.sort()).toEqual([...accepted].sort());
    expect((await client.adminCoupon(couponId)).body).toMatchObject({ status: 'FINISHED', issued: 400, queued: 0, inflight: 0, deadLettered: 0 });

    // SIGTERM (what Ctrl-C sends) stops every child: all ports are released.
    killGroup(current, 'SIGTERM', false);
    await exited(current);
    for (const port of Object.values(ports)) {
      await eventually(
        () => portIsFree(port),
        (free) => free,
        15_000,
        `port ${port} to be released`,
      );
    }
    // Two starts of the whole stack and 400 single-item transactions: ~35 s alone, and more than the
    // suite's default minute when the other test worker loads the same two cores.
  }, 240_000);
});

const outputs: string[] = [];

/** Remove an issuance and its unit of the counter in one transaction, retrying conflicts with the live drain. */
async function loseIssuance(dynamo: DynamoDBClient, tableName: string, couponId: string, userId: string): Promise<void> {
  const lose = new TransactWriteItemsCommand({
    TransactItems: [
      {
        Delete: {
          TableName: tableName,
          // The stack creates coupons with the default issuance partitions (LEDGER_PARTITIONS unset).
          Key: { PK: { S: issuancePk(couponId, userId, DEFAULT_ISSUANCE_PARTITIONS) }, SK: { S: issueSk(userId) } },
          ConditionExpression: 'attribute_exists(PK)',
        },
      },
      {
        Update: {
          TableName: tableName,
          Key: { PK: { S: couponPk(couponId) }, SK: { S: META_SK } },
          UpdateExpression: 'ADD issuedCount :minusOne',
          ExpressionAttributeValues: { ':minusOne': { N: '-1' } },
        },
      },
    ],
  });
  for (let attempt = 1; ; attempt++) {
    try {
      await dynamo.send(lose);
      return;
    } catch (error) {
      const conflict = error instanceof TransactionCanceledException && error.CancellationReasons?.some((r) => r.Code === 'TransactionConflict');
      if (!conflict || attempt === 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

function startAndWait(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'localstack', 'start.ts')], {
    env,
    cwd: PROJECT_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const index = outputs.push('') - 1;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not come up:\n${output}`)), 150_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      outputs[index] = output;
      if (output.includes('fcfs-coupons is running.')) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited with ${code}:\n${output}`));
    });
  });
}

/** Signal the whole process group (group = true), or only the start process, as a terminal's Ctrl-C would reach it. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals, group = true): void {
  process.kill(group ? -child.pid! : child.pid!, signal);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function portIsFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
