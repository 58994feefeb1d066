/**
 * How every loader reads a Lua script: the esbuild plugin of the Lambda bundles, vitest's transform and
 * the tsx loader of the tools all call expandLua, so the text Redis runs (and its SHA1) is the same
 * everywhere. A line `--@include <name>` is replaced by lib/redis/scripts/includes/<name>.lua, once per
 * script (fragments define local functions; Lua has no modules inside Redis).
 */
const { readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

const INCLUDE = /^--@include ([a-z][a-z0-9-]*)\s*$/gm;

function expandLua(source, file) {
  const includes = join(dirname(file), 'includes');
  const seen = new Set();
  return source.replace(INCLUDE, (_line, name) => {
    if (seen.has(name)) return '';
    seen.add(name);
    const fragment = readFileSync(join(includes, `${name}.lua`), 'utf8').trimEnd();
    if (INCLUDE.test(fragment)) throw new Error(`${name}.lua: an include may not include another`);
    INCLUDE.lastIndex = 0;
    return fragment;
  });
}

/** The ES module a .lua file becomes: its expanded source as the default export. */
function luaModule(file) {
  return `export default ${JSON.stringify(expandLua(readFileSync(file, 'utf8'), file))};`;
}

module.exports = { expandLua, luaModule };
