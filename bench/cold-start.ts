/**
 * `npm run bench:cold-start [-- --reference <git revision>] [--rounds n]`: what a new container of the
 * issue handler pays before its first answer, side by side in one run: the bundle of a reference
 * revision (default: a22d9c3, before the admission path dropped the AWS SDK) and of the working tree,
 * both built as serverless.yml builds them, each imported in a fresh Node process `rounds` times,
 * alternating. Prints bytes and the median and range of import times; the bytes are exact, the times
 * are this machine's (compare them within one run).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { parseCommandLine } from '../localstack/command-line.js';
import { PROJECT_ROOT } from '../localstack/processes.js';

const values = parseCommandLine(
  { name: 'bench:cold-start', usage: 'npm run bench:cold-start [-- --reference <git revision>] [--rounds n]', refusedExitCode: 2 },
  { reference: { type: 'string', default: 'a22d9c3' }, rounds: { type: 'string', default: '15' } },
);
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 200) {
  console.error('bench:cold-start: --rounds must be a whole number from 1 to 200.');
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'fcfs-cold-start-'));
try {
  const referenceRoot = join(work, 'reference');
  execFileSync('git', ['-C', PROJECT_ROOT, 'worktree', 'add', '--detach', referenceRoot, String(values.reference)], { stdio: 'ignore' });
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(referenceRoot, 'node_modules'));
  const bundles = {
    reference: await bundle(referenceRoot, join(work, 'reference.mjs')),
    current: await bundle(PROJECT_ROOT, join(work, 'current.mjs')),
  };
  const times: Record<keyof typeof bundles, number[]> = { reference: [], current: [] };
  for (let round = 0; round < rounds; round++) {
    for (const name of round % 2 === 0 ? (['reference', 'current'] as const) : (['current', 'reference'] as const)) {
      times[name].push(importMs(bundles[name].file));
    }
  }
  const rows = (Object.keys(bundles) as (keyof typeof bundles)[]).map((name) => {
    const sorted = [...times[name]].sort((a, b) => a - b);
    return {
      bundle: name,
      bytes: bundles[name].bytes,
      import_ms_median: round1(sorted[Math.floor(sorted.length / 2)]!),
      import_ms_min: round1(sorted[0]!),
      import_ms_max: round1(sorted.at(-1)!),
    };
  });
  console.log(`issue handler, reference ${values.reference} vs working tree, ${rounds} imports each, alternating, one fresh process per import`);
  console.table(rows);
  const [reference, current] = rows as [(typeof rows)[number], (typeof rows)[number]];
  console.log(
    JSON.stringify({
      reference: values.reference,
      rounds,
      rows,
      bytes_ratio: round1((current.bytes / reference.bytes) * 100) / 100,
      import_ratio: Math.round((current.import_ms_median / reference.import_ms_median) * 100) / 100,
    }),
  );
} finally {
  spawnSync('git', ['-C', PROJECT_ROOT, 'worktree', 'remove', '--force', join(work, 'reference')], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}

/** The issue handler as serverless.yml's esbuild settings build it (ESM, minified, node20, Lua as text). */
async function bundle(root: string, file: string): Promise<{ file: string; bytes: number }> {
  const plugins = createRequire(join(root, 'package.json'))(join(root, 'localstack', 'esbuild-plugins.cjs')) as { name: string }[];
  const result = await build({
    entryPoints: [join(root, 'functions', 'issue.ts')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    write: false,
    outfile: file,
    // The reference revision loaded Lua with esbuild's text loader; the working tree with its plugin.
    loader: { '.lua': 'text' },
    plugins: plugins.filter((p) => p.name === 'lua-scripts') as never[],
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
  const contents = result.outputFiles[0]!.contents;
  writeFileSync(file, contents);
  writeFileSync(join(work, 'package.json'), '{"type":"module"}\n');
  return { file, bytes: contents.length };
}

/** Milliseconds to import the bundle in a fresh Node process (its own measurement, not the process start). */
function importMs(file: string): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(file)}); console.log(performance.now() - t);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  if (child.status !== 0) throw new Error(`importing ${file} failed: ${child.stderr}`);
  return Number(child.stdout.trim());
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
