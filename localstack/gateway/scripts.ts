/**
 * Lua scripts, instrumented so that the gateway can bill them as Upstash does: the EVAL/EVALSHA itself
 * plus every redis.call and redis.pcall the script makes, counted exactly for each run.
 *
 * Each script is rewritten once, when first seen (EVAL or SCRIPT LOAD): `redis` inside it becomes a
 * local table whose `call` and `pcall` count and then call Redis's own, and the script's body runs
 * under xpcall, so that both its reply and its error come back with the count:
 *
 *   { calls, 1, reply }            the script returned `reply` (nil and false leave it out: nil)
 *   { calls, 0, message, where }   the script raised an error; Redis would have answered
 *                                  "<message> script: <sha>, on <source:line>." (no suffix without `where`)
 *
 * What the client sees is what Redis answers for the original script, to the byte:
 * - the original's lines keep their numbers (the prologue shares the first line, the epilogue follows
 *   the last), so "user_script:<line>" in Lua's own messages is unchanged;
 * - `return <values>` becomes `return select(1, <values>)`, the same values: a `return redis.call(...)`
 *   would otherwise be a tail call into the counting wrapper, which erases the caller's frame and with
 *   it the line Redis reports (the one cost: unbounded tail recursion now has Lua's call depth limit);
 * - the error handler reproduces Redis 7's `__redis__err__handler` (message, then the source and line of
 *   the function that raised, or of its caller when that is a C function) with frames found by
 *   `pcall(error, '', level)` (scripts have no `debug`), skipping the counting wrappers, which live on
 *   the epilogue's line where no line of the script can be;
 * - the reply is nested one level down, and Redis converts a nested Lua value exactly as a top-level one
 *   (the same recursive function), error and status tables included;
 * - the SHA1 the client knows is the original text's; the instrumented text has its own, and Redis's
 *   messages naming it are rewritten;
 * - a script that does not compile is compiled as sent, for Redis's own message; one that compiles as
 *   sent but not instrumented (none is known), or a lone shebang line, runs as sent, billed as one command.
 *
 * Upstash's `#!lua flags=allow-key-locking` (which Redis 7 rejects as an unknown flag) is removed from
 * the shebang before Redis sees the script; the other flags stay.
 */
import { createHash } from 'node:crypto';
import type { Reply } from './reply.js';

export interface Script {
  /** SHA1 of the text the client sent: what EVALSHA and SCRIPT EXISTS name. */
  readonly sha: string;
  /** The text Redis runs, and its SHA1. */
  readonly body: string;
  readonly bodySha: string;
  /** The client's text with Upstash-only shebang flags removed: what Redis would compile as sent. */
  readonly plain: string;
  readonly instrumented: boolean;
}

export interface ScriptOutcome {
  /** redis.call and redis.pcall invocations the run made. */
  readonly calls: number;
  readonly reply?: Reply;
  readonly error?: string;
}

export const NOSCRIPT = 'NOSCRIPT No matching script. Please use EVAL.';

export function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/** The scripts this gateway has loaded, by the client's SHA1 (one database's script cache). */
export class ScriptCache {
  private readonly scripts = new Map<string, Script>();

  get(sha: string): Script | undefined {
    return this.scripts.get(sha.length === 40 ? sha.toLowerCase() : sha);
  }

  /** The script for this text: cached, or instrumented now (and cached by `remember` once Redis has it). */
  prepare(source: string): Script {
    const sha = sha1(source);
    const known = this.scripts.get(sha);
    if (known) return known;
    const plain = withoutUpstashFlags(source);
    const body = instrument(plain) ?? plain;
    return { sha, body, bodySha: sha1(body), plain, instrumented: body !== plain };
  }

  remember(script: Script): void {
    if (this.scripts.get(script.sha) !== script) this.scripts.set(script.sha, script);
  }

  /** The script runs as the client sent it from now on (its instrumented text did not compile). */
  runPlain(script: Script): Script {
    const plain: Script = { ...script, body: script.plain, bodySha: sha1(script.plain), instrumented: false };
    this.scripts.set(script.sha, plain);
    return plain;
  }

  /** SCRIPT FLUSH: this database forgets every script, as Redis does. */
  clear(): void {
    this.scripts.clear();
  }
}

