// What a worker reports to its supervisor per event loop turn rather than per event: items pushed
// during one turn go out together in one message (a 0 ms timer fires after the turn's I/O
// callbacks), so a busy worker sends few messages and an idle one reports at once.
export class TurnBatch<T> {
  private items: T[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly send: (items: T[]) => void) {}

  push(item: T): void {
    this.items.push(item);
    this.timer ??= setTimeout(() => this.flush(), 0);
  }

  /** Sends what is pending now (a worker that stops). */
  flush(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    this.send(items);
  }
}
