import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'acorn';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../localstack/processes.js';

/**
 * k6 cannot be installed on the machines this project is built on (no Debian package, no npm package
 * that ships it), so the k6 script is checked against k6's published API types instead: executor
 * options, thresholds, checks and http calls as k6 declares them.
 */
describe('k6/scenarios.js', () => {
  it('type-checks against @types/k6', () => {
    const tsc = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    let output = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', join(PROJECT_ROOT, 'k6', 'tsconfig.json')], { cwd: PROJECT_ROOT, stdio: 'pipe' });
    } catch (error) {
      output = String((error as { stdout?: Buffer }).stdout ?? error);
    }
    expect(output).toBe('');
  }, 60_000);

  // k6 before 0.52 cannot parse object spread, optional catch binding, ?? or ?. (issue 16, item 5):
  // the script keeps to ES2017, which every k6 release since 0.26 parses. acorn (a dependency of the
  // toolchain) refuses anything newer when told ES2017.
  it('is written in syntax k6 before 0.52 parses (ES2017)', () => {
    const source = readFileSync(join(PROJECT_ROOT, 'k6', 'scenarios.js'), 'utf8');
    expect(() => parse(source, { ecmaVersion: 2017, sourceType: 'module' })).not.toThrow();
  });

  it.each([
    ['object spread', 'const a = { ...b };'],
    ['optional catch binding', 'try { f(); } catch { g(); }'],
    ['nullish coalescing', 'const a = b ?? c;'],
    ['optional chaining', 'const a = b?.c;'],
  ])('the ES2017 check refuses %s', (_name, code) => {
    expect(() => parse(code, { ecmaVersion: 2017, sourceType: 'module' })).toThrow(SyntaxError);
  });
});
