// The data plane's memory and its control-plane API (Katran's split: the kernels only read
// tables; this class fills them). Membership is live: pools are added and removed, and a pool's
// server list replaced, at run time; server slots and table memory come from range allocators,
// so what a removal frees is reused, and only the pool that changed is rebuilt.
import {
  MAX_SERVERS, MAX_POOLS, SERVERS_OFF, POOLS_OFF, S_WEIGHT, S_EFFW, S_CW,
  S_ACTIVE, S_STATE, S_FLAGS, S_MAXCONN, S_ID, S_GATE, P_BASE, P_COUNT, P_SCHED, P_CURSOR, P_RNG, P_TABLE,
  P_TABLECAP, P_TABLELEN, P_SCRATCH, HEAP_OFF, HEAP_END, GLOBALS_OFF, G_HASH_K0, G_HASH_K1, KEYBUF_OFF,
  KEYBUF_SIZE, STATE_UP, STATE_DOWN, STATE_DRAIN, FLAG_BACKUP, HASH_BUCKETS, LB_BUCKETS,
  LB_ENTRY_WORDS, MAGLEV_M, KETAMA_POINTS, SCRATCH_WORDS, G_NOW, S_RTT, S_RTT_AT, P_DECAY,
} from "./layout.ts";
import { schedulerId, schedulerInfo, type SchedulerName } from "./schedulers.ts";
import { RangeAllocator } from "./ranges.ts";
import type { Kernels, KernelImpl } from "./kernels.ts";
import { twinKernels } from "./twin/index.ts";
import { fmix32, halfSipHashString, idHash } from "./hash.ts";

export { STATE_UP, STATE_DOWN, STATE_DRAIN };
export type ServerState = typeof STATE_UP | typeof STATE_DOWN | typeof STATE_DRAIN;

export interface ServerSpec {
  /** Identity used by Maglev and ketama, normally "host:port". */
  address: string;
  weight: number;
  backup?: boolean;
  down?: boolean;
  maxConns?: number;
}

export interface PoolSpec {
  scheduler: SchedulerName;
  servers: ServerSpec[];
  /** Maglev table size (a prime); MAGLEV_M by default. */
  maglevSize?: number;
  /** least_time: the response-time estimates' time constant, ms (Linkerd's decay); 10 s by default. */
  decayMs?: number;
}

export interface PoolHandle {
  readonly id: number;
  readonly scheduler: SchedulerName;
  /** Slot of the pool's first server; its servers are slots base..base+count-1 in spec order.
   * Both change when the pool's servers are replaced (setServers). */
  readonly base: number;
  readonly count: number;
}

interface PoolEntry {
  id: number;
  scheduler: SchedulerName;
  base: number;
  count: number;
  maglevSize: number;
  scratch: number;
  scratchBytes: number;
  table: number;
  tableBytes: number;
  /** The specs placed last, in slot order (a re-layout for a weight change reuses them). */
  specs: ServerSpec[];
}

const NO_SERVER = () => -1;

export interface DataPlaneOptions {
  /** Which kernels pick: "wasm", "ts", or per scheduler (the faster one, see bench/RESULTS.md). */
  impl?: KernelImpl | "auto";
  /** WASM module bytes, or the module compiled from them (createDataPlane compiles it once per
   * process, so a reload's new data plane only instantiates); without either only the TS twins
   * run (impl must be "ts"). */
  wasm?: Uint8Array | WebAssembly.Module;
  /** Seeds the hash key and the pools' PRNGs; random when absent (no hash flooding). */
  seed?: number | null;
  /** Linear memory in bytes, at least CONN_OFF; more holds the packet director's connection
   * table (src/l4/director/memory.ts sizes it). Grown once here, before any view is made. */
  memoryBytes?: number;
  /** Milliseconds on a monotonic clock, for least_time's estimates; performance.now() by default
   * (tests pass a simulated one). */
  clock?: () => number;
}

