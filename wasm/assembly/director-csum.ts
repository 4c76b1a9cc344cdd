// Internet checksum pieces (RFC 1071, RFC 1624). Words are loaded little-endian straight from the
// packet: a one's-complement sum is the same in either byte order, so no field is swapped. A
// change is collected as a delta (the sum of ~old + new over the changed words) and applied to a
// checksum field once: HC' = ~(~HC + delta) (RFC 1624 eqn. 3).

@inline export function fold(s: u32): u32 {
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return s;
}

// Delta of one 16-bit word changing from old to nw.
@inline export function delta16(old: u32, nw: u32): u32 {
  return (~old & 0xffff) + (nw & 0xffff);
}

// Replaces the 16-bit word at p with nw; returns the delta.
@inline export function put16(p: u32, nw: u32): u32 {
  const old = <u32>load<u16>(p);
  store<u16>(p, <u16>nw);
  return delta16(old, nw);
}

// Replaces the address at p with the one at src (4 or 16 bytes); returns the delta.
@inline export function putAddr(p: u32, src: u32, v6: bool): u32 {
  let d: u32 = 0;
  const n: u32 = v6 ? 16 : 4;
  for (let k: u32 = 0; k < n; k += 2) d += put16(p + k, <u32>load<u16>(src + k));
  return fold(d);
}

// Applies a delta to the checksum field at p.
@inline export function applyDelta(p: u32, d: u32): void {
  const c = fold((~(<u32>load<u16>(p)) & 0xffff) + fold(d));
  store<u16>(p, <u16>~c);
}

// UDP over IPv4 may carry no checksum (0): it stays 0; a computed 0 is sent as 0xffff.
@inline export function applyUdpDelta(p: u32, d: u32, v6: bool): void {
  const c = <u32>load<u16>(p);
  if (c == 0 && !v6) return;
  applyDelta(p, d);
  if (load<u16>(p) == 0) store<u16>(p, 0xffff);
}

// Sum of len bytes at p as little-endian words (an odd last byte padded with a zero).
export function sum(p: u32, len: i32): u32 {
  let s: u64 = 0;
  let k = 0;
  for (; k + 1 < len; k += 2) s += <u64>load<u16>(p + <u32>k);
  if (k < len) s += <u64>load<u8>(p + <u32>k);
  s = (s & 0xffffffff) + (s >> 32);
  return fold(<u32>(s & 0xffffffff) + <u32>(s >> 32));
}

// The checksum field value for a sum.
@inline export function finish(s: u32): u16 {
  return <u16>~fold(s);
}
