// TS twin of wasm/assembly/mem.ts: the same accessors over an Int32Array of the whole memory.
import {
  SERVERS_OFF, MAX_SERVERS, POOLS_OFF, MAX_POOLS, S_STATE, S_EFFW, S_MAXCONN, S_ACTIVE, S_FLAGS,
  STATE_UP, FLAG_BACKUP, P_RNG,
} from "../layout.ts";

const S0 = SERVERS_OFF >> 2, P0 = POOLS_OFF >> 2;

export const sget = (m: Int32Array, f: number, i: number): number => m[S0 + f * MAX_SERVERS + i];
export const sset = (m: Int32Array, f: number, i: number, v: number): void => {
  m[S0 + f * MAX_SERVERS + i] = v;
};
export const pget = (m: Int32Array, f: number, p: number): number => m[P0 + f * MAX_POOLS + p];
export const pset = (m: Int32Array, f: number, p: number, v: number): void => {
  m[P0 + f * MAX_POOLS + p] = v;
};

export function available(m: Int32Array, i: number): boolean {
  return sget(m, S_STATE, i) === STATE_UP && sget(m, S_EFFW, i) > 0;
}

export function usable(m: Int32Array, i: number): boolean {
  const mc = sget(m, S_MAXCONN, i);
  return available(m, i) && (mc === 0 || sget(m, S_ACTIVE, i) < mc);
}

export const tierOf = (m: Int32Array, i: number): number => sget(m, S_FLAGS, i) & FLAG_BACKUP;

export function rngNext(m: Int32Array, p: number): number {
  let x = pget(m, P_RNG, p);
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  pset(m, P_RNG, p, x);
  return x >>> 0;
}
