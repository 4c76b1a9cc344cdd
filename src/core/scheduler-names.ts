// The scheduler vocabulary shared by config, CLI, the WASM kernels and their TS twins.
// Order matters: a scheduler's index here is its id in the WASM pool table.
export const SCHEDULERS = [
  "rr", "wrr", "lc", "wlc", "sed", "nq", "dh", "sh", "lblc", "lblcr",
  "mh", "ketama", "random", "two", "first",
] as const;
export type SchedulerName = typeof SCHEDULERS[number];

// Schedulers that place a request by a key hash; the default key each one hashes when the pool
// does not name one (LVS dh/lblc/lblcr hash the destination, which for HTTP is the URI).
export const KEYED_DEFAULT: Partial<Record<SchedulerName, "source" | "uri">> = {
  dh: "uri", sh: "source", lblc: "uri", lblcr: "uri", mh: "source", ketama: "source",
};
