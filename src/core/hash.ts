// TS twins of the WASM hash kernels, plus the unkeyed id hash the control plane gives servers.

let v0 = 0, v1 = 0, v2 = 0, v3 = 0;

function round(): void {
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
}

// Hashes return their 32 bits as a signed int: that is how a key crosses into WASM cheaply (a
// number above 2^31 is a double in JS, and on Bun converting it at the call costs ~60 ns).

/** HalfSipHash-1-3 of bytes, 32-bit result. */
export function halfSipHashBytes(bytes: Uint8Array, len: number, k0: number, k1: number): number {
  v0 = k0 | 0; v1 = k1 | 0; v2 = 0x6c796765 ^ k0; v3 = 0x74656462 ^ k1;
  absorbBytes(bytes, len);
  v2 ^= 0xff; round(); round(); round();
  return v1 ^ v3;
}

/** HalfSipHash-1-3 with its 64-bit output (the reference's outlen 8), as the WASM
 * halfSipHash64: out[0] gets the low word, out[1] the high one. */
export function halfSipHash64Bytes(bytes: Uint8Array, len: number, k0: number, k1: number, out: Int32Array): void {
  v0 = k0 | 0; v1 = (k1 ^ 0xee) | 0; v2 = 0x6c796765 ^ k0; v3 = 0x74656462 ^ k1;
  absorbBytes(bytes, len);
  v2 ^= 0xee; round(); round(); round();
  out[0] = v1 ^ v3;
  v1 ^= 0xdd; round(); round(); round();
  out[1] = v1 ^ v3;
}

function absorbBytes(bytes: Uint8Array, len: number): void {
  const end = len & ~3;
  for (let p = 0; p < end; p += 4) {
    const m = bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) | (bytes[p + 3] << 24);
    v3 ^= m; round(); v0 ^= m;
  }
  absorbTail(len, end, (i) => bytes[i]);
}

/** HalfSipHash-1-3 of a string's UTF-8 bytes, without encoding when it is ASCII. */
export function halfSipHashString(s: string, k0: number, k1: number): number {
  const len = s.length;
  for (let i = 0; i < len; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      const bytes = encoder.encode(s);
      return halfSipHashBytes(bytes, bytes.length, k0, k1);
    }
  }
  v0 = k0 | 0; v1 = k1 | 0; v2 = 0x6c796765 ^ k0; v3 = 0x74656462 ^ k1;
  const end = len & ~3;
  for (let p = 0; p < end; p += 4) {
    const m = s.charCodeAt(p) | (s.charCodeAt(p + 1) << 8) | (s.charCodeAt(p + 2) << 16) |
      (s.charCodeAt(p + 3) << 24);
    v3 ^= m; round(); v0 ^= m;
  }
  absorbTail(len, end, (i) => s.charCodeAt(i));
  v2 ^= 0xff; round(); round(); round();
  return v1 ^ v3;
}

function absorbTail(len: number, end: number, byteAt: (i: number) => number): void {
  let b = len << 24;
  const rest = len & 3;
  if (rest >= 3) b |= byteAt(end + 2) << 16;
  if (rest >= 2) b |= byteAt(end + 1) << 8;
  if (rest >= 1) b |= byteAt(end);
  v3 ^= b; round(); v0 ^= b;
}

const encoder = new TextEncoder();

/** murmur3's 32-bit finalizer (unsigned result). */
export function fmix32(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A server's stable identity hash (FNV-1a of its address): the same on every node and run, so
 * Maglev and ketama place a server identically everywhere. */
export function idHash(address: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) {
    h ^= address.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}