/** A run's reply, taken apart; a plain (uninstrumented) script's reply is its own, with no count. */
export function outcomeOf(script: Script, reply: Reply): ScriptOutcome {
  if (!script.instrumented) return reply instanceof Error ? { calls: 0, error: reply.message } : { calls: 0, reply };
  if (!Array.isArray(reply) || reply.length < 2) {
    return { calls: 0, error: 'ERR the local gateway could not read an instrumented script reply' };
  }
  const calls = Number(reply[0]);
  if (String(reply[1]) === '1') {
    const value = reply[2] ?? null;
    return value instanceof Error ? { calls, error: value.message } : { calls, reply: value };
  }
  const message = text(reply[2]) ?? 'ERR the script raised an error object without an err field';
  const where = text(reply[3]);
  return { calls, error: where ? `${message} script: ${script.sha}, on ${sourceOf(where)}.` : message };
}

/** Redis's messages about the instrumented text name the client's script instead. */
export function renameInError(script: Script, message: string): string {
  return script.bodySha === script.sha ? message : message.split(script.bodySha).join(script.sha);
}

function text(value: Reply | undefined): string | undefined {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'string') return value;
  return undefined;
}

/** Lua's "user_script:12: " (luaL_where) as Redis prints the frame: "@user_script:12". */
function sourceOf(where: string): string {
  if (where === '=[C]:-1') return where;
  const match = /^(.*):(\d+): $/.exec(where);
  if (!match) return where;
  return match[1] === 'user_script' ? `@user_script:${match[2]}` : `${match[1]}:${match[2]}`;
}

/** `#!lua flags=no-writes,allow-key-locking` -> `#!lua flags=no-writes`; `#!lua flags=allow-key-locking` -> `#!lua`. */
export function withoutUpstashFlags(source: string): string {
  if (!source.startsWith('#!')) return source;
  const end = source.indexOf('\n');
  const shebang = end < 0 ? source : source.slice(0, end);
  if (!shebang.includes('allow-key-locking')) return source;
  const kept = shebang.replace(/(\s)flags=(\S*)/, (_match, space: string, list: string) => {
    const flags = list.split(',').filter((flag) => flag !== '' && flag !== 'allow-key-locking');
    return flags.length > 0 ? `${space}flags=${flags.join(',')}` : '';
  });
  return end < 0 ? kept : kept + source.slice(end);
}

const PROLOGUE =
  'local __fcfs_n = 0 local __fcfs_select = select local __fcfs_redis = redis local __fcfs_meta = {__index = __fcfs_redis} ' +
  'local redis = setmetatable({}, __fcfs_meta) local __fcfs_main = function(...) ';

function epilogue(line: number): string {
  const here = `user_script:${line}: `;
  return [
    'end',
    'local __fcfs_call, __fcfs_rpcall, __fcfs_pcall, __fcfs_error, __fcfs_type, __fcfs_tostring = __fcfs_redis.call, __fcfs_redis.pcall, pcall, error, type, tostring',
    'redis.call = function(...) __fcfs_n = __fcfs_n + 1 return __fcfs_call(...) end',
    'redis.pcall = function(...) __fcfs_n = __fcfs_n + 1 return __fcfs_rpcall(...) end',
    "__fcfs_meta.__newindex = function() __fcfs_error('Attempt to modify a readonly table', 2) end",
    'local function __fcfs_handler(e)',
    "local _, w = __fcfs_pcall(__fcfs_error, '', 3)",
    "if w == '' then _, w = __fcfs_pcall(__fcfs_error, '', 4)",
    `if w == '${here}' then _, w = __fcfs_pcall(__fcfs_error, '', 5) end`,
    "if w == '' then w = '=[C]:-1' end end",
    "local m if __fcfs_type(e) == 'table' then m = e.err else m = 'ERR ' .. __fcfs_tostring(e) end",
    "if __fcfs_type(m) == 'number' then m = __fcfs_tostring(m) elseif __fcfs_type(m) ~= 'string' then m = false end",
    'return {m, w} end',
    'local __fcfs_ok, __fcfs_r = xpcall(__fcfs_main, __fcfs_handler)',
    'if __fcfs_ok then return {__fcfs_n, 1, __fcfs_r} end',
    "if __fcfs_type(__fcfs_r) ~= 'table' then __fcfs_r = {false, false} end",
    'return {__fcfs_n, 0, __fcfs_r[1], __fcfs_r[2]}',
  ].join(' ');
}

/**
 * The script's text with the counting prologue on its first line of code and the epilogue on a line of
 * its own after its last. The text Lua compiles starts after a shebang line (Redis keeps the newline).
 */
