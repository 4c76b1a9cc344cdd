// The one scheduler table: name, id in the WASM pool table, the key a keyed scheduler hashes by
// default, the lookup table it keeps, the kernel that won the pick benchmark on Bun
// (bench/RESULTS.md), and a one-line summary. Config, the data plane, the CLI help and the README
// table all read it; the ids must equal wasm/assembly/layout.ts's SCHED_* (a test pins that).

export type TableKind = "none" | "hash" | "maglev" | "ketama" | "locality";

export interface SchedulerInfo {
  readonly name: string;
  /** LVS dh/lblc/lblcr hash the destination, which for HTTP is the URI; null: not keyed. */
  readonly keyedBy: "source" | "uri" | null;
  readonly table: TableKind;
  readonly kernel: "wasm" | "ts";
  readonly summary: string;
}

export const SCHEDULER_TABLE = [
  { name: "rr", keyedBy: null, table: "none", kernel: "wasm", summary: "round robin" },
  { name: "wrr", keyedBy: null, table: "none", kernel: "wasm", summary: "smooth weighted round robin (nginx)" },
  { name: "lc", keyedBy: null, table: "none", kernel: "wasm", summary: "least active connections" },
  { name: "wlc", keyedBy: null, table: "none", kernel: "wasm", summary: "least active connections per weight" },
  { name: "sed", keyedBy: null, table: "none", kernel: "wasm", summary: "shortest expected delay: (active+1)/weight" },
  { name: "nq", keyedBy: null, table: "none", kernel: "wasm", summary: "an idle server first, else sed" },
  { name: "dh", keyedBy: "uri", table: "hash", kernel: "wasm", summary: "destination hash over weighted buckets" },
  { name: "sh", keyedBy: "source", table: "hash", kernel: "wasm", summary: "source hash over weighted buckets" },
  { name: "lblc", keyedBy: "uri", table: "locality", kernel: "wasm", summary: "a key keeps its server until it is overloaded" },
  { name: "lblcr", keyedBy: "uri", table: "locality", kernel: "wasm", summary: "a key keeps a set of up to 4 servers, least loaded in the set" },
  { name: "mh", keyedBy: "source", table: "maglev", kernel: "wasm", summary: "weighted Maglev consistent hash" },
  { name: "ketama", keyedBy: "source", table: "ketama", kernel: "wasm", summary: "ketama consistent hash ring (nginx hash consistent)" },
  { name: "random", keyedBy: null, table: "none", kernel: "wasm", summary: "weighted random" },
  { name: "two", keyedBy: null, table: "none", kernel: "wasm", summary: "power of two random choices, the less loaded" },
  { name: "first", keyedBy: null, table: "none", kernel: "wasm", summary: "the first server below its max_conns" },
  { name: "least_time", keyedBy: null, table: "none", kernel: "wasm", summary: "lowest peak-EWMA response time * (active+1), per weight" },
] as const satisfies readonly SchedulerInfo[];

export type SchedulerName = typeof SCHEDULER_TABLE[number]["name"];

/** Names in id order: a scheduler's index here is its id in the WASM pool table. */
export const SCHEDULERS: readonly SchedulerName[] = SCHEDULER_TABLE.map((s) => s.name);

const BY_NAME = new Map<string, SchedulerInfo>(SCHEDULER_TABLE.map((s) => [s.name, s]));

export function schedulerInfo(name: SchedulerName): SchedulerInfo {
  return BY_NAME.get(name)!;
}

export function schedulerId(name: SchedulerName): number {
  return SCHEDULERS.indexOf(name);
}
