/**
 * Starting and stopping the local stand-ins for the cloud primitives: redis-server, DynamoDB Local and
 * the Upstash REST gateway. Used by `npm start` (localstack/start.ts) and by the test setup, which start
 * their own processes on their own ports and never rely on a service that happens to be running.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const EMULATOR_DIR = join(PROJECT_ROOT, 'node_modules', 'amplify-dynamodb-simulator', 'emulator');

export class StackError extends Error {
  override readonly name = 'StackError';
}

/** One clear sentence when a binary the local stack needs is missing. */
export function requireBinary(name: 'redis-server' | 'java'): void {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
  if (found) return;
  const how =
    name === 'java'
      ? 'Java 17 is needed for DynamoDB Local: install it (Debian/Ubuntu: sudo apt-get install -y openjdk-17-jdk-headless; macOS: brew install openjdk@17) and try again.'
      : 'redis-server is needed for the local Redis: install it (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis) and try again.';
  throw new StackError(`${name} was not found on PATH. ${how}`);
}

/** Fail with one clear sentence when a port is taken, naming the variable that moves it. */
export async function assertPortFree(port: number, what: string, variable: string): Promise<void> {
  const free = await new Promise<boolean>((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
  if (!free) throw new StackError(`Port ${port} (${what}) is already in use: stop what holds it or set ${variable} to a free port.`);
}

const handedOut = new Set<number>();

/**
 * A port that is free now, picked at random below Linux's ephemeral range (32768+), so that outgoing
 * connections (which take ephemeral ports) cannot grab it before a server binds it. Test workers that
 * run side by side draw from disjoint ranges (VITEST_POOL_ID), and one process never hands out the same
 * port twice, so two suites cannot be given one port between the check and the bind.
 */
export async function freePort(): Promise<number> {
  const slot = Number(process.env.VITEST_POOL_ID ?? 0) % 6;
  const base = 20_000 + slot * 2_000;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = base + Math.floor(Math.random() * 2_000);
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((done) => {
      const server = createServer();
      server.once('error', () => done(false));
      server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new StackError(`found no free port between ${base} and ${base + 2_000}`);
}

export async function waitForPort(port: number, what: string, child: ChildProcess | undefined, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) {
      throw new StackError(`${what} exited with code ${child.exitCode} before listening on port ${port}; see its log.`);
    }
    const open = await new Promise<boolean>((done) => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => done(false));
      socket.connect(port, '127.0.0.1');
    });
    if (open) {
      // Another process on the port would answer too: give our child a moment to fail its bind.
      await new Promise((r) => setTimeout(r, 200));
      if (child && child.exitCode !== null) {
        throw new StackError(`${what} exited with code ${child.exitCode}: port ${port} is held by another process.`);
      }
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new StackError(`${what} did not listen on port ${port} within ${timeoutMs / 1000} s; see its log.`);
}

export interface Spawned {
  readonly child: ChildProcess;
  readonly name: string;
  readonly logFile: string | undefined;
}

/** Spawn a child whose output goes to a log file (or is discarded). */
export function spawnLogged(
  name: string,
  command: string,
  args: string[],
  options: { logFile?: string; env?: NodeJS.ProcessEnv; cwd?: string; inherit?: boolean },
): Spawned {
  let stdio: ['ignore', 'pipe' | 'ignore' | 'inherit', 'pipe' | 'ignore' | 'inherit'] = ['ignore', 'ignore', 'ignore'];
  if (options.inherit) stdio = ['ignore', 'inherit', 'inherit'];
  else if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    stdio = ['ignore', 'pipe', 'pipe'];
  }
  const child = spawn(command, args, { stdio, env: options.env ?? process.env, cwd: options.cwd ?? PROJECT_ROOT });
  if (options.logFile) {
    const log = createWriteStream(options.logFile, { flags: 'a' });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
  }
  return { child, name, logFile: options.logFile };
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the child is gone. */
export async function stopChild(spawned: Spawned, graceMs = 5_000): Promise<void> {
  const { child } = spawned;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A child that never became ready is stopped, not left running (and holding its port) for no one. */
async function readyOrStopped(spawned: Spawned, ready: () => Promise<void>): Promise<void> {
  try {
    await ready();
  } catch (error) {
    await stopChild(spawned);
    throw error;
  }
}

export interface RedisOptions {
  readonly port: number;
  readonly dataDir: string;
  readonly logFile?: string;
  /** Append-only file with fsync on every write: what Redis acknowledged survives kill -9. */
  readonly durable?: boolean;
}

export async function startRedis(options: RedisOptions): Promise<Spawned> {
  requireBinary('redis-server');
  mkdirSync(options.dataDir, { recursive: true });
  const durable = options.durable ?? true;
  const spawned = spawnLogged(
    'redis-server',
    'redis-server',
    [
      '--port',
      String(options.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      options.dataDir,
      '--save',
      '',
      '--appendonly',
      durable ? 'yes' : 'no',
      // fsync before acknowledging: an admission Redis answered is on disk, even if the machine dies.
      '--appendfsync',
      'always',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
      '--loglevel',
      'warning',
    ],
    { logFile: options.logFile },
  );
  await readyOrStopped(spawned, () => waitForPort(options.port, 'redis-server', spawned.child, 30_000));
  return spawned;
}

export interface DynamoOptions {
  readonly port: number;
  /** Folder of the database file; undefined keeps everything in memory. */
  readonly dataDir: string | undefined;
  readonly logFile?: string;
}

/**
 * DynamoDB Local (the jar shipped inside the npm package amplify-dynamodb-simulator), -sharedDb, bound to
 * 127.0.0.1 by localstack/dynamodb/LoopbackDynamoDBLocal.java. A Java without the compiler module (a
 * bare JRE) cannot run that launcher: the jar is then started directly and listens on all interfaces,
 * which is said loudly.
 */
export async function startDynamo(options: DynamoOptions): Promise<Spawned> {
  requireBinary('java');
  const storage = options.dataDir ? ['-dbPath', options.dataDir] : ['-inMemory'];
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const common = ['-sharedDb', ...storage, '-port', String(options.port), '-disableTelemetry'];
  const libPath = `-Djava.library.path=${join(EMULATOR_DIR, 'DynamoDBLocal_lib')}`;
  const launcher = join(PROJECT_ROOT, 'localstack', 'dynamodb', 'LoopbackDynamoDBLocal.java');
  const compiler = hasJavaCompiler();
  if (!compiler) {
    console.warn(
      'WARNING: this Java has no compiler module, so DynamoDB Local listens on ALL interfaces, not only 127.0.0.1. Install a JDK (openjdk-17-jdk-headless) to keep it local.',
    );
  }
  const args = compiler
    ? [libPath, '-Xss1m', '-cp', `${join(EMULATOR_DIR, 'DynamoDBLocal.jar')}:${join(EMULATOR_DIR, 'DynamoDBLocal_lib', '*')}`, launcher, ...common]
    : [libPath, '-jar', join(EMULATOR_DIR, 'DynamoDBLocal.jar'), ...common];
  const spawned = spawnLogged('dynamodb-local', 'java', args, { logFile: options.logFile });
  await readyOrStopped(spawned, () => waitForPort(options.port, 'DynamoDB Local', spawned.child, 90_000));
  return spawned;
}

let compilerPresent: boolean | undefined;
function hasJavaCompiler(): boolean {
  compilerPresent ??= /jdk\.compiler/.test(spawnSync('java', ['--list-modules'], { encoding: 'utf8' }).stdout ?? '');
  return compilerPresent;
}
