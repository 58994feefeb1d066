import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { signV4, type AwsCredentials } from './sigv4.js';

/**
 * The few AWS calls the admission path makes (Lambda Invoke, Secrets Manager GetSecretValue, DynamoDB
 * GetItem), signed with SigV4 and sent over keep-alive node:http(s), without the AWS SDK: its clients
 * were most of the issue handler's bundle, which every new container imports in the opening second of a
 * drop (the measurement is in docs/). Each call has one deadline that covers connecting too.
 */
export interface AwsCall {
  /** SigV4 service name: lambda, secretsmanager, dynamodb. */
  readonly service: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** The whole call, connection included. */
  readonly timeoutMs: number;
}

export interface AwsReply {
  readonly status: number;
  readonly text: string;
  /** x-amzn-ErrorType, when the service sends it. */
  readonly errorType?: string;
}

/** A call that failed: an error answer (status and AWS error type) or no answer at all (status 0). */
export class AwsCallError extends Error {
  override readonly name = 'AwsCallError';
  constructor(
    message: string,
    readonly status: number,
    readonly type: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** May pass: no answer, a 5xx, or throttling. */
  get transient(): boolean {
    return this.status === 0 || this.status >= 500 || /Throttl|TooManyRequests|ProvisionedThroughputExceeded|RequestLimitExceeded/.test(this.type ?? '');
  }
}

/** Lambda's credentials come from its environment; a local endpoint accepts any. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env, local = false): AwsCredentials {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken } = env;
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  if (local) return { accessKeyId: 'local', secretAccessKey: 'local' };
  throw new Error('AWS credentials are missing: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (Lambda sets them)');
}

/** One AWS service endpoint: AWS's own for the region, or a local stand-in's URL. */
export class AwsEndpoint {
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;

  constructor(
    readonly service: string,
    readonly region: string,
    endpoint: string | undefined,
    private readonly credentials: () => AwsCredentials,
  ) {
    this.url = new URL(endpoint ?? `https://${service}.${region}.amazonaws.com`);
    const secure = this.url.protocol === 'https:';
    const pool = { keepAlive: true, maxSockets: 64, timeout: 4_000 };
    this.agent = secure ? new HttpsAgent(pool) : new HttpAgent(pool);
    this.send = secure ? httpsRequest : httpRequest;
  }

  async call(call: Omit<AwsCall, 'service'>): Promise<AwsReply> {
    const base = this.url.pathname === '/' ? '' : this.url.pathname.replace(/\/$/, '');
    const path = `${base}${call.path}`;
    const headers = signV4(
      { method: 'POST', host: this.url.host, path, headers: call.headers, body: call.body },
      this.credentials(),
      this.region,
      this.service,
    );
    const reply = await this.post(path, headers, call.body, call.timeoutMs);
    if (reply.status >= 200 && reply.status < 300) return reply;
    const type = errorType(reply);
    throw new AwsCallError(`${this.service} answered ${reply.status}${type ? ` ${type}` : ''}: ${errorMessage(reply.text)}`, reply.status, type);
  }

  private post(path: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<AwsReply> {
    return new Promise((resolve, reject) => {
      const request = this.send(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port || undefined,
          path,
          method: 'POST',
          agent: this.agent,
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (response: IncomingMessage) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            clearTimeout(deadline);
            const errorType = response.headers['x-amzn-errortype'];
            resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ...(errorType ? { errorType: String(errorType) } : {}) });
          });
          response.on('error', fail);
        },
      );
      // One deadline for the whole call: a socket's own timeout starts only once it is connected.
      const deadline = setTimeout(() => request.destroy(new Error(`${this.service} did not answer within ${timeoutMs} ms`)), timeoutMs);
      function fail(error: Error) {
        clearTimeout(deadline);
        reject(new AwsCallError(error.message, 0, undefined, { cause: error }));
      }
      request.on('error', fail);
      request.end(body);
    });
  }
}

function errorType(reply: AwsReply): string | undefined {
  if (reply.errorType) return reply.errorType.split(':')[0];
  try {
    const type = (JSON.parse(reply.text) as { __type?: string }).__type;
    return type?.split('#').pop();
  } catch {
    return undefined;
  }
}

function errorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: string; Message?: string };
    return (parsed.message ?? parsed.Message ?? text).slice(0, 300);
  } catch {
    return text.slice(0, 300);
  }
}
