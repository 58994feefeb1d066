// Lets plain Node (with tsx) import the project's .lua files as text, expanded as in the Lambda bundles
// (localstack/lua-source.cjs): node --import tsx --import ./localstack/lua-loader.mjs some-script.ts
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
      import { createRequire } from 'node:module';
      import { fileURLToPath } from 'node:url';
      const { luaModule } = createRequire(${JSON.stringify(import.meta.url)})('./lua-source.cjs');
      export async function load(url, context, nextLoad) {
        if (!url.endsWith('.lua')) return nextLoad(url, context);
        return { format: 'module', source: luaModule(fileURLToPath(url)), shortCircuit: true };
      }
    `),
  import.meta.url,
);