export function instrument(plain: string): string | undefined {
  const shebangEnd = plain.startsWith('#!') ? plain.indexOf('\n') : -1;
  // A shebang and nothing else: Redis refuses it, in its own words.
  if (plain.startsWith('#!') && shebangEnd < 0) return undefined;
  const shebang = shebangEnd < 0 ? '' : plain.slice(0, shebangEnd + 1);
  const code = withoutTailCalls(plain.slice(shebang.length));
  // What Lua compiles is "\n" + code after a shebang, code otherwise; " \n" so that a trailing "\r"
  // is not paired with our newline into one line break.
  const head = (shebang ? '\n' : '') + PROLOGUE + code;
  return `${shebang}${PROLOGUE}${code} \n${epilogue(lineBreaks(head) + 2)}`;
}

/** Line breaks as Lua 5.1's lexer counts them: "\n", "\r", "\r\n" and "\n\r" are one each. */
function lineBreaks(text: string): number {
  let breaks = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 10 && c !== 13) continue;
    breaks++;
    const next = text.charCodeAt(i + 1);
    if ((next === 10 || next === 13) && next !== c) i++;
  }
  return breaks;
}

interface Token {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** Words and brackets of Lua 5.1 source, strings, numbers and comments skipped (llex.c's rules). */
function tokens(code: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const longBracket = (at: number): number => {
    // "[" "="* "[" -> the level (number of "="), else -1
    let j = at + 1;
    while (code[j] === '=') j++;
    return code[j] === '[' ? j - at - 1 : -1;
  };
  const skipLong = (at: number, level: number): number => {
    const close = `]${'='.repeat(level)}]`;
    const end = code.indexOf(close, at + level + 2);
    return end < 0 ? code.length : end + close.length;
  };
  while (i < code.length) {
    const c = code[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && code[i + 1] === '-') {
      const level = code[i + 2] === '[' ? longBracket(i + 2) : -1;
      if (level >= 0) i = skipLong(i + 2, level);
      else while (i < code.length && code[i] !== '\n' && code[i] !== '\r') i++;
    } else if (c === '[' && longBracket(i) >= 0) {
      const start = i;
      i = skipLong(i, longBracket(i));
      out.push({ text: 'string', start, end: i });
    } else if (c === '"' || c === "'") {
      const start = i++;
      while (i < code.length && code[i] !== c) i += code[i] === '\\' ? 2 : 1;
      i++;
      out.push({ text: 'string', start, end: i });
    } else if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < code.length && /\w/.test(code[i]!)) i++;
      out.push({ text: code.slice(start, i), start, end: i });
    } else if (/\d/.test(c) || (c === '.' && /\d/.test(code[i + 1] ?? ''))) {
      const start = i;
      while (/[\d.]/.test(code[i] ?? '')) i++;
      if (/[eE]/.test(code[i] ?? '')) i += /[+-]/.test(code[i + 1] ?? '') ? 2 : 1;
      while (/\w/.test(code[i] ?? '')) i++;
      out.push({ text: 'number', start, end: i });
    } else {
      out.push({ text: c, start: i, end: i + 1 });
      i++;
    }
  }
  return out;
}

const OPENS_BLOCK = new Set(['function', 'if', 'do', 'repeat']);
const ENDS_RETURN = new Set(['end', 'else', 'elseif', 'until', ';']);

/** Every non-empty `return <explist>` (always a block's last statement) becomes `return __fcfs_select(1, <explist>)`. */
function withoutTailCalls(code: string): string {
  const all = tokens(code);
  const inserts: { at: number; text: string }[] = [];
  for (let i = 0; i < all.length; i++) {
    if (all[i]!.text !== 'return') continue;
    let brackets = 0;
    let blocks = 0;
    let k = i + 1;
    for (; k < all.length; k++) {
      const t = all[k]!.text;
      if (brackets === 0 && blocks === 0 && ENDS_RETURN.has(t)) break;
      if (t === '(' || t === '[' || t === '{') brackets++;
      else if (t === ')' || t === ']' || t === '}') brackets--;
      else if (OPENS_BLOCK.has(t)) blocks++;
      else if (t === 'end' || t === 'until') blocks--;
    }
    if (k === i + 1) continue;
    inserts.push({ at: all[i]!.end, text: ' __fcfs_select(1,' }, { at: all[k - 1]!.end, text: ')' });
  }
  let out = code;
  for (const { at, text } of inserts.sort((a, b) => b.at - a.at)) out = out.slice(0, at) + text + out.slice(at);
  return out;
}
