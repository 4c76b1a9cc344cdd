// A lock over one word of a segment shared by the supervisor's processes, for the shared tables
// whose update is more than one atomic add (a limit table's decision, a persistence entry). The
// word holds the holder's pid; critical sections are a few microseconds, so a waiter spins, and
// yields the CPU between short spins: a holder the kernel preempted inside its section (workers
// share cores with each other and the rest of the machine) then runs again instead of the waiter
// burning its whole time slice. A holder that died inside one (SIGKILL) would hold it for ever:
// a waiter that spun long checks that the holder is alive and takes the lock over when it is not.
import process from "node:process";
import { yieldCpu } from "../../ffi/libc.ts";

/** Spins before a waiter yields the CPU once. */
const SPINS_BEFORE_YIELD = 64;
/** Spins before a waiter checks whether the holder is still alive. */
const SPINS_BEFORE_CHECK = 1 << 14;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code !== "ESRCH";
  }
}

export class SharedLock {
  private readonly me = process.pid;

  /** `words[index]` is the lock: 0 free, else the holder's pid. */
  constructor(private readonly words: Int32Array, private readonly index: number) {}

  acquire(): void {
    let spins = 0;
    for (;;) {
      const held = Atomics.compareExchange(this.words, this.index, 0, this.me);
      if (held === 0) return;
      if (held === this.me) throw new Error("SharedLock: acquired twice by one process (not reentrant)");
      if ((++spins & (SPINS_BEFORE_YIELD - 1)) === 0) yieldCpu();
      if (spins >= SPINS_BEFORE_CHECK) {
        spins = 0;
        // The holder died inside its section: take the lock over (its half-made change stays).
        if (!alive(held) && Atomics.compareExchange(this.words, this.index, held, this.me) === held) return;
      }
    }
  }

  release(): void {
    Atomics.compareExchange(this.words, this.index, this.me, 0);
  }

  /** Runs `section` holding the lock. */
  with<T>(section: () => T): T {
    this.acquire();
    try {
      return section();
    } finally {
      this.release();
    }
  }
}
