// The data plane's memory and its control-plane API (Katran's split: the kernels only read
// tables; this class fills them). One DataPlane per config generation: a reload builds a new one.
import {
  MAX_SERVERS, MAX_POOLS, SERVERS_OFF, POOLS_OFF, S_WEIGHT, S_EFFW, S_CW,
  S_ACTIVE, S_STATE, S_FLAGS, S_MAXCONN, S_ID, S_GATE, P_BASE, P_COUNT, P_SCHED, P_CURSOR, P_RNG, P_TABLE,
  P_TABLECAP, P_SCRATCH, HEAP_OFF, HEAP_END, GLOBALS_OFF, G_HASH_K0, G_HASH_K1, KEYBUF_OFF,
  KEYBUF_SIZE, STATE_UP, STATE_DOWN, STATE_DRAIN, FLAG_BACKUP, HASH_BUCKETS, LB_BUCKETS,
  LB_ENTRY_WORDS, MAGLEV_M, KETAMA_POINTS, SCRATCH_WORDS,
} from "./layout.ts";
import { SCHEDULERS, type SchedulerName } from "./scheduler-names.ts";
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
}

export interface PoolHandle {
  readonly id: number;
  readonly scheduler: SchedulerName;
  /** Slot of the pool's first server; its servers are slots base..base+count-1 in spec order. */
  readonly base: number;
  readonly count: number;
}

export interface DataPlaneOptions {
  /** Which kernels pick: "wasm", "ts", or per scheduler (the faster one, see bench/RESULTS.md). */
  impl?: KernelImpl | "auto";
  /** WASM module bytes; without them only the TS twins run (impl must be "ts"). */
  wasm?: Uint8Array;
  /** Seeds the hash key and the pools' PRNGs; random when absent (no hash flooding). */
  seed?: number | null;
}

// Per scheduler, the kernel that won the pick benchmark on Bun (bench/RESULTS.md).
const FASTER: Record<SchedulerName, KernelImpl> = {
  rr: "wasm", wrr: "wasm", lc: "wasm", wlc: "wasm", sed: "wasm", nq: "wasm", dh: "wasm",
  sh: "wasm", lblc: "wasm", lblcr: "wasm", mh: "wasm", ketama: "wasm", random: "wasm",
  two: "wasm", first: "wasm",
};

const TABLE_SCHEDULERS = new Set<SchedulerName>(["dh", "sh", "mh", "ketama"]);

export class DataPlane {
  readonly memory: ArrayBuffer;
  readonly wasm: Kernels | null;
  readonly twin: Kernels;
  /** Field views, made once: index by server slot. Write state and weights through setState and
   * setEffectiveWeight (they keep the gate and lookup tables in step); active directly. */
  readonly weight: Int32Array;
  readonly effectiveWeight: Int32Array;
  readonly active: Int32Array;
  readonly state: Int32Array;
  readonly flags: Int32Array;
  readonly maxConns: Int32Array;
  private readonly words: Int32Array;
  private readonly keyBytes: Uint8Array;
  private readonly encoder = new TextEncoder();
  private readonly poolOfSlot = new Int16Array(MAX_SERVERS).fill(-1);
  private readonly pickers: ((p: number, key: number) => number)[] = [];
  private readonly pools: PoolHandle[] = [];
  private readonly impl: KernelImpl | "auto";
  private readonly k0: number;
  private readonly k1: number;
  private readonly seed: number;
  private nextSlot = 0;
  private heapTop = HEAP_OFF;

