/**
 * Which commands Upstash serves over REST, which it refuses, which a read-only token may run and which
 * are not billed, as Upstash documents them (sources in docs/local-upstash.md):
 *
 * - served: the "Supported Commands" of Upstash's compatibility page, less what its REST page excludes
 *   (blocking list and sorted-set pops, blocking XREAD/XREADGROUP, connection commands but PING and ECHO,
 *   MULTI/EXEC/WATCH, SUBSCRIBE and MONITOR as commands: those two are streamed on their own endpoints);
 * - refused with Upstash's "Command is not available" (HTTP 400): every other command Redis knows;
 * - Upstash-only commands (JSON.*, the array type, vectors) are Upstash's own: the gateway says it does
 *   not emulate them rather than pretending Upstash refuses them;
 * - names neither list knows reach Redis, which answers "ERR unknown command" (or runs a command newer
 *   than these lists, which a newer local redis-server may have).
 */

const SERVED = new Set(
  [
    // String
    'APPEND DECR DECRBY GET GETDEL GETEX GETRANGE GETSET INCR INCRBY INCRBYFLOAT MGET MSET MSETNX PSETEX SET SETEX SETNX SETRANGE STRLEN',
    // Bitmap
    'BITCOUNT BITFIELD BITFIELD_RO BITOP BITPOS GETBIT SETBIT',
    // Hash (HEXPIRE and the other field-expiry commands are newer than Redis 7.0: a local 7.0 says unknown)
    'HDEL HEXISTS HEXPIRE HEXPIREAT HEXPIRETIME HGET HGETALL HGETDEL HGETEX HINCRBY HINCRBYFLOAT HKEYS HLEN HMGET HMSET',
    'HPERSIST HPEXPIRE HPEXPIREAT HPEXPIRETIME HPTTL HRANDFIELD HSCAN HSET HSETEX HSETNX HSTRLEN HTTL HVALS',
    // List, without the blocking pops
    'LINDEX LINSERT LLEN LMOVE LMPOP LPOP LPOS LPUSH LPUSHX LRANGE LREM LSET LTRIM RPOP RPOPLPUSH RPUSH RPUSHX',
    // Set
    'SADD SCARD SDIFF SDIFFSTORE SINTER SINTERCARD SINTERSTORE SISMEMBER SMEMBERS SMISMEMBER SMOVE SPOP SRANDMEMBER SREM SSCAN SUNION SUNIONSTORE',
    // Sorted set, without the blocking pops
    'ZADD ZCARD ZCOUNT ZDIFF ZDIFFSTORE ZINCRBY ZINTER ZINTERCARD ZINTERSTORE ZLEXCOUNT ZMPOP ZMSCORE ZPOPMAX ZPOPMIN ZRANDMEMBER',
    'ZRANGE ZRANGEBYLEX ZRANGEBYSCORE ZRANGESTORE ZRANK ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE',
    'ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE ZUNION ZUNIONSTORE',
    // Geo, HyperLogLog
    'GEOADD GEODIST GEOHASH GEOPOS GEORADIUS GEORADIUS_RO GEORADIUSBYMEMBER GEORADIUSBYMEMBER_RO GEOSEARCH GEOSEARCHSTORE',
    'PFADD PFCOUNT PFMERGE',
    // Generic
    'COPY DEL DUMP EXISTS EXPIRE EXPIREAT EXPIRETIME KEYS PERSIST PEXPIRE PEXPIREAT PEXPIRETIME PTTL RANDOMKEY RENAME RENAMENX',
    'RESTORE SCAN TOUCH TTL TYPE UNLINK',
    // Streams (XREAD and XREADGROUP without BLOCK: see refusal())
    'XACK XACKDEL XADD XAUTOCLAIM XCLAIM XDEL XDELEX XGROUP XINFO XLEN XPENDING XRANGE XREAD XREADGROUP XREVRANGE XTRIM',
    // Scripting and functions (subcommands checked in refusal())
    'EVAL EVAL_RO EVALSHA EVALSHA_RO SCRIPT FCALL FCALL_RO FUNCTION',
    // Pub/Sub as commands, connection, server
    'PUBLISH PUBSUB PING ECHO CLIENT ACL DBSIZE FLUSHALL FLUSHDB TIME INFO COMMAND CONFIG',
  ]
    .join(' ')
    .split(' '),
);

/** Subcommands served of the commands above that have some; the others are refused. */
const SERVED_SUBCOMMANDS: Record<string, Set<string>> = {
  SCRIPT: new Set(['EXISTS', 'FLUSH', 'LOAD']),
  FUNCTION: new Set(['DELETE', 'FLUSH', 'KILL', 'LIST', 'LOAD', 'STATS']),
  CLIENT: new Set(['GETNAME', 'ID', 'INFO', 'LIST', 'SETINFO', 'SETNAME']),
  // Operational reads clients send on connecting; nothing may reconfigure the server.
  CONFIG: new Set(['GET']),
};

