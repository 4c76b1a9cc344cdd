// Accessors for the server and pool tables (see layout.ts).
import {
  SERVERS_OFF, MAX_SERVERS, POOLS_OFF, MAX_POOLS, S_STATE, S_EFFW, S_MAXCONN, S_ACTIVE, S_FLAGS,
  STATE_UP, FLAG_BACKUP, P_RNG,
} from "./layout";

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

// Up with a weight: may be placed in a lookup table.
@inline export function available(i: i32): bool {
  return sget(S_STATE, i) == STATE_UP && sget(S_EFFW, i) > 0;
}

// Available and below its connection limit: may take a new session now.
@inline export function usable(i: i32): bool {
  const mc = sget(S_MAXCONN, i);
  return available(i) && (mc == 0 || sget(S_ACTIVE, i) < mc);
}

@inline export function tierOf(i: i32): i32 {
  return sget(S_FLAGS, i) & FLAG_BACKUP;
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
