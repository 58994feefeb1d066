import { defineConfig, type Plugin } from 'vitest/config';

/** Lua scripts are imported as text, as esbuild's text loader does for the Lambda bundles. */
const luaAsText: Plugin = {
  name: 'lua-as-text',
  transform(code, id) {
    if (!id.endsWith('.lua')) return undefined;
    return { code: `export default ${JSON.stringify(code)};`, map: null };
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
    env: { LOG_LEVEL: 'error' },
  },
});
