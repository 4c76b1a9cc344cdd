// One case suite for the longest-prefix-match kernel, run on the WASM kernel and on its TS twin:
// hand-made nests and edges of the address space, then thousands of random prefixes checked
// against a brute-force longest match.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "./wasm.ts";
import { flatten, type LpmPrefix, LpmTable } from "./lpm.ts";
import type { KernelImpl } from "./kernels.ts";
import { parseIP } from "../vrrp/ip.ts";

const IMPLS: KernelImpl[] = ["wasm", "ts"];

function prefix(text: string, value: number): LpmPrefix {
  const [addr, len] = text.split("/");
  const ip = parseIP(addr)!;
  return { bytes: ip.bytes, length: Number(len ?? ip.bytes.length * 8), value };
}

function words(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 4) out.push(((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0);
  return out;
}

async function table(impl: KernelImpl, prefixes: LpmPrefix[], family: 4 | 6) {
  const dp = await createDataPlane({ impl, seed: 1 });
  const t = new LpmTable(dp, flatten(prefixes, family === 4 ? 1 : 4), impl);
  assert.equal(t.impl, impl);
  return (addr: string | Uint8Array) => {
    const w = words(typeof addr === "string" ? parseIP(addr)!.bytes : addr);
    return w.length === 1 ? t.lookup4(w[0]) : t.lookup6(w[0], w[1], w[2], w[3]);
  };
}

/** The longest prefix holding the address, by looking at every prefix. */
function bruteForce(prefixes: LpmPrefix[], addr: Uint8Array): number {
  let best = -1, value = 0;
  for (const p of prefixes) {
    let inside = true;
    for (let bit = 0; bit < p.length && inside; bit++) {
      const mask = 0x80 >> (bit & 7);
      if ((p.bytes[bit >> 3] & mask) !== (addr[bit >> 3] & mask)) inside = false;
    }
    if (inside && p.length >= best) { best = p.length; value = p.value; }
  }
  return value;
}

function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return Math.floor((s / 2 ** 32) * n); };
}

for (const impl of IMPLS) {
  test(`lpm (${impl}): an empty table matches nothing`, async () => {
    const v4 = await table(impl, [], 4), v6 = await table(impl, [], 6);
    for (const a of ["0.0.0.0", "10.1.2.3", "255.255.255.255"]) assert.equal(v4(a), 0);
    for (const a of ["::", "::1", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]) assert.equal(v6(a), 0);
  });

  test(`lpm (${impl}): nested IPv4 prefixes, the longest decides, edges included`, async () => {
    const lookup = await table(impl, [
      prefix("10.0.0.0/8", 1), prefix("10.1.0.0/16", 2), prefix("10.1.2.0/24", 3), prefix("10.1.2.3/32", 4),
      prefix("192.168.0.0/16", 5), prefix("255.255.255.255/32", 6), prefix("0.0.0.0/32", 7),
    ], 4);
    const cases: [string, number][] = [
      ["9.255.255.255", 0], ["10.0.0.0", 1], ["10.0.255.255", 1], ["10.1.0.0", 2], ["10.1.1.255", 2],
      ["10.1.2.0", 3], ["10.1.2.2", 3], ["10.1.2.3", 4], ["10.1.2.4", 3], ["10.1.2.255", 3], ["10.1.3.0", 2],
      ["10.1.255.255", 2], ["10.2.0.0", 1], ["10.255.255.255", 1], ["11.0.0.0", 0], ["192.167.255.255", 0],
      ["192.168.0.0", 5], ["192.168.255.255", 5], ["192.169.0.0", 0], ["255.255.255.254", 0], ["255.255.255.255", 6],
      ["0.0.0.0", 7], ["0.0.0.1", 0],
    ];
    for (const [a, want] of cases) assert.equal(lookup(a), want, a);
  });

  test(`lpm (${impl}): a /0 is the default; host bits in a prefix are ignored`, async () => {
    const lookup = await table(impl, [prefix("0.0.0.0/0", 1), prefix("127.0.0.9/8", 2)], 4);
    assert.equal(lookup("8.8.8.8"), 1);
    assert.equal(lookup("127.0.0.1"), 2);
    assert.equal(lookup("128.0.0.0"), 1);
  });

  test(`lpm (${impl}): nested IPv6 prefixes across word boundaries`, async () => {
    const lookup = await table(impl, [
      prefix("2001:db8::/32", 1), prefix("2001:db8:1::/48", 2), prefix("2001:db8:1:2::/64", 3),
      prefix("2001:db8:1:2::8000:0/97", 4), prefix("::1/128", 5), prefix("::/0", 6),
      prefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 7),
    ], 6);
    const cases: [string, number][] = [
      ["::", 6], ["::1", 5], ["::2", 6], ["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", 6], ["2001:db8::", 1],
      ["2001:db8:0:ffff::1", 1], ["2001:db8:1::", 2], ["2001:db8:1:1:ffff:ffff:ffff:ffff", 2], ["2001:db8:1:2::", 3],
      ["2001:db8:1:2::7fff:ffff", 3], ["2001:db8:1:2::8000:0", 4], ["2001:db8:1:2::ffff:ffff", 4],
      ["2001:db8:1:2:0:1::", 3], ["2001:db8:1:3::", 2], ["2001:db8:2::", 1], ["2001:db9::", 6],
      ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 6], ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 7],
    ];
    for (const [a, want] of cases) assert.equal(lookup(a), want, a);
  });

  for (const family of [4, 6] as const) {
    test(`lpm (${impl}): 5000 random IPv${family} prefixes agree with a brute-force longest match`, async () => {
      const rand = lcg(family * 7 + 1), size = family === 4 ? 4 : 16;
      const prefixes: LpmPrefix[] = [];
      const seen = new Set<string>();
      // Clustered under a few roots so prefixes nest deeply (the hard case), not only side by side.
      const roots = Array.from({ length: 8 }, () => Uint8Array.from({ length: size }, () => rand(256)));
      while (prefixes.length < 5000) {
        const bytes = roots[rand(roots.length)].slice();
        for (let i = 1 + rand(size - 1); i < size; i++) bytes[i] = rand(256);
        const length = rand(size * 8 + 1);
        const key = `${bytes.join(".")}/${length}`;
        if (seen.has(key)) continue;
        seen.add(key);
        prefixes.push({ bytes, length, value: 1 + rand(3) });
      }
      const lookup = await table(impl, prefixes, family);
      // Addresses at prefix starts, ends and one past, and random ones in the clusters.
      const probes: Uint8Array[] = [];
      for (const p of prefixes.slice(0, 400)) {
        const start = p.bytes.slice(), end = p.bytes.slice();
        for (let bit = p.length; bit < size * 8; bit++) {
          start[bit >> 3] &= ~(0x80 >> (bit & 7));
          end[bit >> 3] |= 0x80 >> (bit & 7);
        }
        const past = end.slice();
        for (let i = size - 1; i >= 0; i--) { past[i] = (past[i] + 1) & 0xff; if (past[i] !== 0) break; }
        probes.push(start, end, past);
      }
      for (let k = 0; k < 800; k++) {
        const bytes = roots[rand(roots.length)].slice();
        for (let i = 1 + rand(size - 1); i < size; i++) bytes[i] = rand(256);
        probes.push(bytes);
      }
      for (const a of probes) assert.equal(lookup(a), bruteForce(prefixes, a), a.join("."));
    });
  }
}
