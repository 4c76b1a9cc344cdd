// A count kept by processes that serve one port (a listener's open connections over its
// workers): one word of shared memory updated with Atomics, and this process's own part in its
// block, so the supervisor takes a dead worker's part back out (control/workers/session-segment.ts).

export class SharedCount {
  /** `total[word]` is every process's count; `own[word]` this one's (null: it has no block). */
  constructor(private readonly total: Int32Array, private readonly own: Int32Array | null, private readonly word: number) {}

  get value(): number {
    return Atomics.load(this.total, this.word);
  }

  add(delta: number): void {
    if (this.own) this.own[this.word] += delta;
    Atomics.add(this.total, this.word, delta);
  }
}
