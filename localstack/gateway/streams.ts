/**
 * SUBSCRIBE and PSUBSCRIBE as Upstash serves them over REST: `POST /subscribe/<channel>[/<channel>...]`
 * (or /psubscribe/<pattern>...) answers a Server-Sent Events stream, one event per line of Redis's
 * pub/sub traffic, as @upstash/redis's Subscriber parses it:
 *
 *   data: subscribe,<channel>,<count>           data: psubscribe,<pattern>,<count>
 *   data: message,<channel>,<message>           data: pmessage,<pattern>,<channel>,<message>
 *
 * Messages are written as published (never base64: the client parses them as they come). Each stream
 * has a Redis connection of its own, closed when the client goes away; a connection Redis drops ends
 * the stream.
 */
import type { ServerResponse } from 'node:http';
import { connect } from './redis-link.js';

export async function subscribe(
  res: ServerResponse,
  redis: { host: string; port: number },
  kind: 'subscribe' | 'psubscribe',
  targets: string[],
): Promise<void> {
  const connection = connect(redis.host, redis.port, { subscriber: true });
  connection.on('error', () => {
    /* the stream ends on 'end' */
  });
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    connection.disconnect();
    res.end();
  };
  res.on('close', close);
  connection.on('end', close);
  try {
    await connection.connect();
  } catch (error) {
    open = false;
    connection.disconnect();
    const body = JSON.stringify({ error: `Redis is unavailable: ${error instanceof Error ? error.message : String(error)}` });
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  if (!open) return;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
  const event = (line: string) => {
    if (open) res.write(`data: ${line}\n\n`);
  };
  if (kind === 'subscribe') connection.on('message', (channel: string, message: string) => event(`message,${channel},${message}`));
  else connection.on('pmessage', (pattern: string, channel: string, message: string) => event(`pmessage,${pattern},${channel},${message}`));
  for (const target of targets) {
    const count = await (kind === 'subscribe' ? connection.subscribe(target) : connection.psubscribe(target)).catch(() => undefined);
    if (count === undefined) return close();
    event(`${kind},${target},${count}`);
  }
}
