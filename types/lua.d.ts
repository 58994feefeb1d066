/** Lua scripts are bundled as text (esbuild loader, vitest plugin, localstack/register-lua.mjs). */
declare module '*.lua' {
  const source: string;
  export default source;
}
