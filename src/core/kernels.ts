// The data-plane kernel interface: the WASM module's exports, or their TS twins.
export interface Kernels {
  /** Server slot for a new session in pool p, or -1 (no server). key: the request's key hash,
   * its 32 bits passed as a signed int (an unsigned one above 2^31 is slow to pass on Bun). */
  pick(p: number, key: number): number;
  /** n picks: u32 keys at byte offset keys, i32 results to byte offset out. */
  pickBatch(p: number, keys: number, out: number, n: number): void;
  /** Rebuild pool p's lookup table after a state or weight change. */
  rebuild(p: number): void;
  /** Keyed hash of len bytes at KEYBUF_OFF. */
  hashKey(len: number): number;
  /** hashKey then pick, in one call. */
  pickKey(p: number, len: number): number;
  /** least_time: a response time of `us` µs from server `slot` of pool p, at the clock in G_NOW. */
  observeTime(p: number, slot: number, us: number): void;
}

export type KernelImpl = "wasm" | "ts";
