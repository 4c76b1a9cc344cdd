// Scheduler state a single process keeps in its data plane and worker processes share: rr's
// position, smooth wrr's current weights, lblc/lblcr's key -> servers table, least_time's
// response-time estimates. Each copies the
// shared words into the data plane before a pick (enter) and back out after it (leave), under the
// pool's lock over processes where that is more than one word, so the kernels run unchanged and picks
// through any mix of workers follow the one process's sequence. Shared memory names a server by
// its `shared` index, the same in every worker (a slot is each worker's own).
import type { DataPlane } from "../core/dataplane.ts";
import { LB_BUCKETS, LB_ENTRY_WORDS, LB_SET_MAX } from "../core/layout.ts";
import { schedulerInfo, type SchedulerName } from "../core/schedulers.ts";

/** What of a pool's server this needs (a Server is one). */
export interface SharedMember {
  readonly slot: number;
  readonly shared: number;
}

/** A lock over processes (src/control/workers/shared-lock.ts is one). */
export interface CrossProcessLock {
  acquire(): void;
  release(): void;
  with<T>(section: () => T): T;
}

/** Where a pool's scheduler state is shared, as a worker is told. */
export interface SchedulerShare {
  /** rr: the word of the pool's position in the shared counts, -1 for none. */
  cursor: number;
  /** wrr: the current weights, by server `shared` index. */
  weights: Int32Array | null;
  /** lblc, lblcr: this pool's table (LB_BUCKETS entries of LB_ENTRY_WORDS), null for none. */
  table: Int32Array | null;
  /** least_time: each server's estimate and when it was set, two words by `shared` index (the
   * data plane's clock must be the same in every process: SHARED_CLOCK). */
  estimates: Int32Array | null;
  /** Held while wrr's weights or the table are copied and picked with; null: they stay per process. */
  lock: CrossProcessLock | null;
}

export interface SharedSchedulerState {
  /** Before a pick of the pool with `key`: puts the shared state in the data plane (taking the
   * lock where it needs one). Every enter is followed by leave, even when the pick throws. Two
   * calls rather than one around a closure: nothing is allocated per pick. */
  enter(key: number): void;
  /** After that pick: shares what it changed, and lets the lock go. */
  leave(): void;
  /** least_time: the data plane learns a response time of `member` (ms) from its shared
   * estimate, and shares the new one. */
  observe?(member: SharedMember, ms: number): void;
  /** least_time: `member`'s estimate as last set, µs (null: it has no shared word). */
  estimate?(member: SharedMember): number | null;
}

/** The shared state for a pool's scheduler, or null when its scheduler keeps none (or `share`
 * gives it no place: it stays per process). `members`: the pool's servers, in slot order. */
export function sharedSchedulerState(
  scheduler: SchedulerName, dp: DataPlane, pool: number, members: () => readonly SharedMember[],
  counts: Int32Array, share: SchedulerShare,
): SharedSchedulerState | null {
  if (scheduler === "rr") return share.cursor >= 0 ? new SharedCursor(dp, pool, members, counts, share.cursor) : null;
  if (!share.lock) return null;
  if (scheduler === "least_time" && share.estimates) return new SharedEstimates(dp, members, share.estimates, share.lock);
  if (scheduler === "wrr" && share.weights) return new SharedWeights(dp, members, share.weights, share.lock);
  if (schedulerInfo(scheduler).table === "locality" && share.table) return new SharedLocality(dp, pool, members, share.table, share.lock);
  return null;
}

/** rr: one position word, taken before the pick and given back after it (two workers picking at
 * the same instant may take the same turn: rare, and still rr). */
class SharedCursor implements SharedSchedulerState {
  constructor(
    private readonly dp: DataPlane, private readonly pool: number, private readonly members: () => readonly SharedMember[],
    private readonly words: Int32Array, private readonly index: number,
  ) {}

  enter(): void {
    // A position past the pool's end (it shrank in another worker's view) starts it afresh.
    const c = Atomics.load(this.words, this.index) - 1;
    this.dp.setCursor(this.pool, c >= 0 && c < this.members().length ? c : -1);
  }

  leave(): void {
    Atomics.store(this.words, this.index, this.dp.cursor(this.pool) + 1);
  }
}

/** wrr: each server's current weight is a shared word (nginx's upstream zone shares its peers'
 * the same way, under a lock). */
