/**
 * The backing services for tests and fault runs, started fresh on free ports: a real redis-server, the
 * Upstash REST gateway in front of it, and DynamoDB Local (in memory) with the ledger table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDynamo } from '../../lib/ledger/dynamo.js';
import { freePort, startDynamo, startRedis, stopChild } from '../../localstack/processes.js';
import { ensureTable } from '../../localstack/table.js';
import { startGateway } from '../../localstack/upstash-gateway.js';

export interface Services {
  readonly redisPort: number;
  readonly gatewayUrl: string;
  readonly gatewayToken: string;
  readonly dynamodbEndpoint: string;
  readonly tableName: string;
}

export async function startServices(label: string): Promise<{ services: Services; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `fcfs-${label}-`));
  const [redisPort, gatewayPort, dynamoPort] = [await freePort(), await freePort(), await freePort()];
  const [redis, dynamo] = await Promise.all([
    startRedis({ port: redisPort, dataDir: join(dir, 'redis'), logFile: join(dir, 'redis.log') }),
    startDynamo({ port: dynamoPort, dataDir: undefined, logFile: join(dir, 'dynamodb.log') }),
  ]);
  const gatewayToken = `${label}-upstash-token`;
  const gateway = await startGateway({ port: gatewayPort, redisPort, token: gatewayToken });
  const dynamodbEndpoint = `http://127.0.0.1:${dynamoPort}`;
  const tableName = 'fcfs-coupons-test';
  await ensureTable(createDynamo({ region: 'us-east-1', endpoint: dynamodbEndpoint }), tableName);
  return {
    services: { redisPort, gatewayUrl: gateway.url, gatewayToken, dynamodbEndpoint, tableName },
    stop: async () => {
      await gateway.close();
      await Promise.all([stopChild(redis), stopChild(dynamo)]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
