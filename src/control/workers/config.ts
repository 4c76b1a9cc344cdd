// The top-level `workers:` key: how many processes move traffic. `auto` (the default) is one
// per core; a number is that many; 1 serves in the one process (as does auto on one core).
import { availableParallelism } from "node:os";
import type { Read } from "../../config/checker.ts";

export type WorkersSetting = number | "auto";

/** The most workers a node runs: far above any core count this runs on, low enough that a typo
 * (`workers: 1000`) is an error rather than a thousand processes. */
export const MAX_WORKERS = 256;

export const readWorkers: Read<WorkersSetting> = (c, value, path) => {
  if (value === "auto") return "auto";
  if (typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= MAX_WORKERS) return value;
  return c.expected(path, `auto or an integer 1..${MAX_WORKERS}`, value);
};

/** The number of worker processes a setting means on this machine. */
export function workerCount(setting: WorkersSetting): number {
  return setting === "auto" ? Math.max(1, Math.min(MAX_WORKERS, availableParallelism())) : setting;
}
