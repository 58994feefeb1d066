/**
 * Running what a REST request carries against one database, and answering as Upstash answers:
 * - a command: 200 {"result"} or 400 {"error"} (Redis's error, or Upstash's refusal);
 * - a pipeline: 200 with one {"result"}|{"error"} per command, refused ones included, the rest run;
 * - a transaction: 200 with one entry per command once EXEC ran (a command failing inside it does not
 *   undo the others, as in Redis), or 400 {"error"} when it was discarded as a whole (a refused command,
 *   or one Redis rejected while queueing), in which case nothing ran and nothing is billed.
 * An unreachable Redis answers 503. Billing: each command sent is billed once (bar Upstash's unbilled
 * operational commands), a script's redis.call/pcall each once more; refused commands are not billed.
 */
import type { Redis as IORedis } from 'ioredis';
import type { Bill, CommandBudget } from './billing.js';
import { isBilled, refusal, SCRIPT_COMMANDS, type Refusal } from './commands.js';
import { isConnectionError, send } from './redis-link.js';
import { encodeResult, errorBody, resultBody, type Reply } from './reply.js';
import { outcomeOf, renameInError, type Script, type ScriptCache } from './scripts.js';

export interface Database {
  readonly redis: IORedis;
  readonly scripts: ScriptCache;
  readonly bill: Bill;
  readonly budget: CommandBudget | undefined;
}

export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** A SHA1 no script can have: EVALSHA of a script this database does not know gets Redis's own NOSCRIPT. */
const NO_SUCH_SHA = 'z'.repeat(40);

interface Step {
  /** The command's name in upper case. */
  readonly name: string;
  readonly billed: boolean;
  readonly refused?: Refusal;
  /** What is sent to Redis. */
  readonly command: readonly string[];
  readonly script?: Script;
  /** What the reply means beyond itself: a script's run, a script loaded, the script cache flushed. */
  readonly effect?: 'run' | 'load' | 'flush';
}

export async function runCommand(db: Database, command: string[], readOnly: boolean, base64: boolean): Promise<Answer> {
  const step = plan(db, command, readOnly, false);
  if (step.refused) return { status: step.refused.status, body: errorBody(step.refused.error) };
  if (step.billed) await waitFor(db, 1);
  let reply = await send(db.redis, step.command);
  let done = step;
  if (step.script && reply instanceof Error && !isConnectionError(reply)) [done, reply] = await retryScript(db, step, reply);
  if (reply instanceof Error && isConnectionError(reply)) return unavailable(reply);
  if (step.billed && !unknownCommand(reply)) db.bill.command(step.name);
  const answer = await finish(db, done, reply);
  return answer instanceof Error ? { status: 400, body: errorBody(answer.message) } : { status: 200, body: resultBody(answer, base64) };
}

export async function runPipeline(db: Database, commands: string[][], readOnly: boolean, base64: boolean): Promise<Answer> {
  const steps = commands.map((command) => plan(db, command, readOnly, true));
  await waitFor(db, steps.filter((s) => !s.refused && s.billed).length);
  const replies = steps.map((step) => (step.refused ? undefined : send(db.redis, step.command)));
  const settled = await Promise.all(replies);
  const sent = settled.filter((r): r is Reply => r !== undefined);
  if (sent.length > 0 && sent.every((r) => r instanceof Error && isConnectionError(r))) return unavailable(sent[0] as Error);
  const entries: string[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if (step.refused) {
      entries.push(errorBody(step.refused.error));
      continue;
    }
    if (step.billed && !unknownCommand(settled[i]!)) db.bill.command(step.name);
    entries.push(entry(await finish(db, step, settled[i]!), base64));
  }
  return { status: 200, body: `[${entries.join(',')}]` };
}

export async function runTransaction(db: Database, commands: string[][], readOnly: boolean, base64: boolean): Promise<Answer> {
  const steps = commands.map((command) => plan(db, command, readOnly, true));
  const refused = steps.find((s) => s.refused);
  if (refused) return { status: refused.refused!.status, body: errorBody(refused.refused!.error) };
  const cost = steps.filter((s) => s.billed).length;
  await waitFor(db, cost);
  // Written back to back in one synchronous run: nothing else on the connection comes in between.
  const multi = send(db.redis, ['MULTI']);
  const queued = steps.map((step) => send(db.redis, step.command));
  const exec = await send(db.redis, ['EXEC']);
  await multi;
  const rejected = (await Promise.all(queued)).find((r): r is Error => r instanceof Error);
  if (exec instanceof Error) {
    db.budget?.charge(-cost);
    if (isConnectionError(exec)) return unavailable(exec);
    return { status: 400, body: errorBody(rejected && !isConnectionError(rejected) ? rejected.message : exec.message) };
  }
  if (!Array.isArray(exec) || exec.length !== steps.length) {
    return { status: 500, body: errorBody('ERR the transaction ran but its reply was not understood by the local gateway') };
  }
  const entries: string[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if (step.billed) db.bill.command(step.name);
    entries.push(entry(await finish(db, step, exec[i]!), base64));
  }
  return { status: 200, body: `[${entries.join(',')}]` };
}

/**
 * What to send for one command. Scripts run instrumented: EVAL sends the instrumented text; EVALSHA of
 * a known script sends its instrumented SHA1 (in a batch, its text: a NOSCRIPT there could not be
 * retried); SCRIPT LOAD and EXISTS speak of instrumented texts under the client's SHA1s.
 */
