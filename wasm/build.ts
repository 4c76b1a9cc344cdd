// Compiles wasm/assembly into build/fulcrum.wasm when a source is newer than the module.
// Run with `bun wasm/build.ts` (npm scripts do); `--force` rebuilds regardless.
import { readdirSync, statSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";
import { DIR_FIXED_END, CONN_OFF } from "./assembly/layout.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const srcDir = `${root}wasm/assembly`;
const out = `${root}build/fulcrum.wasm`;

function mtime(path: string): number {
  try { return statSync(path).mtimeMs; } catch { return 0; }
}

const newest = Math.max(...readdirSync(srcDir).map((f) => mtime(`${srcDir}/${f}`)), mtime(import.meta.filename ?? ""));
if (!process.argv.includes("--force") && mtime(out) > newest) process.exit(0);

mkdirSync(`${root}build`, { recursive: true });
// The tables own [0, DIR_FIXED_END); AssemblyScript's own data goes above, in one more page
// (up to CONN_OFF). The director's connection table follows: the data plane grows the memory to
// its configured size once, before making views (src/l4/director/memory.ts), hence the maximum.
const pages = CONN_OFF / 65536;
const maxPages = 65536;
const { error, stderr } = await asc.main([
  `${srcDir}/index.ts`, "-O3", "--runtime", "stub", "--noAssert",
  "--memoryBase", String(DIR_FIXED_END), "--initialMemory", String(pages), "--maximumMemory", String(maxPages),
  "-o", out,
]);
if (error) {
  console.error(stderr.toString());
  process.exit(1);
}
console.log(`wasm: built ${out.slice(root.length)}`);
