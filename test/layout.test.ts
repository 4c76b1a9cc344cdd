// The layout docs/architecture.md describes, checked over the imports (scripts/check-imports.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkImports } from "../scripts/check-imports.ts";

test("layout: health, vrrp and the balancer never import the edge; config imports no part; no import circles", () => {
  const breaches = checkImports().map((b) => `${b.rule}: ${b.detail}`);
  assert.deepEqual(breaches, []);
});

// The module's own static data sits at DATA_OFF; it must end before the next region the layout
// hands out (the Huffman area, then the table heap), or a table would overwrite it.
test("layout: the WASM module's static data ends below the regions the layout hands out", async () => {
  const layout = await import("../wasm/assembly/layout.ts");
  const bytes = new Uint8Array(await readBytes(new URL("../build/fulcrum.wasm", import.meta.url)));
  let at = 8, end = layout.DATA_OFF;
  const leb = () => { let v = 0, shift = 0, b; do { b = bytes[at++]; v |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80); return v >>> 0; };
  const sleb = () => { let v = 0, shift = 0, b; do { b = bytes[at++]; v |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80); return shift < 32 && (b & 0x40) ? v | (-1 << shift) : v; };
  while (at < bytes.length) {
    const id = bytes[at++], size = leb(), next = at + size;
    if (id === 11) {
      for (let n = leb(); n > 0; n--) {
        assert.equal(leb(), 0, "an active segment in memory 0");
        assert.equal(bytes[at++], 0x41, "i32.const offset");
        const offset = sleb();
        assert.equal(bytes[at++], 0x0b);
        const len = leb();
        at += len;
        assert.ok(offset >= layout.DATA_OFF, `segment at ${offset} below DATA_OFF`);
        end = Math.max(end, offset + len);
      }
    }
    at = next;
  }
  const limit = Math.min(layout.HEAP_OFF, "HUFF_OFF" in layout ? (layout as unknown as { HUFF_OFF: number }).HUFF_OFF : Infinity);
  assert.ok(end <= limit, `static data ends at ${end}, past ${limit}`);
});

async function readBytes(url: URL): Promise<Uint8Array> {
  const { readFile } = await import("node:fs/promises");
  return new Uint8Array(await readFile(url));
}
