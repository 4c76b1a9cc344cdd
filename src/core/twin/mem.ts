// TS twin of wasm/assembly/mem.ts: the same accessors over an Int32Array of the whole memory.
import { SERVERS_OFF, MAX_SERVERS, POOLS_OFF, MAX_POOLS, S_MAXCONN, S_ACTIVE, S_GATE, P_RNG } from "../layout.ts";

const S0 = SERVERS_OFF >> 2, P0 = POOLS_OFF >> 2;

export const sget = (m: Int32Array, f: number, i: number): number => m[S0 + f * MAX_SERVERS + i];
export const sset = (m: Int32Array, f: number, i: number, v: number): void => {
  m[S0 + f * MAX_SERVERS + i] = v;
};
export const pget = (m: Int32Array, f: number, p: number): number => m[P0 + f * MAX_POOLS + p];
export const pset = (m: Int32Array, f: number, p: number, v: number): void => {
  m[P0 + f * MAX_POOLS + p] = v;
};

function belowLimit(m: Int32Array, i: number): boolean {
  const mc = sget(m, S_MAXCONN, i);
  return mc === 0 || sget(m, S_ACTIVE, i) < mc;
}

export const usable = (m: Int32Array, i: number): boolean => sget(m, S_GATE, i) >= 0 && belowLimit(m, i);

export const eligible = (m: Int32Array, i: number, tier: number): boolean =>
  sget(m, S_GATE, i) === tier && belowLimit(m, i);

/** Multiply-shift range reduction of a 32-bit hash onto [0, n); exact in doubles for n < 2^21. */
export const reduce = (x: number, n: number): number => Math.floor(((x >>> 0) * n) / 4294967296);

export function rngNext(m: Int32Array, p: number): number {
  let x = pget(m, P_RNG, p);
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  pset(m, P_RNG, p, x);
  return x >>> 0;
}
