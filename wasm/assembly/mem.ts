// Accessors for the server and pool tables (see layout.ts).
import { SERVERS_OFF, MAX_SERVERS, POOLS_OFF, MAX_POOLS, S_MAXCONN, S_ACTIVE, S_GATE, P_RNG } from "./layout";

@inline export function sget(f: i32, i: i32): i32 {
  return load<i32>(SERVERS_OFF + ((f * MAX_SERVERS + i) << 2));
}
@inline export function sset(f: i32, i: i32, v: i32): void {
  store<i32>(SERVERS_OFF + ((f * MAX_SERVERS + i) << 2), v);
}
@inline export function pget(f: i32, p: i32): i32 {
  return load<i32>(POOLS_OFF + ((f * MAX_POOLS + p) << 2));
}
@inline export function pset(f: i32, p: i32, v: i32): void {
  store<i32>(POOLS_OFF + ((f * MAX_POOLS + p) << 2), v);
}

@inline function belowLimit(i: i32): bool {
  const mc = sget(S_MAXCONN, i);
  return mc == 0 || sget(S_ACTIVE, i) < mc;
}

// Up with a weight, and below its connection limit: may take a new session now.
@inline export function usable(i: i32): bool {
  return sget(S_GATE, i) >= 0 && belowLimit(i);
}

// Usable and in the given tier.
@inline export function eligible(i: i32, tier: i32): bool {
  return sget(S_GATE, i) == tier && belowLimit(i);
}

// Multiply-shift range reduction (Lemire): maps a 32-bit hash fairly onto [0, n) without the
// divide a modulo costs.
@inline export function reduce(x: u32, n: i32): i32 {
  return <i32>((<u64>x * <u64>n) >> 32);
}

// xorshift32: the pool's own PRNG so random picks are reproducible from a seed.
@inline export function rngNext(p: i32): u32 {
  let x = <u32>pget(P_RNG, p);
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  pset(P_RNG, p, <i32>x);
  return x;
}
