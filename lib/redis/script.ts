import { createHash } from 'node:crypto';

/** The narrow slice of @upstash/redis this system needs to run scripts. */
export interface ScriptClient {
  evalsha(sha1: string, keys: string[], args: (string | number)[]): Promise<unknown>;
  eval(script: string, keys: string[], args: (string | number)[]): Promise<unknown>;
  evalshaRo(sha1: string, keys: string[], args: (string | number)[]): Promise<unknown>;
  evalRo(script: string, keys: string[], args: (string | number)[]): Promise<unknown>;
}

/**
 * One Lua file, run by SHA1 (one EVALSHA round trip). When Redis has lost its script cache (restart,
 * failover, SCRIPT FLUSH) the reply is NOSCRIPT and the script is sent once in full with EVAL, which
 * also caches it again; callers never see NOSCRIPT.
 */
export class LuaScript {
  readonly sha1: string;

  constructor(
    readonly name: string,
    readonly source: string,
    readonly readOnly = false,
  ) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }

  async run(client: ScriptClient, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return this.readOnly ? await client.evalshaRo(this.sha1, keys, args) : await client.evalsha(this.sha1, keys, args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return this.readOnly ? await client.evalRo(this.source, keys, args) : await client.eval(this.source, keys, args);
    }
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