export class DataPlane {
  /** The memory now: replaced (with every view below) when tables make it grow, so read these
   * through the plane each time rather than keeping them. */
  memory!: ArrayBuffer;
  readonly wasm: Kernels | null;
  /** Every export of the WASM module (other parts' kernels, e.g. the packet director's), or null. */
  readonly wasmExports: WebAssembly.Exports | null;
  twin!: Kernels;
  /** Field views: index by server slot. Write state and weights through setState and
   * setEffectiveWeight (they keep the gate and lookup tables in step); active directly. */
  weight!: Int32Array;
  effectiveWeight!: Int32Array;
  active!: Int32Array;
  /** Smooth wrr's current weights (workers share them: copied in before a pick, out after). */
  currentWeight!: Int32Array;
  /** least_time's estimates, µs, and when each was set (the clock's ms): workers share them,
   * copied in before a pick or an observation, out after one. */
  estimate!: Int32Array;
  estimateAt!: Int32Array;
  state!: Int32Array;
  flags!: Int32Array;
  maxConns!: Int32Array;
  /** The whole memory as words (remade with the other views when the memory grows). */
  words!: Int32Array;
  private keyBytes!: Uint8Array;
  private readonly wasmMemory: WebAssembly.Memory | null;
  private readonly encoder = new TextEncoder();
  private readonly poolOfSlot = new Int16Array(MAX_SERVERS).fill(-1);
  private readonly pickers: ((p: number, key: number) => number)[] = [];
  private readonly pools: (PoolEntry | null)[] = [];
  private readonly slots = new RangeAllocator(0, MAX_SERVERS);
  private readonly heap = new RangeAllocator(HEAP_OFF, HEAP_END, 8);
  private readonly impl: KernelImpl | "auto";
  private readonly k0: number;
  private readonly k1: number;
  /** The hash key's seed (the config's hash_seed, or random): workers take the supervisor's, so keyed picks agree. */
  readonly seed: number;
  private readonly clock: () => number;

  constructor(options: DataPlaneOptions = {}) {
    this.impl = options.impl ?? "auto";
    this.clock = options.clock ?? (() => performance.now());
    if (options.wasm) {
      const module = options.wasm instanceof WebAssembly.Module ? options.wasm : new WebAssembly.Module(options.wasm as BufferSource);
      const instance = new WebAssembly.Instance(module, {});
      const ex = instance.exports as unknown as Kernels & { memory: WebAssembly.Memory };
      // A part with its own region above the heap (the packet director) asks for it up front.
      const want = Math.ceil((options.memoryBytes ?? 0) / 65536) - ex.memory.buffer.byteLength / 65536;
      if (want > 0) ex.memory.grow(want);
      this.wasmMemory = ex.memory;
      this.wasmExports = instance.exports;
      this.wasm = {
        pick: ex.pick, pickBatch: ex.pickBatch, rebuild: ex.rebuild, pickKey: ex.pickKey, hashKey: ex.hashKey,
        observeTime: ex.observeTime,
      };
    } else {
      if (this.impl !== "ts") throw new Error(`data plane: impl "${this.impl}" needs the WASM module`);
      this.wasmMemory = null;
      this.wasmExports = null;
      this.wasm = null;
      this.wasmExports = null;
    }
    const tsBytes = Math.max(HEAP_END, Math.ceil((options.memoryBytes ?? 0) / 65536) * 65536);
    this.remap(this.wasmMemory ? this.wasmMemory.buffer as ArrayBuffer : new ArrayBuffer(tsBytes));
    this.seed = options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    this.k0 = fmix32(this.seed ^ 0x243f6a88);
    this.k1 = fmix32(this.seed ^ 0x85a308d3);
    this.words[(GLOBALS_OFF + G_HASH_K0) >> 2] = this.k0;
    this.words[(GLOBALS_OFF + G_HASH_K1) >> 2] = this.k1;
  }

