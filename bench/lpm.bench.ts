// Longest-prefix match per address, WASM kernel against the TS twin, with 10k and 100k random
// IPv4 and IPv6 prefixes (mixed lengths, nested), plus what a table costs to build and hold and
// what a whole access check costs (AccessList.decide: parse the address text, look up; and
// permits, which remembers recent verdicts). Run
// with `bun bench/lpm.bench.ts` or `deno run -A --no-check bench/lpm.bench.ts`; prints Markdown rows.
import { Bench } from "tinybench";
import { runtime } from "../src/runtime/index.ts";
import { createDataPlane } from "../src/core/wasm.ts";
import { flatten, type LpmPrefix, LpmTable } from "../src/core/lpm.ts";
import { AccessList, type Cidr } from "../src/edge/access/acl.ts";
import { formatIP } from "../src/vrrp/ip.ts";

const LOOP = 10_000;
const TIME = Number(runtime.env("BENCH_TIME_MS") ?? 300);
let sink = 0;

function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return Math.floor((s / 2 ** 32) * n); };
}

/** n distinct prefixes: lengths 8..32 (IPv4) or 16..128 (IPv6), a quarter nested in others. */
function prefixes(n: number, size: 4 | 16, seed: number): LpmPrefix[] {
  const rand = lcg(seed), out: LpmPrefix[] = [], seen = new Set<string>();
  while (out.length < n) {
    const parent = out.length > 0 && rand(4) === 0 ? out[rand(out.length)] : null;
    const bytes = parent ? parent.bytes.slice() : Uint8Array.from({ length: size }, () => rand(256));
    const min = parent ? parent.length : size === 4 ? 8 : 16;
    const length = Math.min(size * 8, min + rand(size * 8 - min + 1));
    for (let b = parent ? parent.length : 0; b < size * 8; b++) if (rand(2)) bytes[b >> 3] ^= 0x80 >> (b & 7);
    const key = `${bytes.join(".")}/${length}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ bytes, length, value: 1 + rand(2) });
  }
  return out;
}

/** 1024 addresses: half inside listed prefixes, half random. */
function addresses(list: LpmPrefix[], size: 4 | 16, seed: number): Uint32Array {
  const rand = lcg(seed), words = size / 4, out = new Uint32Array(1024 * words);
  for (let i = 0; i < 1024; i++) {
    const bytes = i % 2 === 0 ? list[rand(list.length)].bytes.slice() : new Uint8Array(size);
    for (let b = i % 2 === 0 ? size - 2 : 0; b < size; b++) bytes[b] = rand(256);
    for (let w = 0; w < words; w++) out[i * words + w] = ((bytes[w * 4] << 24) | (bytes[w * 4 + 1] << 16) | (bytes[w * 4 + 2] << 8) | bytes[w * 4 + 3]) >>> 0;
  }
  return out;
}

const cpu = (await runtime.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown cpu";
console.log(`\n### ${runtime.name} ${runtime.version}, ${cpu}\n`);
console.log("| prefixes | intervals | table MB | build ms | WASM ns | TS ns | faster | parse + lookup ns | permits (cached) ns |");
console.log("|---|---:|---:|---:|---:|---:|---|---:|---:|");
for (const size of [4, 16] as const) {
  for (const n of [10_000, 100_000]) {
    const list = prefixes(n, size, n + size);
    const dp = await createDataPlane({ impl: "wasm", seed: 1 });
    const t0 = performance.now();
    const iv = flatten(list, size === 4 ? 1 : 4);
    const wasm = new LpmTable(dp, iv, "wasm");
    const buildMs = performance.now() - t0;
    const twin = new LpmTable(dp, iv, "ts");
    const addrs = addresses(list, size, 7);
    // The whole check as the edge makes it: the address as text, parsed, then looked up.
    const rules = { allow: list.filter((p) => p.value === 1) as Cidr[], deny: list.filter((p) => p.value === 2) as Cidr[] };
    const acl = new AccessList(dp, rules, "wasm");
    const texts = Array.from({ length: 1024 }, (_, i) => {
      const bytes = new Uint8Array(size);
      for (let w = 0; w < size / 4; w++) new DataView(bytes.buffer).setUint32(w * 4, addrs[i * (size / 4) + w]);
      return formatIP(bytes);
    });
    const bench = new Bench({ time: TIME, warmupTime: 100 });
    for (const [name, t] of [["wasm", wasm], ["ts", twin]] as const) {
      if (size === 4) {
        bench.add(name, () => { let a = 0; for (let i = 0; i < LOOP; i++) a += t.lookup4(addrs[i & 1023]); sink += a; });
      } else {
        bench.add(name, () => {
          let a = 0;
          for (let i = 0; i < LOOP; i++) { const k = (i & 1023) * 4; a += t.lookup6(addrs[k], addrs[k + 1], addrs[k + 2], addrs[k + 3]); }
          sink += a;
        });
      }
    }
    bench.add("permits", () => { let a = 0; for (let i = 0; i < LOOP; i++) if (acl.permits(texts[i & 1023])) a++; sink += a; });
    bench.add("decide", () => { let a = 0; for (let i = 0; i < LOOP; i++) if (acl.decide(texts[i & 1023])) a++; sink += a; });
    await bench.run();
    const ns = (name: string) => (bench.getTask(name)!.result as { latency: { p50: number } }).latency.p50 * 1e6 / LOOP;
    const w = ns("wasm"), t = ns("ts");
    console.log(`| ${n / 1000}k IPv${size === 4 ? 4 : 6} | ${iv.values.length} | ${(wasm.bytes / 2 ** 20).toFixed(2)} | ${buildMs.toFixed(0)} | ${w.toFixed(1)} | ${t.toFixed(1)} | ${w <= t ? "WASM" : "TS"} ${(Math.max(w, t) / Math.min(w, t)).toFixed(2)}x | ${ns("decide").toFixed(0)} | ${ns("permits").toFixed(0)} |`);
  }
}
if (sink === 0.5) console.log(sink);
