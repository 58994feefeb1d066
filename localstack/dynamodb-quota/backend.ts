/**
 * The DynamoDB behind the quota proxy (DynamoDB Local): requests forwarded as the client sent them, and
 * the proxy's own uncounted look-ups (DescribeTable, items before and after a write, full items behind a
 * projection). DynamoDB Local checks that a request carries credentials, not its signature.
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import type { Item } from './item-size.js';
import { itemId, primaryKeyOf, type TableSchema } from './table-schema.js';

export interface BackendReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export class BackendError extends Error {
  override readonly name = 'BackendError';
}

const LOOKUP_AUTHORIZATION = 'AWS4-HMAC-SHA256 Credential=quotaproxy/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0';

export class Backend {
  private readonly target: URL;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  constructor(target: string) {
    this.target = new URL(target);
  }

  /** The client's request as it came, headers and body (its length set again, the body may be rewritten). */
  forward(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<BackendReply> {
    const { host: _host, 'content-length': _length, connection: _connection, ...rest } = headers;
    return this.send(method, path, { ...rest, 'content-length': String(body.length) }, body);
  }

  /** One of the proxy's own calls; throws on anything but 200. */
  async call<T>(operation: string, payload: unknown): Promise<T> {
    const body = Buffer.from(JSON.stringify(payload));
    const reply = await this.send(
      'POST',
      '/',
      {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDB_20120810.${operation}`,
        'x-amz-date': '20200101T000000Z',
        authorization: LOOKUP_AUTHORIZATION,
        'content-length': String(body.length),
      },
      body,
    );
    const text = reply.body.toString('utf8');
    if (reply.status !== 200) throw new BackendError(`${operation} answered ${reply.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }

  async describeTable(name: string): Promise<unknown | undefined> {
    try {
      return (await this.call<{ Table: unknown }>('DescribeTable', { TableName: name })).Table;
    } catch (error) {
      if (error instanceof BackendError && error.message.includes('ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  /** Full items by key (strongly consistent), keyed by itemId; a missing item is absent from the map. */
  async getItems(keys: readonly { table: TableSchema; key: Item }[]): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    const tables = new Map(keys.map(({ table }) => [table.name, table]));
    for (let start = 0; start < keys.length; start += 100) {
      let requestItems: Record<string, { Keys: Item[]; ConsistentRead: true }> = {};
      for (const { table, key } of keys.slice(start, start + 100)) {
        (requestItems[table.name] ??= { Keys: [], ConsistentRead: true }).Keys.push(key);
      }
      while (Object.keys(requestItems).length > 0) {
        const reply = await this.call<{ Responses?: Record<string, Item[]>; UnprocessedKeys?: typeof requestItems }>('BatchGetItem', {
          RequestItems: requestItems,
        });
        for (const [name, items] of Object.entries(reply.Responses ?? {})) {
          const table = tables.get(name)!;
          for (const item of items) found.set(itemId(table, primaryKeyOf(table, item)!), item);
        }
        requestItems = reply.UnprocessedKeys ?? {};
      }
    }
    return found;
  }

  async getItem(table: TableSchema, key: Item): Promise<Item | undefined> {
    return (await this.call<{ Item?: Item }>('GetItem', { TableName: table.name, Key: key, ConsistentRead: true })).Item;
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, headers: Record<string, string | string[] | undefined>, body: Buffer): Promise<BackendReply> {
    return new Promise((resolve, reject) => {
      const outgoing = request({ host: this.target.hostname, port: this.target.port, path, method, headers, agent: this.agent }, (reply) => {
        const chunks: Buffer[] = [];
        reply.on('data', (chunk: Buffer) => chunks.push(chunk));
        reply.on('end', () => resolve({ status: reply.statusCode ?? 502, headers: reply.headers, body: Buffer.concat(chunks) }));
        reply.on('error', reject);
      });
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }
}