  // (Re)makes every view over the memory: at start, and after the memory grew.
  private remap(memory: ArrayBuffer): void {
    this.memory = memory;
    this.twin = twinKernels(memory);
    this.words = new Int32Array(memory);
    this.keyBytes = new Uint8Array(memory, KEYBUF_OFF, KEYBUF_SIZE);
    const field = (f: number) => new Int32Array(memory, SERVERS_OFF + f * MAX_SERVERS * 4, MAX_SERVERS);
    this.weight = field(S_WEIGHT);
    this.effectiveWeight = field(S_EFFW);
    this.active = field(S_ACTIVE);
    this.currentWeight = field(S_CW);
    this.estimate = field(S_RTT);
    this.estimateAt = field(S_RTT_AT);
    this.state = field(S_STATE);
    this.flags = field(S_FLAGS);
    this.maxConns = field(S_MAXCONN);
    for (const p of this.pools) if (p && p.count > 0) this.pickers[p.id] = this.pickerFor(p.scheduler);
  }

  /** Grows the WASM memory to cover [0, end) (whole pages; never shrinks). */
  private ensure(end: number): void {
    const mem = this.wasmMemory;
    if (!mem || end <= mem.buffer.byteLength) return;
    mem.grow(Math.ceil((end - mem.buffer.byteLength) / 65536));
    this.remap(mem.buffer as ArrayBuffer);
  }

  /** The kernels used for a scheduler under this plane's impl setting. */
  kernelsFor(scheduler: SchedulerName): Kernels {
    const choice = this.impl === "auto" ? schedulerInfo(scheduler).kernel : this.impl;
    return choice === "wasm" && this.wasm ? this.wasm : this.twin;
  }

  // A scheduler that reads the clock (least_time) gets it written to G_NOW before each pick.
  private pickerFor(scheduler: SchedulerName): (p: number, key: number) => number {
    const pick = this.kernelsFor(scheduler).pick;
    if (scheduler !== "least_time") return pick;
    return (p, key) => { this.tick(); return pick(p, key); };
  }

  private tick(): void {
    this.words[(GLOBALS_OFF + G_NOW) >> 2] = Math.floor(this.clock()) | 0;
  }

  /** least_time: a response (or connect) time of `ms` from the server at `slot`. Other
   * schedulers keep no estimate: nothing happens. */
  observeTime(slot: number, ms: number): void {
    const pool = this.poolOfSlot[slot];
    const entry = pool >= 0 ? this.pools[pool] : null;
    if (!entry || entry.scheduler !== "least_time") return;
    this.tick();
    this.kernelsFor(entry.scheduler).observeTime(pool, slot, Math.min(Math.round(ms * 1000), 2147483647));
  }

  /** least_time's estimate for the server at `slot`, µs as last set (0: nothing known). */
  timeEstimate(slot: number): number {
    return this.serverField(S_RTT, slot);
  }

  addPool(spec: PoolSpec): PoolHandle {
    let id = this.pools.indexOf(null);
    if (id < 0) id = this.pools.length;
    if (id >= MAX_POOLS) throw new Error(`data plane: more than ${MAX_POOLS} pools`);
    const sched = schedulerId(spec.scheduler);
    if (sched < 0) throw new Error(`data plane: unknown scheduler "${spec.scheduler}"`);
    const entry: PoolEntry = {
      id, scheduler: spec.scheduler, base: 0, count: 0, maglevSize: spec.maglevSize ?? MAGLEV_M,
      scratch: 0, scratchBytes: 0, table: 0, tableBytes: 0, specs: [],
    };
    this.pools[id] = entry;
    this.setPoolField(P_SCHED, id, sched);
    this.setPoolField(P_CURSOR, id, -1);
    this.setPoolField(P_RNG, id, fmix32(this.seed + id * 0x9e3779b9) || 1);
    this.setPoolField(P_DECAY, id, Math.max(1, Math.round(spec.decayMs ?? 10_000)));
    try {
      this.place(entry, spec.servers, spec.servers.map(() => -1));
    } catch (e) {
      this.pools[id] = null;
      throw e;
    }
    return entry;
  }

