// The max_conns queue shared by every worker: per pool, its waiting sessions in one FIFO per
// priority (doubly linked lists over a table of entries in a shared segment), so its size and
// order hold over all workers. A freed session slot (a release in any worker) is granted to the
// best waiter: its entry is marked granted with the server's word, whose count the granter kept,
// and the waiter's worker collects it (at once when it is its own, else by polling). A full queue
// marks the waiter it sheds; its worker collects that too. Every update is under one SharedLock.
// A worker that dies leaves entries: its supervisor removes them (releaseOf), giving back the
// counts granted to them.
import { mapShared } from "../../ffi/shm.ts";
import { SharedLock } from "./shared-lock.ts";
import type { Collected, Ticket, WaitTable } from "../../balancer/shared-queue.ts";

const PRIORITIES = 10;

// Header words.
const LOCK = 0, TICKETS = 1, FREE = 2, HIGH = 3, HEADER = 4;
// A pool's words: how many wait, then the first and last entry of each priority (entry + 1; 0: none).
const LENGTH = 0, FIRST = 1, LAST = 1 + PRIORITIES, POOL_WORDS = 1 + 2 * PRIORITIES;
// An entry's words.
const STATE = 0, PID = 1, TICKET = 2, PRIORITY = 3, POOL = 4, WORD = 5, NEXT = 6, PREV = 7, ENTRY_WORDS = 8;
const FREE_STATE = 0, WAITING = 1, GRANTED = 2, SHED = 3;

/** The words a table of `pools` pools and `entries` waiters takes. */
export function waitTableWords(pools: number, entries: number): number {
  return HEADER + pools * POOL_WORDS + entries * ENTRY_WORDS;
}

/** Where the table is shared (a segment file), as a start message carries it. */
export interface WaitTablePlace {
  path: string;
  pools: number;
  entries: number;
}

/** Maps the table's segment (`create`: the supervisor, which makes the file). */
export function mapWaitTable(place: WaitTablePlace, create: boolean): SharedWaitTable {
  const words = waitTableWords(place.pools, place.entries);
  return new SharedWaitTable(new Int32Array(mapShared(place.path, words * 4, create)), place.pools, place.entries);
}

export class SharedWaitTable {
  private readonly lock: SharedLock;
  private readonly entriesAt: number;
  private readonly views = new Map<string, WaitTable>();

  constructor(private readonly w: Int32Array, readonly pools: number, readonly entries: number) {
    this.lock = new SharedLock(w, LOCK);
    this.entriesAt = HEADER + pools * POOL_WORDS;
  }

  /** Pool `index`'s queue as process `pid` uses it (one view each, kept). */
  pool(index: number, pid: number): WaitTable {
    if (index < 0 || index >= this.pools) throw new RangeError(`wait table: no pool ${index}`);
    const key = `${index}/${pid}`;
    let view = this.views.get(key);
    if (!view) this.views.set(key, view = this.view(index, pid));
    return view;
  }

  private view(index: number, pid: number): WaitTable {
    const w = this.w, base = this.poolBase(index);
    return {
      pid,
      get length() { return Atomics.load(w, base + LENGTH); },
      add: (priority, size) => this.lock.with(() => this.add(index, priority, size, pid)),
      grant: (word) => Atomics.load(w, base + LENGTH) === 0 ? null : this.lock.with(() => this.grant(index, word)),
      settled: (t) => this.settled(t),
      collect: (t) => this.lock.with(() => this.collect(t)),
    };
  }

  /** The entries of process `pid` (a worker that died): removed; each count granted to one is
   * given back through `release(word)`. */
  releaseOf(pid: number, release: (word: number) => void): void {
    this.lock.with(() => {
      const high = this.w[HIGH];
      for (let e = 0; e < high; e++) {
        const at = this.at(e), state = this.w[at + STATE];
        if (state === FREE_STATE || this.w[at + PID] !== pid) continue;
        if (state === WAITING) this.unlink(e);
        else if (state === GRANTED) release(this.w[at + WORD]);
        this.free(e);
      }
    });
  }

  private at(entry: number): number {
    return this.entriesAt + entry * ENTRY_WORDS;
  }

