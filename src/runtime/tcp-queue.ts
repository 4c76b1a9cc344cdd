// The write queue both TCP adapters share: bytes the kernel did not take yet, in order.
export const HIGH_WATER = 256 * 1024;

export class WriteQueue {
  private chunks: Uint8Array[] = [];
  bytes = 0;

  get empty(): boolean {
    return this.chunks.length === 0;
  }

  push(data: Uint8Array): void {
    this.chunks.push(data);
    this.bytes += data.length;
  }

  /** Offers queued chunks to `write` (which returns how many bytes it took) until it takes less. */
  flush(write: (data: Uint8Array) => number): void {
    while (this.chunks.length > 0) {
      const head = this.chunks[0];
      const n = write(head);
      this.bytes -= Math.max(0, n);
      if (n >= head.length) { this.chunks.shift(); continue; }
      if (n > 0) this.chunks[0] = head.subarray(n);
      return;
    }
  }

  shift(): Uint8Array | undefined {
    const head = this.chunks.shift();
    if (head) this.bytes -= head.length;
    return head;
  }

  clear(): void {
    this.chunks = [];
    this.bytes = 0;
  }
}