  /** The pool's servers become `servers`, in that order; `carry[k]` is the slot whose counters
   * and state server k keeps (active, smooth-wrr weight, state, effective weight), or -1 for a
   * new server. Slots move: the caller re-reads base from the handle. Only this pool is rebuilt. */
  setServers(handle: PoolHandle, servers: ServerSpec[], carry: number[]): void {
    const entry = this.entry(handle);
    this.place(entry, servers, carry);
  }

  /** Frees the pool's slots and table memory for reuse; its id may be handed out again. */
  removePool(handle: PoolHandle): void {
    const entry = this.entry(handle);
    this.releaseSlots(entry);
    this.heap.release(entry.scratch, entry.scratchBytes);
    this.heap.release(entry.table, entry.tableBytes);
    this.setPoolField(P_COUNT, entry.id, 0);
    this.pickers[entry.id] = NO_SERVER;
    this.pools[entry.id] = null;
  }

  /** The configured weight (an admin's `set weight`); the effective weight follows it. */
  setWeight(slot: number, weight: number): void {
    const pool = this.poolOfSlot[slot];
    const entry = pool >= 0 ? this.pools[pool] : null;
    if (entry && schedulerInfo(entry.scheduler).table === "ketama" && weight > this.weight[slot]) {
      // The ring has room for the configured weights only: lay the pool out again with room.
      const carry = Array.from({ length: entry.count }, (_, k) => entry.base + k);
      const specs = entry.specs.map((spec, k) => k === slot - entry.base ? { ...spec, weight } : spec);
      this.effectiveWeight[slot] = weight;
      this.place(entry, specs, carry);
      return;
    }
    this.weight[slot] = weight;
    this.setEffectiveWeight(slot, weight);
  }

  // Lays a pool's servers into a fresh slot range (and tables sized for them), carrying the
  // counters of servers that stay, then frees the old range. On failure nothing changes.
  private place(entry: PoolEntry, servers: ServerSpec[], carry: number[]): void {
    const count = servers.length;
    const base = this.slots.alloc(count);
    if (base < 0) throw new Error(`data plane: no room for ${count} more servers (at most ${MAX_SERVERS} in all)`);
    const scratchBytes = count * SCRATCH_WORDS * 4;
    const tableBytes = this.tableBytes(entry, servers);
    const scratch = this.heap.alloc(scratchBytes);
    const table = scratch < 0 ? -1 : this.heap.alloc(tableBytes);
    if (scratch < 0 || table < 0) {
      this.slots.release(base, count);
      if (scratch >= 0) this.heap.release(scratch, scratchBytes);
      throw new Error("data plane: table memory exhausted (too many table-based pools)");
    }
    this.ensure(Math.max(scratch + scratchBytes, table + tableBytes));
    servers.forEach((s, k) => {
      const i = base + k, from = carry[k] ?? -1;
      this.weight[i] = s.weight;
      this.flags[i] = s.backup ? FLAG_BACKUP : 0;
      this.maxConns[i] = s.maxConns ?? 0;
      this.setServerField(S_ID, i, idHash(s.address));
      if (from >= 0) {
        this.effectiveWeight[i] = this.effectiveWeight[from];
        this.setServerField(S_CW, i, this.serverField(S_CW, from));
        this.active[i] = this.active[from];
        this.state[i] = this.state[from];
        this.setServerField(S_RTT, i, this.serverField(S_RTT, from));
        this.setServerField(S_RTT_AT, i, this.serverField(S_RTT_AT, from));
      } else {
        this.effectiveWeight[i] = s.weight;
        this.setServerField(S_CW, i, 0);
        this.active[i] = 0;
        this.state[i] = s.down ? STATE_DOWN : STATE_UP;
        this.setServerField(S_RTT, i, 0);
        this.setServerField(S_RTT_AT, i, 0);
      }
      this.updateGate(i);
    });
    this.releaseSlots(entry);
    this.heap.release(entry.scratch, entry.scratchBytes);
    this.heap.release(entry.table, entry.tableBytes);
    for (let k = 0; k < count; k++) this.poolOfSlot[base + k] = entry.id;
    // Fresh tables start empty: a locality cache must not name slots of the old layout.
    new Uint8Array(this.memory, table, tableBytes).fill(0);
    Object.assign(entry, { base, count, scratch, scratchBytes, table, tableBytes, specs: servers });
    this.setPoolField(P_BASE, entry.id, base);
    this.setPoolField(P_COUNT, entry.id, count);
    // rr's cursor is a position in the pool: past the end of a shorter list it would pick a slot
    // outside the pool (another pool's server); it starts over instead.
    if (this.words[(POOLS_OFF >> 2) + P_CURSOR * MAX_POOLS + entry.id] >= count) this.setPoolField(P_CURSOR, entry.id, -1);
    this.setPoolField(P_SCRATCH, entry.id, scratch);
    this.setPoolField(P_TABLE, entry.id, table);
    this.setPoolField(P_TABLECAP, entry.id, this.tableCapacity(entry, tableBytes));
    this.setPoolField(P_TABLELEN, entry.id, 0);
    this.pickers[entry.id] = count === 0 ? NO_SERVER : this.pickerFor(entry.scheduler);
    this.rebuild(entry.id);
  }

