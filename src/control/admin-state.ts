// What the control plane knows about the process that the admin API and metrics report: the
// generation serving now, the config file it came from and its checksum, the phase (starting,
// live, draining) and how reloads went. The supervisor owns it; a reload calls swapped() or
// reloadFailed().
import type { Generation } from "./generation.ts";
import { loadSampler } from "../core/overload.ts";

export type Phase = "starting" | "live" | "draining";

export interface ReloadRecord {
  ok: number;
  failed: number;
  /** ms since the epoch of the last attempt, 0 before any. */
  lastAt: number;
  lastOk: boolean;
  lastErrors: string[];
}

export class ControlState {
  readonly startedAt = Date.now();
  phase: Phase = "starting";
  /** SHA-256 (hex) of the config text the serving generation was built from; null without a file. */
  checksum: string | null = null;
  readonly reloads: ReloadRecord = { ok: 0, failed: 0, lastAt: 0, lastOk: true, lastErrors: [] };

  /** Re-reads the config and swaps generations (the supervisor's reload), for POST /api/reload. */
  reload: (() => Promise<{ ok: boolean; generation: number; errors?: string[] }>) | null = null;

  /** With workers: gathers their counters into the serving generation (bounded wait), before
   * the admin API or /metrics reads it. */
  refresh: (() => Promise<void>) | null = null;
  /** With workers: each worker's index, pid, state and restarts (/api/workers); null without. */
  workers: (() => unknown[] | null) | null = null;
  /** How late the overload guards' sampler runs, ms: this process's, or with workers the worst
   * worker's (the supervisor serves nothing, so its own loop sheds nothing). */
  eventLoopLagMs: () => number = () => loadSampler.lagMs;

  constructor(public generation: Generation, readonly file: string | null) {}

  /** Reads the config file once to checksum what the first generation was built from. */
  async checksumFile(read: (path: string) => Promise<string>): Promise<void> {
    if (this.file) this.checksum = await sha256Hex(await read(this.file)).catch(() => null);
  }

  /** A reload put `next` in service; `text` is the config text it was built from. */
  async swapped(next: Generation, text: string | null): Promise<void> {
    this.generation = next;
    this.checksum = text === null ? null : await sha256Hex(text);
    Object.assign(this.reloads, { ok: this.reloads.ok + 1, lastAt: Date.now(), lastOk: true, lastErrors: [] });
  }

  /** A reload was refused (invalid config, or the new generation could not start). */
  reloadFailed(errors: string[]): void {
    Object.assign(this.reloads, { failed: this.reloads.failed + 1, lastAt: Date.now(), lastOk: false, lastErrors: errors });
  }
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}
