// Compiles wasm/assembly into build/fulcrum.wasm when a source is newer than the module.
// Run with `bun wasm/build.ts` (npm scripts do); `--force` rebuilds regardless.
import { readdirSync, statSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";
import { DATA_OFF, INITIAL_MEMORY } from "./assembly/layout.ts";

const MAX_MEMORY_PAGES = 65536; // 4 GiB: what a wasm32 memory can address

const root = fileURLToPath(new URL("..", import.meta.url));
const srcDir = `${root}wasm/assembly`;
const out = `${root}build/fulcrum.wasm`;

function mtime(path: string): number {
  try { return statSync(path).mtimeMs; } catch { return 0; }
}

const newest = Math.max(...readdirSync(srcDir).map((f) => mtime(`${srcDir}/${f}`)), mtime(import.meta.filename ?? ""));
if (!process.argv.includes("--force") && mtime(out) > newest) process.exit(0);

mkdirSync(`${root}build`, { recursive: true });
// AssemblyScript's data sits at DATA_OFF, below the table heap; the memory starts small and the
// data plane grows it up to HEAP_END as tables are made.
const { error, stderr } = await asc.main([
  `${srcDir}/index.ts`, "-O3", "--runtime", "stub", "--noAssert",
  "--memoryBase", String(DATA_OFF), "--initialMemory", String(INITIAL_MEMORY / 65536),
  // The maximum leaves room for the packet director's connection table above the heap.
  "--maximumMemory", String(MAX_MEMORY_PAGES),
  "-o", out,
]);
if (error) {
  console.error(stderr.toString());
  process.exit(1);
}
console.log(`wasm: built ${out.slice(root.length)}`);