  private releaseSlots(entry: PoolEntry): void {
    for (let k = 0; k < entry.count; k++) {
      const i = entry.base + k;
      this.poolOfSlot[i] = -1;
      // A freed slot is closed to every kernel until a pool takes it again.
      this.state[i] = STATE_DOWN;
      this.active[i] = 0;
      this.updateGate(i);
    }
    this.slots.release(entry.base, entry.count);
  }

  private entry(handle: PoolHandle): PoolEntry {
    const entry = this.pools[handle.id];
    if (entry !== handle) throw new Error(`data plane: pool ${handle.id} is not in this data plane any more`);
    return entry;
  }

  /** Server slot for a new session, or -1 when no server can take it. */
  pick(pool: number, key = 0): number {
    return this.pickers[pool](pool, key);
  }

  /** The keyed hash of a string's UTF-8, as a signed 32-bit int: pass it to pick() as is.
   * Computed in WASM when it is loaded (faster on Bun and Deno, bench/RESULTS.md). */
  hash(key: string): number {
    return this.wasm ? this.hashInWasm(key) : this.hashInTs(key);
  }

  /** The TS twin of the keyed hash. */
  hashInTs(key: string): number {
    return halfSipHashString(key, this.k0, this.k1);
  }

  /** The keyed hash computed in WASM: the key's UTF-8 is written to the key buffer first. */
  hashInWasm(key: string): number {
    return (this.wasm ?? this.twin).hashKey(this.writeKey(key));
  }

  /** Heap memory for another part's table (per-client limits: src/core/limits.ts; access rules'
   * prefix tables: src/core/lpm.ts), zeroed; the memory grows to cover it. Throws when the heap
   * is exhausted. */
  allocTable(bytes: number): number {
    const at = this.heap.alloc(bytes);
    if (at < 0) throw new Error(`data plane: no room for a ${bytes}-byte table (heap exhausted)`);
    this.ensure(at + bytes);
    new Uint8Array(this.memory, at, bytes).fill(0);
    return at;
  }

  releaseTable(at: number, bytes: number): void {
    this.heap.release(at, bytes);
  }

  /** Copies a key's UTF-8 into the key buffer (KEYBUF_OFF) and returns its length; ASCII by a
   * plain loop, which both engines compile to less than TextEncoder.encodeInto costs for short keys. */
  writeKey(key: string): number {
    const len = key.length, buf = this.keyBytes;
    if (len > buf.length) return this.encoder.encodeInto(key, buf).written;
    for (let i = 0; i < len; i++) {
      const c = key.charCodeAt(i);
      if (c > 0x7f) return this.encoder.encodeInto(key, buf).written;
      buf[i] = c;
    }
    return len;
  }

