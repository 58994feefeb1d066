import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
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
});
