// Lets plain Node (with tsx) import the project's .lua files as text, as esbuild's text loader does
// in the Lambda bundles: node --import tsx --import ./localstack/lua-loader.mjs some-script.ts
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
      import { readFile } from 'node:fs/promises';
      export async function load(url, context, nextLoad) {
        if (!url.endsWith('.lua')) return nextLoad(url, context);
        const source = await readFile(new URL(url), 'utf8');
        return { format: 'module', source: 'export default ' + JSON.stringify(source) + ';', shortCircuit: true };
      }
    `),
  import.meta.url,
);