  private poolBase(index: number): number {
    return HEADER + index * POOL_WORDS;
  }

  private add(index: number, priority: number, size: number, pid: number): { mine: Ticket; displaced: Ticket | null } | null {
    const w = this.w, base = this.poolBase(index);
    let displaced: Ticket | null = null;
    if (w[base + LENGTH] >= size) {
      // Full: the newest of the lowest priority goes, unless it ranks as high as the newcomer.
      let lowest = 0;
      while (lowest < PRIORITIES && w[base + LAST + lowest] === 0) lowest++;
      if (lowest >= priority || lowest === PRIORITIES) return null;
      if (w[HIGH] >= this.entries && w[FREE] === 0) return null;
      const e = w[base + LAST + lowest] - 1;
      this.unlink(e);
      w[this.at(e) + STATE] = SHED;
      displaced = this.ticket(e);
    }
    const e = this.allocate();
    if (e < 0) return null; // the table is full: the newcomer is shed
    const at = this.at(e);
    w[at + PID] = pid;
    w[at + TICKET] = w[TICKETS] = (w[TICKETS] + 1) | 0;
    w[at + PRIORITY] = priority;
    w[at + POOL] = index;
    w[at + WORD] = -1;
    // Last of its priority: first come, first served within one.
    const last = w[base + LAST + priority];
    w[at + PREV] = last;
    w[at + NEXT] = 0;
    if (last) w[this.at(last - 1) + NEXT] = e + 1;
    else w[base + FIRST + priority] = e + 1;
    w[base + LAST + priority] = e + 1;
    w[base + LENGTH]++;
    Atomics.store(w, at + STATE, WAITING);
    return { mine: this.ticket(e), displaced };
  }

  private grant(index: number, word: number): Ticket | null {
    const w = this.w, base = this.poolBase(index);
    let p = PRIORITIES - 1;
    while (p >= 0 && w[base + FIRST + p] === 0) p--;
    if (p < 0) return null;
    const e = w[base + FIRST + p] - 1;
    this.unlink(e);
    w[this.at(e) + WORD] = word;
    Atomics.store(w, this.at(e) + STATE, GRANTED);
    return this.ticket(e);
  }

  // Whether the entry is no longer waiting (granted, shed or gone): read without the lock, as a
  // worker polls its own waiters.
  private settled(t: Ticket): boolean {
    const at = this.at(t.entry);
    return Atomics.load(this.w, at + TICKET) !== t.ticket || Atomics.load(this.w, at + STATE) !== WAITING;
  }

  private collect(t: Ticket): Collected {
    const w = this.w, at = this.at(t.entry);
    if (w[at + TICKET] !== t.ticket || w[at + STATE] === FREE_STATE) return { state: "gone", word: -1 };
    const state = w[at + STATE], word = w[at + WORD];
    if (state === WAITING) this.unlink(t.entry);
    this.free(t.entry);
    return { state: state === WAITING ? "waiting" : state === GRANTED ? "granted" : "shed", word };
  }

  private ticket(e: number): Ticket {
    const at = this.at(e);
    return { entry: e, ticket: this.w[at + TICKET], pid: this.w[at + PID] };
  }

  private allocate(): number {
    const w = this.w;
    const head = w[FREE];
    if (head) { w[FREE] = w[this.at(head - 1) + NEXT]; return head - 1; }
    if (w[HIGH] >= this.entries) return -1;
    return w[HIGH]++;
  }

  private free(e: number): void {
    const at = this.at(e);
    Atomics.store(this.w, at + STATE, FREE_STATE);
    this.w[at + NEXT] = this.w[FREE];
    this.w[FREE] = e + 1;
  }

  // Takes a waiting entry out of its priority's list.
  private unlink(e: number): void {
    const w = this.w, at = this.at(e), base = this.poolBase(w[at + POOL]), p = w[at + PRIORITY];
    const prev = w[at + PREV], next = w[at + NEXT];
    if (prev) w[this.at(prev - 1) + NEXT] = next;
    else w[base + FIRST + p] = next;
    if (next) w[this.at(next - 1) + PREV] = prev;
    else w[base + LAST + p] = prev;
    w[base + LENGTH]--;
  }
}
