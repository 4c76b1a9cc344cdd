// HalfSipHash-1-3 (keyed, 32-bit output) over bytes in linear memory, and murmur3's finalizer.
import { GLOBALS_OFF, G_HASH_K0, G_HASH_K1 } from "./layout";

// eslint-disable-next-line
let v0: u32 = 0, v1: u32 = 0, v2: u32 = 0, v3: u32 = 0;

@inline function round(): void {
  v0 += v1; v1 = rotl<u32>(v1, 5); v1 ^= v0; v0 = rotl<u32>(v0, 16);
  v2 += v3; v3 = rotl<u32>(v3, 8); v3 ^= v2;
  v0 += v3; v3 = rotl<u32>(v3, 7); v3 ^= v0;
  v2 += v1; v1 = rotl<u32>(v1, 13); v1 ^= v2; v2 = rotl<u32>(v2, 16);
}

// Absorbs len bytes at ptr and the length byte into the state the caller initialised.
@inline function absorb(ptr: i32, len: i32): void {
  const end = ptr + (len & ~3);
  for (let p = ptr; p < end; p += 4) {
    const m = load<u32>(p);
    v3 ^= m; round(); v0 ^= m;
  }
  let b: u32 = (<u32>len) << 24;
  const rest = len & 3;
  if (rest >= 3) b |= (<u32>load<u8>(end + 2)) << 16;
  if (rest >= 2) b |= (<u32>load<u8>(end + 1)) << 8;
  if (rest >= 1) b |= <u32>load<u8>(end);
  v3 ^= b; round(); v0 ^= b;
}

@inline function init(k0: u32, k1: u32, outerXor: u32): void {
  v0 = k0; v1 = k1 ^ outerXor; v2 = 0x6c796765 ^ k0; v3 = 0x74656462 ^ k1;
}

export function halfSipHash(ptr: i32, len: i32): u32 {
  init(load<u32>(GLOBALS_OFF + G_HASH_K0), load<u32>(GLOBALS_OFF + G_HASH_K1), 0);
  absorb(ptr, len);
  v2 ^= 0xff; round(); round(); round();
  return v1 ^ v3;
}

// The high word of the last halfSipHash64.
export let hashHigh: u32 = 0;

// HalfSipHash-1-3 with its 64-bit output (the reference's outlen 8) under the key (two u32) at
// keyAt: the low word is returned, the high one left in hashHigh.
export function halfSipHash64(ptr: i32, len: i32, keyAt: i32): u32 {
  init(load<u32>(keyAt), load<u32>(keyAt + 4), 0xee);
  absorb(ptr, len);
  v2 ^= 0xee; round(); round(); round();
  const low = v1 ^ v3;
  v1 ^= 0xdd; round(); round(); round();
  hashHigh = v1 ^ v3;
  return low;
}

@inline export function fmix32(h: u32): u32 {
  h ^= h >> 16; h *= 0x85ebca6b;
  h ^= h >> 13; h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}
