/**
 * The operator's command-line tools (npm run bench, chaos, reconcile): a bad command line is refused with
 * one sentence and the usage, before the tool starts, asks or writes anything.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface Tool {
  /** Prefix of its messages, e.g. "bench". */
  readonly name: string;
  readonly usage: string;
  /** Exit code of a refused command line. */
  readonly refusedExitCode: number;
}

export function refuse(tool: Tool, message: string): never {
  process.stderr.write(`${tool.name}: ${message}\nUsage: ${tool.usage}\n`);
  process.exit(tool.refusedExitCode);
}

/** The tool's options (no positional arguments), or a refusal naming what parseArgs could not take. */
export function parseCommandLine<const O extends NonNullable<ParseArgsConfig['options']>>(tool: Tool, options: O) {
  try {
    return parseArgs({ options }).values;
  } catch (error) {
    return refuse(tool, error instanceof Error ? error.message : String(error));
  }
}
