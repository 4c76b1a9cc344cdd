// The HPACK Huffman decoder: WASM kernel against its TS twin, on a short header value (as most
// are), a 200-byte one (a user agent, a cookie) and a 4 KiB one. Reports ns per decoded string and
// the faster; src/http2/huffman-kernel.ts defaults to the winner. `bun bench/huffman.bench.ts`.
import { Bench } from "tinybench";
import { runtime } from "../src/runtime/index.ts";
import { huffmanEncodeString, huffmanStringLength } from "../src/http2/huffman.ts";
import { tsHuffman, wasmHuffman } from "../src/http2/huffman-kernel.ts";

const LOOP = 1000;
const TIME = Number(runtime.env("BENCH_TIME_MS") ?? 300);
const wasm = wasmHuffman(await runtime.wasmBytes());

function encoded(text: string): Uint8Array {
  const out = new Uint8Array(huffmanStringLength(text));
  huffmanEncodeString(text, out, 0);
  return out;
}

const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 ";
const cases: [string, Uint8Array][] = [
  ["16 B", encoded("www.example.com/")],
  ["200 B", encoded((ua + ua).slice(0, 200))],
  ["4 KiB", encoded(ua.repeat(40).slice(0, 4096))],
];

let sink = 0;
const bench = new Bench({ time: TIME, warmupTime: 100 });
for (const [name, input] of cases) {
  const out = new Uint8Array(input.length * 2);
  for (const d of [wasm, tsHuffman]) {
    bench.add(`${name}|${d.impl}`, () => { for (let i = 0; i < LOOP; i++) sink += d.decode(input, 0, input.length, out); });
  }
}
await bench.run();
const ns = new Map(bench.tasks.map((t) => [t.name, (t.result as { latency: { p50: number } }).latency.p50 * 1e6 / LOOP]));
console.log(`Huffman decode on ${runtime.name} ${runtime.version}, ns per string (median)\n`);
console.log("| string | WASM | TS | faster |\n|---|---|---|---|");
for (const [name] of cases) {
  const w = ns.get(`${name}|wasm`)!, t = ns.get(`${name}|ts`)!;
  console.log(`| ${name} | ${w.toFixed(0)} | ${t.toFixed(0)} | ${w <= t ? "WASM" : "TS"} ${(Math.max(w, t) / Math.min(w, t)).toFixed(2)}x |`);
}
if (sink === 42) console.log("");
