/**
 * Structured JSON logs through Powertools for AWS Lambda's Logger: one line each, with the request id and
 * cold start once a handler adds its Lambda context (addLambdaContext), the level from LOG_LEVEL, and a
 * share of invocations logged at DEBUG with POWERTOOLS_LOGGER_SAMPLE_RATE. Powertools writes JSON
 * whatever Lambda's log format; with the JSON format (serverless.yml), Lambda keeps each line as the
 * record. Never pass a secret, a token or a raw header here: fields are written as given.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';

type Level = 'debug' | 'info' | 'warn' | 'error';
type Fields = Record<string, unknown>;

const LEVELS = new Set(['DEBUG', 'INFO', 'WARN', 'ERROR']);
const configured = (process.env.LOG_LEVEL ?? 'info').toUpperCase();

export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'fcfs-coupons',
  logLevel: (LEVELS.has(configured) ? configured : 'INFO') as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR',
});

export const log: Record<Level, (message: string, fields?: Fields) => void> = {
  debug: (message, fields) => logger.debug(message, fields ?? {}),
  info: (message, fields) => logger.info(message, fields ?? {}),
  warn: (message, fields) => logger.warn(message, fields ?? {}),
  error: (message, fields) => logger.error(message, fields ?? {}),
};

/** Called by each handler per invocation: the request id and cold start on every line, debug sampling. */
export function addLambdaContext(context: Context | undefined): void {
  if (!context) return;
  logger.addContext(context);
  logger.refreshSampleRateCalculation();
}

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
    log[level](message, unwritten > 0 ? { ...fields, alsoSinceLastLine: unwritten } : fields);
    lastWritten = at;
    unwritten = 0;
  };
}
