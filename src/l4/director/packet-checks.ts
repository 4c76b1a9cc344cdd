// Checks of the director's packets by a full computation of their own (never the kernels'
// incremental code), for the simulator tests: every checksum, and field readers.
import assert from "node:assert/strict";

export function sum16(b: Uint8Array, start: number, end: number, init = 0): number {
  let s = init;
  for (let i = start; i < end; i += 2) s += (b[i] << 8) | (i + 1 < end ? b[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
export const be16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
export const ip4 = (b: Uint8Array, o: number) => Array.from(b.subarray(o, o + 4)).join(".");
export const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Checks every checksum of the IP packet at l3 (IPv4 header, TCP/UDP/ICMP with pseudo-header);
 * returns the L4 offset. Recurses into an ICMP error's quoted IPv4 header. */
export function verify(b: Uint8Array, l3 = 0): number {
  const v6 = b[l3] >> 4 === 6;
  let l4: number, proto: number, end: number, pseudo: number;
  if (v6) {
    proto = b[l3 + 6]; l4 = l3 + 40; end = l4 + be16(b, l3 + 4);
    pseudo = sum16(b, l3 + 8, l3 + 40, (end - l4) + proto);
  } else {
    const ihl = (b[l3] & 15) * 4;
    assert.equal(sum16(b, l3, l3 + ihl), 0xffff, "IPv4 header checksum");
    proto = b[l3 + 9]; l4 = l3 + ihl; end = l3 + be16(b, l3 + 2);
    pseudo = sum16(b, l3 + 12, l3 + 20, (end - l4) + proto);
  }
  assert.ok(end <= b.length, "IP length within the packet");
  if (proto === 6) assert.equal(sum16(b, l4, end, pseudo), 0xffff, "TCP checksum");
  if (proto === 17 && !(be16(b, l4 + 6) === 0 && !v6)) assert.equal(sum16(b, l4, end, pseudo), 0xffff, "UDP checksum");
  if (proto === 1) assert.equal(sum16(b, l4, end), 0xffff, "ICMP checksum");
  if (proto === 58) assert.equal(sum16(b, l4, end, pseudo), 0xffff, "ICMPv6 checksum");
  if (proto === 1) assert.equal(sum16(b, l4 + 8, l4 + 8 + (b[l4 + 8] & 15) * 4), 0xffff, "quoted IPv4 header checksum");
  return l4;
}
