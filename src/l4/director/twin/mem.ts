// TS twin of the director's memory access and checksum pieces (wasm/assembly/director-csum.ts):
// little-endian loads over the data plane's memory, bound once per batch.
let u8 = new Uint8Array(0);
let dv = new DataView(new ArrayBuffer(0));

export function bind(memory: ArrayBuffer): void {
  if (u8.buffer !== memory) {
    u8 = new Uint8Array(memory);
    dv = new DataView(memory);
  }
}

export const memBytes = (): number => u8.length;
export const ld8 = (p: number): number => u8[p];
export const ld16 = (p: number): number => dv.getUint16(p, true);
export const ld32 = (p: number): number => dv.getUint32(p, true);
export const ldi32 = (p: number): number => dv.getInt32(p, true);
export const st8 = (p: number, v: number): void => { u8[p] = v; };
export const st16 = (p: number, v: number): void => dv.setUint16(p, v, true);
export const st32 = (p: number, v: number): void => dv.setUint32(p, v >>> 0, true);
export const sti32 = (p: number, v: number): void => dv.setInt32(p, v, true);
export const be16 = (p: number): number => dv.getUint16(p, false);
export const swap16 = (v: number): number => ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
export const copy = (dst: number, src: number, n: number): void => { u8.copyWithin(dst, src, src + n); };
export const fill = (p: number, v: number, n: number): void => { u8.fill(v, p, p + n); };
/** Adds n to the u64 at p (counters stay below 2^53 here). */
export function add64(p: number, n: number): void {
  const lo = dv.getUint32(p, true) + n;
  dv.setUint32(p, lo >>> 0, true);
  if (lo > 0xffffffff) dv.setUint32(p + 4, dv.getUint32(p + 4, true) + Math.floor(lo / 4294967296), true);
}
export const ld64 = (p: number): number => dv.getUint32(p, true) + dv.getUint32(p + 4, true) * 4294967296;
export const eq16 = (a: number, b: number): boolean =>
  dv.getUint32(a, true) === dv.getUint32(b, true) && dv.getUint32(a + 4, true) === dv.getUint32(b + 4, true)
  && dv.getUint32(a + 8, true) === dv.getUint32(b + 8, true) && dv.getUint32(a + 12, true) === dv.getUint32(b + 12, true);

export function fold(s: number): number {
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}
export const delta16 = (old: number, nw: number): number => (~old & 0xffff) + (nw & 0xffff);
export function put16(p: number, nw: number): number {
  const old = ld16(p);
  st16(p, nw & 0xffff);
  return delta16(old, nw);
}
export function putAddr(p: number, src: number, v6: boolean): number {
  let d = 0;
  const n = v6 ? 16 : 4;
  for (let k = 0; k < n; k += 2) d += put16(p + k, ld16(src + k));
  return fold(d);
}
export function applyDelta(p: number, d: number): void {
  const c = fold((~ld16(p) & 0xffff) + fold(d));
  st16(p, ~c & 0xffff);
}
export function applyUdpDelta(p: number, d: number, v6: boolean): void {
  if (ld16(p) === 0 && !v6) return;
  applyDelta(p, d);
  if (ld16(p) === 0) st16(p, 0xffff);
}
export function sum(p: number, len: number): number {
  let s = 0, k = 0;
  for (; k + 1 < len; k += 2) s += ld16(p + k);
  if (k < len) s += u8[p + k];
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}
export const finish = (s: number): number => ~fold(s) & 0xffff;
