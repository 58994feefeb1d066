import { createRequire } from 'node:module';
import { defineConfig, type Plugin } from 'vitest/config';

const { luaModule } = createRequire(import.meta.url)('./localstack/lua-source.cjs') as { luaModule: (file: string) => string };

/** Lua scripts are imported as text with their includes expanded, as in the Lambda bundles. */
const luaAsText: Plugin = {
  name: 'lua-as-text',
  transform(_code, id) {
    if (!id.endsWith('.lua')) return undefined;
    return { code: luaModule(id), map: null };
  },
};

// Lambda runs nodejs22.x; the AWS SDK's notice about this machine's Node 20 is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export default defineConfig({
  plugins: [luaAsText],
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // In-process use cases count metrics too: their EMF lines are only printed by a test that asks.
    env: { LOG_LEVEL: 'error', POWERTOOLS_METRICS_DISABLED: 'true' },
  },
});