  setState(slot: number, state: ServerState): void {
    if (this.state[slot] === state) return;
    this.state[slot] = state;
    this.updateGate(slot);
    this.rebuildPoolOf(slot);
  }

  setEffectiveWeight(slot: number, weight: number): void {
    if (this.effectiveWeight[slot] === weight) return;
    this.effectiveWeight[slot] = weight;
    this.updateGate(slot);
    this.rebuildPoolOf(slot);
  }

  rebuild(pool: number): void {
    const entry = this.pools[pool];
    if (!entry || entry.count === 0) return;
    const table = schedulerInfo(entry.scheduler).table;
    if (table !== "none" && table !== "locality") this.kernelsFor(entry.scheduler).rebuild(pool);
  }

  /** Up with a weight (the kernels' `gate`): may be placed in a lookup table. */
  available(slot: number): boolean {
    return this.words[(SERVERS_OFF >> 2) + S_GATE * MAX_SERVERS + slot] >= 0;
  }

  /** Available and below its connection limit: may take a new session now (the kernels' test). */
  canTake(slot: number): boolean {
    const mc = this.maxConns[slot];
    return this.available(slot) && (mc === 0 || this.active[slot] < mc);
  }

  poolOf(slot: number): number {
    return this.poolOfSlot[slot];
  }

  private updateGate(slot: number): void {
    const open = this.state[slot] === STATE_UP && this.effectiveWeight[slot] > 0;
    this.setServerField(S_GATE, slot, open ? this.flags[slot] & FLAG_BACKUP : -1);
  }

  private rebuildPoolOf(slot: number): void {
    const pool = this.poolOfSlot[slot];
    if (pool >= 0) this.rebuild(pool);
  }

  private tableBytes(entry: PoolEntry, servers: ServerSpec[]): number {
    switch (schedulerInfo(entry.scheduler).table) {
      case "hash": return HASH_BUCKETS * 4;
      case "maglev": return entry.maglevSize * 4;
      // Room for every server at its configured weight (an agent may not raise it past that).
      case "ketama": return servers.reduce((sum, s) => sum + KETAMA_POINTS * Math.max(1, s.weight), 0) * 8;
      case "locality": return LB_BUCKETS * LB_ENTRY_WORDS * 4;
      case "none": return 0;
    }
  }

  private tableCapacity(entry: PoolEntry, bytes: number): number {
    switch (schedulerInfo(entry.scheduler).table) {
      case "hash": return HASH_BUCKETS;
      case "maglev": return entry.maglevSize;
      case "ketama": return bytes / 8;
      case "locality": return LB_BUCKETS;
      case "none": return 0;
    }
  }

  private serverField(f: number, i: number): number {
    return this.words[(SERVERS_OFF >> 2) + f * MAX_SERVERS + i];
  }

  private setServerField(f: number, i: number, v: number): void {
    this.words[(SERVERS_OFF >> 2) + f * MAX_SERVERS + i] = v;
  }

  /** An rr pool's position: its next pick starts at the server after it. Workers share one
   * (set before a pick, read after it), so rr turns over all of them. */
  cursor(pool: number): number {
    return this.words[(POOLS_OFF >> 2) + P_CURSOR * MAX_POOLS + pool];
  }

  setCursor(pool: number, position: number): void {
    this.setPoolField(P_CURSOR, pool, position);
  }

  /** lblc/lblcr: where the pool's table entry for `key` starts in `words` (LB_ENTRY_WORDS
   * words: key, set size, up to LB_SET_MAX slots). Workers share the table by copying an entry
   * in before a pick and out after it; an index, not a view: nothing is allocated per pick. */
  localityAt(pool: number, key: number): number {
    const table = this.words[(POOLS_OFF >> 2) + P_TABLE * MAX_POOLS + pool];
    return (table >> 2) + (key & (LB_BUCKETS - 1)) * LB_ENTRY_WORDS;
  }

  private setPoolField(f: number, p: number, v: number): void {
    this.words[(POOLS_OFF >> 2) + f * MAX_POOLS + p] = v;
  }
}

