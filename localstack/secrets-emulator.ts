/**
 * A local AWS Secrets Manager and SSM Parameter Store in one HTTP server (the AWS JSON 1.1 protocol the
 * SDKs speak), serving values given at start, counting calls per API and throttling above a rate, so a
 * test can count the secret-store calls a cold start makes:
 *
 *   X-Amz-Target secretsmanager.GetSecretValue   {SecretId}         -> {ARN, Name, VersionId, SecretString, ...}
 *   X-Amz-Target AmazonSSM.GetParameter          {Name, WithDecryption}  -> {Parameter}
 *   X-Amz-Target AmazonSSM.GetParameters         {Names, WithDecryption} -> {Parameters, InvalidParameters}
 *   GET /_fcfs/stats                              calls and throttled calls per API
 *
 * Throttling as AWS documents it: Parameter Store allows 40 transactions per second by default, shared by
 * GetParameter, GetParameters and GetParametersByPath (Systems Manager quotas); Secrets Manager 10,000
 * GetSecretValue per second (Secrets Manager quotas). Over the rate the answer is HTTP 400
 * `{"__type":"ThrottlingException","message":"Rate exceeded"}`, the error AWS's throttling answers with
 * ("ThrottlingException ... Rate exceeded", ssm-parameter-store-rate-exceeded). A bucket holds one second
 * of its rate. Signatures are not checked. The SDK reaches it with `endpoint` (or AWS_ENDPOINT_URL_SSM).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type SecretsApi = 'secretsmanager.GetSecretValue' | 'AmazonSSM.GetParameter' | 'AmazonSSM.GetParameters';

export interface ParameterValue {
  readonly value: string;
  readonly type?: 'String' | 'StringList' | 'SecureString';
}

export interface SecretsEmulatorOptions {
  readonly port?: number;
  readonly host?: string;
  /** Secrets Manager secrets: name -> SecretString. */
  readonly secrets?: Readonly<Record<string, string>>;
  /** Parameter Store parameters: name -> value (a plain string is a SecureString). */
  readonly parameters?: Readonly<Record<string, string | ParameterValue>>;
  /** Default 40, AWS's default Parameter Store throughput; Infinity: never throttled. */
  readonly parameterStoreTransactionsPerSecond?: number;
  /** Default 10,000, AWS's GetSecretValue quota; Infinity: never throttled. */
  readonly secretsManagerTransactionsPerSecond?: number;
  /** For ARNs; default us-east-1. */
  readonly region?: string;
  /** Milliseconds now (tests freeze time with it); default Date.now. */
  readonly clock?: () => number;
}

export interface SecretsStats {
  readonly calls: Record<SecretsApi, number>;
  readonly throttled: Record<SecretsApi, number>;
}

export interface SecretsEmulator {
  readonly url: string;
  stats(): SecretsStats;
  reset(): void;
  close(): Promise<void>;
}

const ACCOUNT = '000000000000';
const APIS: readonly SecretsApi[] = ['secretsmanager.GetSecretValue', 'AmazonSSM.GetParameter', 'AmazonSSM.GetParameters'];
const CREATED = Math.floor(Date.now() / 1000);

type Reply = { readonly status: number; readonly body: Record<string, unknown> };

