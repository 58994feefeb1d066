import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { assertPortFree, freePort, StackError } from '../localstack/processes.js';

describe('the local stack', () => {
  it('refuses a taken port with one clear sentence naming the variable that moves it', async () => {
    const port = await freePort();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', () => resolve()));
    try {
      const refusal = assertPortFree(port, 'DynamoDB Local', 'DYNAMODB_PORT');
      await expect(refusal).rejects.toThrow(StackError);
      await expect(refusal).rejects.toThrow(`Port ${port} (DynamoDB Local) is already in use: stop what holds it or set DYNAMODB_PORT to a free port.`);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    await expect(assertPortFree(port, 'DynamoDB Local', 'DYNAMODB_PORT')).resolves.toBeUndefined();
  });
});
