/**
 * Redis replies as Upstash's REST API writes them: integers as exact JSON numbers (written digit for
 * digit, so 2^63-1 is not rounded to a double), nil as null, arrays as arrays, strings as UTF-8 text or,
 * with `Upstash-Encoding: base64`, as base64 except a bare top-level "OK". An error nested in an array
 * (a transaction's or a script's) is written as its message, a string like any other.
 */

/** A reply as ioredis parses it with `stringNumbers` and buffers: integers arrive as decimal strings. */
export type Reply = Buffer | string | number | null | Error | Reply[];

const INTEGER = /^-?\d+$/;

export function encodeResult(reply: Reply, base64: boolean): string {
  if (base64 && Buffer.isBuffer(reply) && reply.length === 2 && reply[0] === 0x4f && reply[1] === 0x4b) return '"OK"';
  return encode(reply, base64);
}

function encode(reply: Reply, base64: boolean): string {
  if (reply === null) return 'null';
  if (Buffer.isBuffer(reply)) return base64 ? `"${reply.toString('base64')}"` : JSON.stringify(reply.toString('utf8'));
  if (typeof reply === 'string') return INTEGER.test(reply) ? reply : JSON.stringify(reply);
  if (typeof reply === 'number') return Number.isFinite(reply) ? String(reply) : 'null';
  if (Array.isArray(reply)) {
    let out = '[';
    for (let i = 0; i < reply.length; i++) out += (i === 0 ? '' : ',') + encode(reply[i]!, base64);
    return `${out}]`;
  }
  return encode(Buffer.from(reply.message), base64);
}

/** `{"result": ...}` */
export function resultBody(reply: Reply, base64: boolean): string {
  return `{"result":${encodeResult(reply, base64)}}`;
}

/** `{"error": "..."}` */
export function errorBody(message: string): string {
  return `{"error":${JSON.stringify(message)}}`;
}