export async function startSecretsEmulator(options: SecretsEmulatorOptions = {}): Promise<SecretsEmulator> {
  const region = options.region ?? 'us-east-1';
  const clock = options.clock ?? Date.now;
  const parameterStore = new RateLimit(options.parameterStoreTransactionsPerSecond ?? 40, clock);
  const secretsManager = new RateLimit(options.secretsManagerTransactionsPerSecond ?? 10_000, clock);
  const zero = () => Object.fromEntries(APIS.map((api) => [api, 0])) as Record<SecretsApi, number>;
  let stats: SecretsStats = { calls: zero(), throttled: zero() };

  const parameter = (name: string, decrypt: boolean) => {
    const given = options.parameters?.[name];
    if (given === undefined) return undefined;
    const { value, type = 'SecureString' } = typeof given === 'string' ? { value: given } : given;
    return {
      Name: name,
      Type: type,
      // Without decryption a SecureString comes back as its ciphertext, never the value.
      Value: type === 'SecureString' && !decrypt ? Buffer.from(`ciphertext:${randomUUID()}`).toString('base64') : value,
      Version: 1,
      LastModifiedDate: CREATED,
      ARN: `arn:aws:ssm:${region}:${ACCOUNT}:parameter${name.startsWith('/') ? '' : '/'}${name}`,
      DataType: 'text',
    };
  };

  const handlers: Record<SecretsApi, (input: Record<string, unknown>) => Reply> = {
    'secretsmanager.GetSecretValue': (input) => {
      const name = String(input.SecretId ?? '');
      const secret = options.secrets?.[name];
      if (secret === undefined) return error('ResourceNotFoundException', { Message: "Secrets Manager can't find the specified secret." });
      return {
        status: 200,
        body: {
          ARN: `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:${name}-AbCdEf`,
          Name: name,
          VersionId: '00000000-0000-0000-0000-000000000001',
          SecretString: secret,
          VersionStages: ['AWSCURRENT'],
          CreatedDate: CREATED,
        },
      };
    },
    'AmazonSSM.GetParameter': (input) => {
      const found = parameter(String(input.Name ?? ''), input.WithDecryption === true);
      return found ? { status: 200, body: { Parameter: found } } : error('ParameterNotFound', {});
    },
    'AmazonSSM.GetParameters': (input) => {
      const names = Array.isArray(input.Names) ? input.Names.map(String) : [];
      const found = names.map((name) => parameter(name, input.WithDecryption === true));
      return {
        status: 200,
        body: { Parameters: found.filter((p) => p !== undefined), InvalidParameters: names.filter((_, i) => found[i] === undefined) },
      };
    },
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readAll(req);
    if (req.method === 'GET' && req.url === '/_fcfs/stats')
      return send(res, { status: 200, body: stats as unknown as Record<string, unknown> }, 'application/json');
    const api = String(req.headers['x-amz-target'] ?? '') as SecretsApi;
    if (!APIS.includes(api)) return send(res, error('UnknownOperationException', { message: `not emulated: ${api || 'no X-Amz-Target'}` }));
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body || '{}') as Record<string, unknown>;
    } catch {
      return send(res, error('SerializationException', { message: 'the body is not JSON' }));
    }
    stats.calls[api] += 1;
    if (!(api.startsWith('AmazonSSM.') ? parameterStore : secretsManager).take()) {
      stats.throttled[api] += 1;
      return send(res, error('ThrottlingException', { message: 'Rate exceeded' }));
    }
    send(res, handlers[api](input));
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    stats: () => structuredClone(stats),
    reset: () => {
      stats = { calls: zero(), throttled: zero() };
      parameterStore.refill();
      secretsManager.refill();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A token bucket of one second of its rate. */
class RateLimit {
  private level: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly clock: () => number,
  ) {
    this.level = perSecond;
    this.at = clock();
  }

  take(): boolean {
    if (this.perSecond === Infinity) return true;
    const now = this.clock();
    this.level = Math.min(this.perSecond, this.level + (this.perSecond * Math.max(0, now - this.at)) / 1000);
    this.at = now;
    if (this.level < 1) return false;
    this.level -= 1;
    return true;
  }

  refill(): void {
    this.level = this.perSecond;
    this.at = this.clock();
  }
}

function error(type: string, fields: Record<string, unknown>): Reply {
  return { status: 400, body: { __type: type, ...fields } };
}

function send(res: ServerResponse, reply: Reply, contentType = 'application/x-amz-json-1.1'): void {
  const body = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'x-amzn-requestid': randomUUID() });
  res.end(body);
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
