/**
 * Structured JSON logs, one line each (CloudWatch and local consoles read them alike).
 * Never pass a secret, a token or a raw header here: fields are written as given.
 *
 * On Lambda with the JSON log format (serverless.yml), the runtime writes each console call as a JSON
 * record with its own timestamp, level and request id; the fields are handed to it as an object, so
 * they become the record's `message` object instead of a string of JSON inside it.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
type Fields = Record<string, unknown>;

const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const threshold = order[(process.env.LOG_LEVEL?.toLowerCase() as Level) ?? 'info'] ?? order.info;
const lambdaJson = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';

function emit(level: Level, message: string, fields?: Fields): void {
  if (order[level] < threshold) return;
  if (lambdaJson) {
    console[level](JSON.parse(JSON.stringify({ message, ...fields }, errorReplacer)));
    return;
  }
  console[level](JSON.stringify({ level, time: new Date().toISOString(), message, ...fields }, errorReplacer));
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, cause: value.cause instanceof Error ? value.cause.message : undefined };
  }
  return value;
}

export const log = {
  debug: (message: string, fields?: Fields) => emit('debug', message, fields),
  info: (message: string, fields?: Fields) => emit('info', message, fields),
  warn: (message: string, fields?: Fields) => emit('warn', message, fields),
  error: (message: string, fields?: Fields) => emit('error', message, fields),
};

/**
 * A line written at most once per interval (per container), with how many it stands for: a line per
 * request during an outage would cost more than the requests and bury everything else.
 */
export function sampledLog(level: Level, message: string, intervalMs: number, now: () => number = Date.now) {
  let lastWritten = Number.NEGATIVE_INFINITY;
  let unwritten = 0;
  return (fields?: Fields): void => {
    const at = now();
    if (at - lastWritten < intervalMs) {
      unwritten += 1;
      return;
    }
    emit(level, message, unwritten > 0 ? { ...fields, alsoSinceLastLine: unwritten } : fields);
    lastWritten = at;
    unwritten = 0;
  };
}
