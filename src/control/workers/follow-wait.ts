// What waits until every serving worker has applied a change of the pools' state (changes are
// numbered as the supervisor sends them): health's transition lines, so a reader that sees DOWN
// or EJECTED finds no worker still sending there. A worker that hangs holds nothing up for long.
export class FollowWait {
  private readonly waiting: { seq: number; then: () => void }[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** `followed`: the lowest change every serving worker applied (Infinity: none serves). */
  constructor(private readonly followed: () => number, private readonly timeoutMs: number) {}

  /** Runs `then` once change `seq` is followed, in the order added, or after timeoutMs. */
  add(seq: number, then: () => void): void {
    this.waiting.push({ seq, then });
    this.check();
  }

  /** A worker applied a change, or stopped serving; `all`: run everything now (stopping). */
  check(all = false): void {
    const followed = this.followed();
    while (this.waiting.length > 0 && (all || this.waiting[0].seq <= followed)) this.waiting.shift()!.then();
    if (this.waiting.length === 0) {
      if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    } else this.timer ??= setTimeout(() => { this.timer = null; this.check(true); }, this.timeoutMs);
  }
}