  constructor(options: DataPlaneOptions = {}) {
    this.impl = options.impl ?? "auto";
    if (options.wasm) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(options.wasm as BufferSource), {});
      const ex = instance.exports as unknown as Kernels & { memory: WebAssembly.Memory };
      this.memory = ex.memory.buffer as ArrayBuffer;
      this.wasm = {
        pick: ex.pick, pickBatch: ex.pickBatch, rebuild: ex.rebuild, pickKey: ex.pickKey, hashKey: ex.hashKey,
      };
    } else {
      if (this.impl !== "ts") throw new Error(`data plane: impl "${this.impl}" needs the WASM module`);
      this.memory = new ArrayBuffer(HEAP_END);
      this.wasm = null;
    }
    this.twin = twinKernels(this.memory);
    this.words = new Int32Array(this.memory);
    this.keyBytes = new Uint8Array(this.memory, KEYBUF_OFF, KEYBUF_SIZE);
    const field = (f: number) => new Int32Array(this.memory, SERVERS_OFF + f * MAX_SERVERS * 4, MAX_SERVERS);
    this.weight = field(S_WEIGHT);
    this.effectiveWeight = field(S_EFFW);
    this.active = field(S_ACTIVE);
    this.state = field(S_STATE);
    this.flags = field(S_FLAGS);
    this.maxConns = field(S_MAXCONN);
    this.seed = options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    this.k0 = fmix32(this.seed ^ 0x243f6a88);
    this.k1 = fmix32(this.seed ^ 0x85a308d3);
    this.words[(GLOBALS_OFF + G_HASH_K0) >> 2] = this.k0;
    this.words[(GLOBALS_OFF + G_HASH_K1) >> 2] = this.k1;
  }

  /** The kernels used for a scheduler under this plane's impl setting. */
  kernelsFor(scheduler: SchedulerName): Kernels {
    const choice = this.impl === "auto" ? FASTER[scheduler] : this.impl;
    return choice === "wasm" && this.wasm ? this.wasm : this.twin;
  }

  addPool(spec: PoolSpec): PoolHandle {
    const id = this.pools.length, count = spec.servers.length, base = this.nextSlot;
    if (id >= MAX_POOLS) throw new Error(`data plane: more than ${MAX_POOLS} pools`);
    if (base + count > MAX_SERVERS) throw new Error(`data plane: more than ${MAX_SERVERS} servers`);
    const sched = SCHEDULERS.indexOf(spec.scheduler);
    if (sched < 0) throw new Error(`data plane: unknown scheduler "${spec.scheduler}"`);
    this.nextSlot += count;
    spec.servers.forEach((s, k) => {
      const i = base + k;
      this.weight[i] = s.weight;
      this.effectiveWeight[i] = s.weight;
      this.setServerField(S_CW, i, 0);
      this.active[i] = 0;
      this.state[i] = s.down ? STATE_DOWN : STATE_UP;
      this.flags[i] = s.backup ? FLAG_BACKUP : 0;
      this.maxConns[i] = s.maxConns ?? 0;
      this.setServerField(S_ID, i, idHash(s.address));
      this.updateGate(i);
      this.poolOfSlot[i] = id;
    });
    this.setPoolField(P_BASE, id, base);
    this.setPoolField(P_COUNT, id, count);
    this.setPoolField(P_SCHED, id, sched);
    this.setPoolField(P_CURSOR, id, -1);
    this.setPoolField(P_RNG, id, fmix32(this.seed + id * 0x9e3779b9) || 1);
    this.setPoolField(P_SCRATCH, id, this.alloc(count * SCRATCH_WORDS * 4));
    const [table, cap] = this.tableFor(spec);
    this.setPoolField(P_TABLE, id, table);
    this.setPoolField(P_TABLECAP, id, cap);
    const handle: PoolHandle = { id, scheduler: spec.scheduler, base, count };
    this.pools.push(handle);
    const k = this.kernelsFor(spec.scheduler);
    this.pickers[id] = k.pick;
    this.rebuild(id);
    return handle;
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

  // Copies a key's UTF-8 into the key buffer; ASCII by a plain loop, which both engines compile
  // to less than TextEncoder.encodeInto costs for short keys.
  private writeKey(key: string): number {
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
    const handle = this.pools[pool];
    if (TABLE_SCHEDULERS.has(handle.scheduler)) this.kernelsFor(handle.scheduler).rebuild(pool);
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

  private tableFor(spec: PoolSpec): [offset: number, capacity: number] {
    switch (spec.scheduler) {
      case "dh": case "sh":
        return [this.alloc(HASH_BUCKETS * 4), HASH_BUCKETS];
      case "mh": {
        const m = spec.maglevSize ?? MAGLEV_M;
        return [this.alloc(m * 4), m];
      }
      case "ketama": {
        // Room for every server at its configured weight (an agent may not raise it past that).
        const cap = spec.servers.reduce((sum, s) => sum + KETAMA_POINTS * Math.max(1, s.weight), 0);
        return [this.alloc(cap * 8), cap];
      }
      case "lblc": case "lblcr": {
        const off = this.alloc(LB_BUCKETS * LB_ENTRY_WORDS * 4);
        return [off, LB_BUCKETS];
      }
      default:
        return [0, 0];
    }
  }

  private alloc(bytes: number): number {
    const off = this.heapTop;
    const end = off + ((bytes + 7) & ~7);
    if (end > HEAP_END) throw new Error("data plane: table memory exhausted (too many table-based pools)");
    this.heapTop = end;
    return off;
  }

  private setServerField(f: number, i: number, v: number): void {
    this.words[(SERVERS_OFF >> 2) + f * MAX_SERVERS + i] = v;
  }

  private setPoolField(f: number, p: number, v: number): void {
    this.words[(POOLS_OFF >> 2) + f * MAX_POOLS + p] = v;
  }
}

