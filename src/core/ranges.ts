// A first-fit allocator of ranges in a fixed space (server slots, table memory), with freed ranges
// merged with their neighbours so live membership changes reuse what removals gave back.

export class RangeAllocator {
  /** Free ranges sorted by start, never adjacent (they are merged). */
  private readonly free: { start: number; size: number }[];

  constructor(start: number, end: number, private readonly align = 1) {
    this.free = end > start ? [{ start, size: end - start }] : [];
  }

  /** The start of a range of `size` units, or -1 when no free range is large enough. */
  alloc(size: number): number {
    const n = this.round(size);
    if (n === 0) return 0;
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      if (f.size < n) continue;
      const start = f.start;
      if (f.size === n) this.free.splice(i, 1);
      else { f.start += n; f.size -= n; }
      return start;
    }
    return -1;
  }

  release(start: number, size: number): void {
    const n = this.round(size);
    if (n === 0) return;
    let i = 0;
    while (i < this.free.length && this.free[i].start < start) i++;
    this.free.splice(i, 0, { start, size: n });
    // Merge with the next, then with the previous.
    const next = this.free[i + 1];
    if (next && start + n === next.start) { this.free[i].size += next.size; this.free.splice(i + 1, 1); }
    const prev = this.free[i - 1];
    if (prev && prev.start + prev.size === start) { prev.size += this.free[i].size; this.free.splice(i, 1); }
  }

  /** Units free in all (not necessarily in one range). */
  get available(): number {
    return this.free.reduce((sum, f) => sum + f.size, 0);
  }

  private round(size: number): number {
    return Math.ceil(size / this.align) * this.align;
  }
}