/** Every other command of Redis 7.0's table (COMMAND LIST), and WAITAOF of 7.2: refused as Upstash refuses them. */
const REFUSED = new Set(
  [
    'BLMOVE BLMPOP BLPOP BRPOP BRPOPLPUSH BZMPOP BZPOPMAX BZPOPMIN',
    'SUBSCRIBE PSUBSCRIBE SSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE SUNSUBSCRIBE SPUBLISH MONITOR',
    'MULTI EXEC DISCARD WATCH UNWATCH',
    'AUTH HELLO SELECT QUIT RESET READONLY READWRITE ASKING',
    'BGREWRITEAOF BGSAVE SAVE LASTSAVE SHUTDOWN DEBUG FAILOVER REPLICAOF SLAVEOF ROLE SYNC PSYNC REPLCONF',
    'CLUSTER MODULE MIGRATE MOVE SWAPDB RESTORE-ASKING WAIT WAITAOF LATENCY MEMORY SLOWLOG OBJECT',
    'LCS SORT SORT_RO SUBSTR XSETID LOLWUT PFDEBUG PFSELFTEST',
  ]
    .join(' ')
    .split(' '),
);

/** Upstash's own data types and modules, which a plain redis-server does not have. */
const UPSTASH_ONLY = /^(JSON\.|VECTOR\.|SEARCH\.|AR(COUNT|DEL|DELRANGE|GET|GETRANGE|GREP|INFO|INSERT|LASTITEMS|LEN|MGET|MSET|NEXT|RING|SEEK|SET)$)/;

/**
 * Redis's @read category less @dangerous, less SCAN and KEYS (Upstash: "Some powerful read commands
 * (e.g. SCAN, KEYS) are also restricted with read only token"), plus the read-only script variants and
 * PING, ECHO, TIME. Everything else is refused to a read-only token with Upstash's NOPERM error.
 */
const READ_ONLY = new Set(
  [
    'BITCOUNT BITFIELD_RO BITPOS DBSIZE DUMP EXISTS EXPIRETIME GEODIST GEOHASH GEOPOS GEORADIUS_RO GEORADIUSBYMEMBER_RO',
    'GEOSEARCH GET GETBIT GETRANGE HEXISTS HGET HGETALL HKEYS HLEN HMGET HRANDFIELD HSCAN HSTRLEN HVALS HTTL HPTTL',
    'HEXPIRETIME HPEXPIRETIME LINDEX LLEN LPOS LRANGE MGET PEXPIRETIME PFCOUNT PTTL RANDOMKEY SCARD SDIFF SINTER',
    'SINTERCARD SISMEMBER SMEMBERS SMISMEMBER SRANDMEMBER SSCAN STRLEN SUNION TOUCH TTL TYPE XINFO XLEN XPENDING',
    'XRANGE XREAD XREVRANGE ZCARD ZCOUNT ZDIFF ZINTER ZINTERCARD ZLEXCOUNT ZMSCORE ZRANDMEMBER ZRANGE ZRANGEBYLEX',
    'ZRANGEBYSCORE ZRANK ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE ZUNION',
    'EVAL_RO EVALSHA_RO FCALL_RO PING ECHO TIME',
  ]
    .join(' ')
    .split(' '),
);

/** "Operational commands like AUTH, HELLO, SELECT, COMMAND, CONFIG, INFO, PING, RESET, QUIT will not be charged." */
const NOT_BILLED = new Set(['AUTH', 'HELLO', 'SELECT', 'COMMAND', 'CONFIG', 'INFO', 'PING', 'RESET', 'QUIT']);

export const SCRIPT_COMMANDS = new Set(['EVAL', 'EVAL_RO', 'EVALSHA', 'EVALSHA_RO']);

export interface Refusal {
  readonly status: number;
  readonly error: string;
}

/** Upstash's words for a command it does not serve (as its REST API answers, HTTP 400). */
export function notAvailable(name: string): string {
  return `ERR Command is not available: '${name}'. See https://upstash.com/docs/redis/overall/rediscompatibility for details`;
}

/** Upstash's words for a command the token may not run (Redis 6.2's ACL text, which Upstash answers). */
export function noPermission(name: string): string {
  return `NOPERM this user has no permissions to run the '${name.toLowerCase()}' command or its subcommand`;
}

/**
 * Why a command is not run, or undefined when it may be. `name` is the command's name in upper case;
 * `args` are its arguments (after the name).
 */
export function refusal(name: string, args: readonly string[], readOnlyToken: boolean): Refusal | undefined {
  if (readOnlyToken && !READ_ONLY.has(name)) return { status: 400, error: noPermission(name) };
  if (SERVED.has(name)) {
    const subcommands = SERVED_SUBCOMMANDS[name];
    if (subcommands && args.length > 0 && !subcommands.has(args[0]!.toUpperCase())) {
      return { status: 400, error: notAvailable(`${name} ${args[0]!.toUpperCase()}`) };
    }
    if ((name === 'XREAD' || name === 'XREADGROUP') && blocks(args, name === 'XREADGROUP' ? 3 : 0)) {
      return { status: 400, error: notAvailable(`${name} BLOCK`) };
    }
    return undefined;
  }
  if (REFUSED.has(name)) return { status: 400, error: notAvailable(name) };
  if (UPSTASH_ONLY.test(name)) {
    return { status: 400, error: `ERR ${name} is an Upstash-only command the local gateway does not emulate (docs/local-upstash.md)` };
  }
  return undefined;
}

export function isBilled(name: string): boolean {
  return !NOT_BILLED.has(name);
}

/** XREAD [COUNT n] [BLOCK ms] STREAMS ...; XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS ... */
function blocks(args: readonly string[], from: number): boolean {
  for (let i = from; i < args.length; i++) {
    const option = args[i]!.toUpperCase();
    if (option === 'BLOCK') return true;
    if (option === 'STREAMS') return false;
    if (option === 'COUNT') i++;
  }
  return false;
}
