/**
 * An HTTP proxy in front of DynamoDB Local that injects the faults real DynamoDB shows under stress,
 * on a share of calls: throttling (400 ThrottlingException), 500 InternalServerError, a connection
 * dropped before the request reaches DynamoDB, a connection dropped after DynamoDB applied it (the
 * client never learns it succeeded), and added latency. Requests carrying a poison marker are always
 * refused with a ValidationException, as an item DynamoDB can never accept would be. During an outage
 * (setOutage(true)) every call fails, half with a 500 and half with a dropped connection, and nothing
 * reaches DynamoDB.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type Fault = 'throttle' | 'error500' | 'dropBefore' | 'dropAfter' | 'latency';

export interface FaultProxy {
  readonly url: string;
  readonly stats: Record<Fault | 'forwarded' | 'poisoned' | 'outage', number>;
  /** While on, every call fails and nothing reaches DynamoDB. */
  setOutage(on: boolean): void;
  close(): Promise<void>;
}

export async function startDynamoFaultProxy(options: { target: string; faultRate: number; poisonMarker?: string; port?: number }): Promise<FaultProxy> {
  const target = new URL(options.target);
  const stats: FaultProxy['stats'] = { forwarded: 0, poisoned: 0, outage: 0, throttle: 0, error500: 0, dropBefore: 0, dropAfter: 0, latency: 0 };
  const faults: Fault[] = ['throttle', 'error500', 'dropBefore', 'dropAfter', 'latency'];
  let outage = false;

  const server: Server = createServer(async (req, res) => {
    const body = await readAll(req);
    if (outage) {
      stats.outage += 1;
      return Math.random() < 0.5 ? sendError(res, 500, 'InternalServerError', 'injected: outage') : req.socket.destroy();
    }
    if (options.poisonMarker && body.includes(options.poisonMarker)) {
      stats.poisoned += 1;
      return sendError(res, 400, 'ValidationException', 'injected: this item can never be written');
    }
    const fault = Math.random() < options.faultRate ? faults[Math.floor(Math.random() * faults.length)]! : undefined;
    if (fault) stats[fault] += 1;
    switch (fault) {
      case 'throttle':
        return sendError(res, 400, 'ThrottlingException', 'injected: rate of requests exceeds the allowed throughput');
      case 'error500':
        return sendError(res, 500, 'InternalServerError', 'injected: internal server error');
      case 'dropBefore':
        return req.socket.destroy();
      case 'latency':
        await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 250));
        break;
      default:
        break;
    }
    stats.forwarded += 1;
    const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (reply) => {
      if (fault === 'dropAfter') {
        reply.resume();
        reply.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(res);
    });
    upstream.on('error', () => req.socket.destroy());
    upstream.end(body);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    setOutage: (on) => {
      outage = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message });
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(body), 'x-amzn-errortype': type });
  res.end(body);
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
