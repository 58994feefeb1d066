/**
 * esbuild plugins for serverless-esbuild (custom.esbuild.plugins in serverless.yml and
 * bench/serverless.yml).
 *
 * lua-scripts: see below.
 *
 * module-scope-package-json: writes {"type":"module"} as package.json next to the built handlers.
 * serverless offline's in-process runner resolves the handler module again on every invocation: it
 * walks up from the handler's folder to the nearest package.json and parses it, to learn whether .js
 * files are ES modules. With no package.json in the build folder, that walk reached the project's own
 * package.json, read and parsed once per request. With this file it ends in the first folder (what it
 * saves: docs/decisions/0012). The bundles are .mjs, ES modules either way; Lambda itself never reads the file.
 */
const { mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { luaModule } = require('./lua-source.cjs');

module.exports = [
  // lua-scripts: a .lua import is its source with its includes expanded (lua-source.cjs), as text.
  {
    name: 'lua-scripts',
    setup(build) {
      build.onLoad({ filter: /\.lua$/ }, (args) => ({ contents: luaModule(args.path), loader: 'js' }));
    },
  },
  {
    name: 'module-scope-package-json',
    setup(build) {
      build.onEnd((result) => {
        const outdir = build.initialOptions.outdir;
        if (result.errors.length > 0 || !outdir) return;
        mkdirSync(outdir, { recursive: true });
        writeFileSync(join(outdir, 'package.json'), '{"type":"module"}\n');
      });
    },
  },
];
