import { accessSync, constants, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { PROJECT_ROOT } from '../../localstack/processes.js';

/** Where browser tests keep their screenshots (kept by CI as artifacts; ignored by git). */
export const ARTIFACTS_DIR = join(PROJECT_ROOT, 'test-artifacts');

/** Debian's chromium (or chromium-browser) on PATH; playwright-core never downloads a browser here. */
export function chromiumPath(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  throw new Error('Chromium is missing: install it with `apt-get install chromium` (Debian/Ubuntu); .ci/run does.');
}

export async function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}
