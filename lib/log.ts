/**
 * Structured JSON logs through Powertools for AWS Lambda's Logger: one line each, with the request id and
 * cold start once a handler adds its Lambda context (addLambdaContext), the level from LOG_LEVEL, and a
 * share of invocations logged at DEBUG with POWERTOOLS_LOGGER_SAMPLE_RATE. Never pass a secret, a token
 * or a raw header here: fields are written as given.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';

type Fields = Record<string, unknown>;

const LEVELS = new Set(['DEBUG', 'INFO', 'WARN', 'ERROR']);
const configured = (process.env.LOG_LEVEL ?? 'info').toUpperCase();

export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'fcfs-coupons',
  logLevel: (LEVELS.has(configured) ? configured : 'INFO') as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR',
});

export const log = {
  debug: (message: string, fields?: Fields) => logger.debug(message, fields ?? {}),
  info: (message: string, fields?: Fields) => logger.info(message, fields ?? {}),
  warn: (message: string, fields?: Fields) => logger.warn(message, fields ?? {}),
  error: (message: string, fields?: Fields) => logger.error(message, fields ?? {}),
};

/** Called by each handler per invocation: the request id and cold start on every line, debug sampling. */
export function addLambdaContext(context: Context | undefined): void {
  if (!context) return;
  logger.addContext(context);
  logger.refreshSampleRateCalculation();
}
