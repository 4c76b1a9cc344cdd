// A pool's max_conns queue when workers share it (the table: control/workers/wait-table.ts):
// this process's waiters, each an entry of the shared table. Its size and priority order hold
// over every worker. A slot freed in any worker is granted to the best waiter of all, with the
// session count kept for it; this process sees a grant or a shed of its own waiters at once when
// it made them, else by polling every 5 ms while it has waiters. The poll also hands free slots
// (freed while nobody waited yet, a server back) to the best waiter.
import type { QueuePolicy } from "./config.ts";

/** A waiter's place in a shared queue: its entry, the ticket that tells this wait from a later
 * one in the same entry, and the process that waits. */
export interface Ticket {
  entry: number;
  ticket: number;
  pid: number;
}

/** What a wait had come to when its process collected it; `word`: a granted slot's server word. */
export interface Collected {
  state: "waiting" | "granted" | "shed" | "gone";
  word: number;
}

/** One pool's queue in the table shared by the workers, as one process uses it. */
export interface WaitTable {
  /** This process's pid: a ticket with it is a waiter of this process. */
  readonly pid: number;
  /** Sessions waiting over every worker. */
  readonly length: number;
  /** Adds a waiter; null when the queue is full of waiters at least as important (shed this one).
   * `displaced`: the waiter shed to make room (marked shed; its process collects it). */
  add(priority: number, size: number): { mine: Ticket; displaced: Ticket | null } | null;
  /** Grants the best waiter a slot on the server of shared word `word` (its count kept); null
   * when none waits. */
  grant(word: number): Ticket | null;
  /** Whether the wait is no longer waiting (a poll's look, without the lock). */
  settled(ticket: Ticket): boolean;
  /** Takes the wait out of the table and says what it had come to. */
  collect(ticket: Ticket): Collected;
}

/** What the queue asks of its pool. */
export interface QueueHost {
  /** A slot on the server of `word` was granted to one of this process's waiters (its count
   * kept): the pool holds it for the waiter's next pick. */
  takeGrant(word: number): void;
  /** Hands slots free now to the best waiters (counted first, as a release's). */
  claimFree(): void;
  readonly queueServed: Float64Array;
  readonly queueShed: Float64Array;
}

/** How a wait in the max_conns queue ended: a slot freed up (pick again), the queue timeout, or
 * shed: the queue was full and this session the least important in it (HAProxy's priority
 * classes), to be answered 503 with Retry-After. */
export type WaitResult = "slot" | "timeout" | "shed";

interface Waiter {
  ticket: Ticket;
  priority: number;
  timer: ReturnType<typeof setTimeout>;
  wake: (result: WaitResult) => void;
}

const POLL_MS = 5;

export class SharedQueue {
  /** This process's waiters, by entry. */
  private readonly mine = new Map<number, Waiter>();
  private poll: ReturnType<typeof setInterval> | null = null;

  constructor(readonly table: WaitTable, private readonly host: QueueHost) {}

  get length(): number {
    return this.table.length;
  }

  /** How a wait of `priority` ends (see Pool.waitForSlot). */
  wait(priority: number, policy: QueuePolicy): Promise<WaitResult> {
    const added = this.table.add(priority, policy.size);
    if (!added) { this.host.queueShed[priority]++; return Promise.resolve("shed"); }
    if (added.displaced?.pid === this.table.pid) this.settle(added.displaced);
    return new Promise((wake) => {
      const waiter: Waiter = { ticket: added.mine, priority, wake, timer: setTimeout(() => this.settle(waiter.ticket), policy.timeoutMs) };
      this.mine.set(added.mine.entry, waiter);
      this.poll ??= setInterval(() => this.look(), POLL_MS);
    });
  }

  /** A slot on the server of `word` is free with its count kept: the best waiter of any worker
   * takes it. False when none waits (the caller gives the count back). */
  handOver(word: number): boolean {
    const t = this.table.grant(word);
    if (!t) return false;
    if (t.pid === this.table.pid) this.settle(t);
    return true;
  }

  /** Ends this process's waits (the pool stops); a slot granted meanwhile goes to the pool. */
  stop(): void {
    if (this.poll) { clearInterval(this.poll); this.poll = null; }
    for (const w of [...this.mine.values()]) this.settle(w.ticket, true);
  }

  // Collects a wait of this process (granted, shed, or timed out now) and wakes it.
  private settle(t: Ticket, stopping = false): void {
    const w = this.mine.get(t.entry);
    if (!w || w.ticket.ticket !== t.ticket) return;
    this.mine.delete(t.entry);
    clearTimeout(w.timer);
    const c = this.table.collect(t);
    if (c.state === "granted") this.host.takeGrant(c.word); // the pool gives it back if unused
    if (c.state === "granted" && !stopping) { this.host.queueServed[w.priority]++; w.wake("slot"); }
    else if (c.state === "shed") { this.host.queueShed[w.priority]++; w.wake("shed"); }
    else w.wake("timeout");
  }

  private look(): void {
    for (const w of [...this.mine.values()]) if (this.table.settled(w.ticket)) this.settle(w.ticket);
    if (this.mine.size > 0) this.host.claimFree();
    if (this.mine.size === 0 && this.poll) { clearInterval(this.poll); this.poll = null; }
  }
}
