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

/**
 * The test tiers (docs/testing.md). `npm test` runs them all; `npm run test:unit` is the fast loop.
 * - unit: no process of its own, no Redis, no Java: pure functions and in-process fakes only.
 * - e2e: the functions under serverless offline (`*.e2e.test.ts`).
 * - tooling: the command lines, the bench, k6, the packaged template.
 * - integration: everything else, against a real redis-server, the Upstash gateway and DynamoDB Local.
 * A new test file is integration unless listed: the tier with services is the safe default.
 */
const UNIT = [
  'test/circuit-breaker.test.ts',
  'test/codec.test.ts',
  'test/config.test.ts',
  'test/docs-links.test.ts',
  'test/faults-mapping.test.ts',
  'test/ids.test.ts',
  'test/operations-docs.test.ts',
  'test/item-size.test.ts',
  'test/secrets-emulator.test.ts',
];
const TOOLING = [
  'test/bench-cpu.test.ts',
  'test/bench-load.test.ts',
  'test/cli.test.ts',
  'test/k6.test.ts',
  'test/local-stack.test.ts',
  'test/localstack-stage.test.ts',
  'test/package.test.ts',
  'test/settings-check.test.ts',
];
const E2E = ['test/**/*.e2e.test.ts'];
const WITH_SERVICES = ['test/support/global-setup.ts'];

export default defineConfig({
  plugins: [luaAsText],
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // In-process use cases count metrics too: their EMF lines are only printed by a test that asks.
    env: { LOG_LEVEL: 'error', POWERTOOLS_METRICS_DISABLED: 'true' },
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: [...UNIT, ...TOOLING, ...E2E], globalSetup: WITH_SERVICES } },
      { extends: true, test: { name: 'e2e', include: E2E, globalSetup: WITH_SERVICES } },
      { extends: true, test: { name: 'tooling', include: TOOLING, globalSetup: WITH_SERVICES } },
    ],
  },
});
