/** `npm run reset`: wipe the local stack's state (.data/, or DATA_DIR). Refuses while it is running. */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCommandLine } from './command-line.js';
import { PROJECT_ROOT } from './processes.js';

// It takes no option: anything on the command line is a mistake, refused before anything is removed.
parseCommandLine({ name: 'reset', usage: 'npm run reset (removes .data/, or DATA_DIR; takes no options)', refusedExitCode: 2 }, {});

const dataDir = resolve(process.env.DATA_DIR ?? join(PROJECT_ROOT, '.data'));
const pidFile = join(dataDir, 'stack.pids');
const running = existsSync(pidFile)
  ? readFileSync(pidFile, 'utf8')
      .split(/\s+/)
      .filter(Boolean)
      .some((pid) => {
        try {
          process.kill(Number(pid), 0);
          return true;
        } catch {
          return false;
        }
      })
  : false;
if (running) {
  console.error('fcfs-coupons: the local stack is running; stop it (Ctrl-C) before `npm run reset`.');
  process.exit(1);
}
// Only what npm start writes is wiped: a DATA_DIR pointed at some other folder is left alone. Shard i
// (from 0) after the first keeps its redis-server's files in redis-<i + 1> (localstack/stack.ts), and
// shards records their number (localstack/start.ts).
const OURS = new Set(['redis', 'dynamodb', 'logs', 'stack.pids', 'reconcile-needed', 'shards']);
const ours = (entry: string) => OURS.has(entry) || /^redis-\d+$/.test(entry);
if (existsSync(dataDir) && !statSync(dataDir).isDirectory()) {
  console.error(`fcfs-coupons: ${dataDir} is not a directory; not removing it. Check DATA_DIR.`);
  process.exit(1);
}
const foreign = existsSync(dataDir) ? readdirSync(dataDir).filter((entry) => !ours(entry)) : [];
if (foreign.length > 0) {
  console.error(
    `fcfs-coupons: ${dataDir} holds more than the local stack's state (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}); not removing it. Check DATA_DIR.`,
  );
  process.exit(1);
}
rmSync(dataDir, { recursive: true, force: true });
console.log(`Removed ${dataDir}: the next \`npm start\` begins with empty Redis and DynamoDB.`);