function plan(db: Database, raw: string[], readOnly: boolean, batch: boolean): Step {
  const name = raw[0]!.toUpperCase();
  const args = raw.slice(1);
  const refused = refusal(name, args, readOnly);
  const billed = isBilled(name);
  if (refused) return { name, billed: false, refused, command: raw };
  if (SCRIPT_COMMANDS.has(name) && args.length >= 2) {
    const readOnlyScript = name.endsWith('_RO');
    const evalName = readOnlyScript ? 'EVAL_RO' : 'EVAL';
    const shaName = readOnlyScript ? 'EVALSHA_RO' : 'EVALSHA';
    const rest = args.slice(1);
    if (name.startsWith('EVALSHA')) {
      const script = db.scripts.get(args[0]!);
      if (!script) return { name, billed, command: [shaName, args[0]!.length === 40 ? NO_SUCH_SHA : args[0]!, ...rest] };
      return { name, billed, script, effect: 'run', command: batch ? [evalName, script.body, ...rest] : [shaName, script.bodySha, ...rest] };
    }
    const script = db.scripts.prepare(args[0]!);
    const known = !batch && db.scripts.get(script.sha) === script;
    return { name, billed, script, effect: 'run', command: known ? [shaName, script.bodySha, ...rest] : [evalName, script.body, ...rest] };
  }
  if (name === 'SCRIPT' && args.length > 0) {
    const sub = args[0]!.toUpperCase();
    if (sub === 'LOAD' && args.length === 2) {
      const script = db.scripts.prepare(args[1]!);
      return { name, billed, script, effect: 'load', command: ['SCRIPT', 'LOAD', script.body] };
    }
    if (sub === 'EXISTS' && args.length > 1) {
      return { name, billed, command: ['SCRIPT', 'EXISTS', ...args.slice(1).map((sha) => db.scripts.get(sha)?.bodySha ?? NO_SUCH_SHA)] };
    }
    if (sub === 'FLUSH') return { name, billed, effect: 'flush', command: raw };
  }
  return { name, billed, command: raw };
}

/**
 * A single script command's second chance: Redis lost the instrumented script (restart, a SCRIPT FLUSH
 * sent around the gateway), so it is sent in full; or the instrumented text does not compile, so the
 * client's text is compiled for Redis's own message, and if it compiles after all, it runs as sent.
 * Returns the step the reply answers (without its script when the reply is final as it is).
 */
async function retryScript(db: Database, step: Step, error: Error): Promise<[Step, Reply]> {
  const script = step.script!;
  const rest = step.command.slice(2);
  const evalName = step.name.endsWith('_RO') ? 'EVAL_RO' : 'EVAL';
  let failure: Reply = error;
  if (step.effect === 'run' && error.message.startsWith('NOSCRIPT') && step.command[1] === script.bodySha) {
    failure = await send(db.redis, [evalName, script.body, ...rest]);
  }
  if (!(failure instanceof Error) || isConnectionError(failure) || !isCompileError(failure) || !script.instrumented) return [step, failure];
  const plainError = await compileError(db, script);
  if (plainError !== undefined) return [{ name: step.name, billed: step.billed, command: step.command }, plainError];
  console.warn(`upstash-gateway: script ${script.sha} runs uninstrumented (its calls are not billed): ${failure.message}`);
  const plain = db.scripts.runPlain(script);
  const retried: Step = { ...step, script: plain };
  if (step.effect === 'load') return [retried, Buffer.from(plain.bodySha)];
  return [retried, await send(db.redis, [evalName, plain.body, ...rest])];
}

/** A name Redis does not know ran nothing: like the commands Upstash refuses, it is not billed. */
function unknownCommand(reply: Reply): boolean {
  return reply instanceof Error && reply.message.startsWith('ERR unknown command');
}

function isCompileError(error: Error): boolean {
  return error.message.startsWith('ERR Error compiling script');
}

/** Redis's own message for the client's text, or undefined when it compiles. */
async function compileError(db: Database, script: Script): Promise<Error | undefined> {
  const reply = await send(db.redis, ['SCRIPT', 'LOAD', script.plain]);
  return reply instanceof Error ? reply : undefined;
}

/** A reply as the client is answered: a script's unwrapped (its calls billed), a loaded script's SHA1 the client's. */
async function finish(db: Database, step: Step, reply: Reply): Promise<Reply> {
  const script = step.script;
  if (reply instanceof Error) {
    if (!script || isConnectionError(reply)) return reply;
    if (isCompileError(reply) && script.instrumented) return (await compileError(db, script)) ?? new Error(renameInError(script, reply.message));
    return new Error(renameInError(script, reply.message));
  }
  if (step.effect === 'run' && script) {
    db.scripts.remember(script);
    const outcome = outcomeOf(script, reply);
    db.bill.calls(outcome.calls);
    db.budget?.charge(outcome.calls);
    return outcome.error !== undefined ? new Error(outcome.error) : outcome.reply!;
  }
  if (step.effect === 'load' && script) {
    db.scripts.remember(script);
    return Buffer.from(script.sha);
  }
  if (step.effect === 'flush') db.scripts.clear();
  return reply;
}

function entry(reply: Reply, base64: boolean): string {
  return reply instanceof Error ? errorBody(reply.message) : `{"result":${encodeResult(reply, base64)}}`;
}

async function waitFor(db: Database, cost: number): Promise<void> {
  if (!db.budget || cost === 0) return;
  const waited = await db.budget.take(cost);
  if (waited > 0) db.bill.waited(waited);
}

function unavailable(error: Error): Answer {
  return { status: 503, body: errorBody(`Redis is unavailable: ${error.message}`) };
}