class SharedWeights implements SharedSchedulerState {
  /** Whether this pick holds the lock and copied the weights in (enter), for leave. */
  private held = false;

  constructor(
    private readonly dp: DataPlane, private readonly members: () => readonly SharedMember[],
    private readonly words: Int32Array, private readonly lock: CrossProcessLock,
  ) {}

  enter(): void {
    const members = this.members();
    // One member: its pick adds its weight and takes it back off, so no word changes; the lock
    // and the copies would share nothing.
    if (members.length <= 1) return;
    this.lock.acquire();
    this.held = true;
    const cw = this.dp.currentWeight, words = this.words;
    for (let k = 0; k < members.length; k++) {
      const s = members[k];
      if (s.shared >= 0 && s.slot >= 0) cw[s.slot] = words[s.shared];
    }
  }

  leave(): void {
    if (!this.held) return;
    this.held = false;
    const cw = this.dp.currentWeight, words = this.words, members = this.members();
    for (let k = 0; k < members.length; k++) {
      const s = members[k];
      if (s.shared >= 0 && s.slot >= 0) words[s.shared] = cw[s.slot];
    }
    this.lock.release();
  }
}

/** least_time: a server's estimate and its time are one estimate over every worker (what any of
 * them observed moves it; each one's picks weigh it), so a slow server is avoided by all. */
class SharedEstimates implements SharedSchedulerState {
  constructor(
    private readonly dp: DataPlane, private readonly members: () => readonly SharedMember[],
    private readonly words: Int32Array, private readonly lock: CrossProcessLock,
  ) {}

  enter(): void {
    this.lock.acquire();
    for (const s of this.members()) this.copyIn(s);
  }

  leave(): void {
    this.lock.release();
  }

  observe(member: SharedMember, ms: number): void {
    if (member.shared < 0) { this.dp.observeTime(member.slot, ms); return; }
    this.lock.acquire();
    try {
      this.copyIn(member);
      this.dp.observeTime(member.slot, ms);
      this.words[2 * member.shared] = this.dp.estimate[member.slot];
      this.words[2 * member.shared + 1] = this.dp.estimateAt[member.slot];
    } finally {
      this.lock.release();
    }
  }

  estimate(member: SharedMember): number | null {
    return member.shared < 0 ? null : Atomics.load(this.words, 2 * member.shared);
  }

  private copyIn(s: SharedMember): void {
    if (s.shared < 0 || s.slot < 0) return;
    this.dp.estimate[s.slot] = this.words[2 * s.shared];
    this.dp.estimateAt[s.slot] = this.words[2 * s.shared + 1];
  }
}

/** lblc, lblcr: the key's entry of a shared table, its servers by shared index, stands in for the
 * data plane's entry during the pick. A server the entry names that this pool does not have (any
 * more) leaves the set. */
class SharedLocality implements SharedSchedulerState {
  /** The key's entry in the shared table and in the data plane's words, from enter to leave. */
  private at = 0;
  private localAt = 0;

  constructor(
    private readonly dp: DataPlane, private readonly pool: number, private readonly members: () => readonly SharedMember[],
    private readonly table: Int32Array, private readonly lock: CrossProcessLock,
  ) {}

  enter(key: number): void {
    const at = this.at = (key & (LB_BUCKETS - 1)) * LB_ENTRY_WORDS, table = this.table;
    this.lock.acquire();
    const local = this.dp.words, l = this.localAt = this.dp.localityAt(this.pool, key), members = this.members();
    let n = 0;
    for (let k = 0; k < table[at + 1] && k < LB_SET_MAX; k++) {
      const word = table[at + 2 + k];
      for (const m of members) if (m.shared === word && m.slot >= 0) { local[l + 2 + n++] = m.slot; break; }
    }
    local[l] = table[at];
    local[l + 1] = n;
  }

  leave(): void {
    const at = this.at, table = this.table, local = this.dp.words, l = this.localAt, members = this.members();
    // Members are laid out in slot order from the first one's slot.
    const base = members.length > 0 ? members[0].slot : 0;
    let kept = 0;
    for (let k = 0; k < local[l + 1]; k++) {
      const s = members[local[l + 2 + k] - base];
      if (s && s.shared >= 0) table[at + 2 + kept++] = s.shared;
    }
    table[at] = local[l];
    table[at + 1] = kept;
    this.lock.release();
  }
}
