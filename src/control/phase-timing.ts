// Named phases of a piece of work and how long each took (wall and the process's CPU time, which
// other work on a busy machine does not inflate), for a reload's timing line.
import process from "node:process";

export class PhaseTiming {
  readonly phases: [string, number][] = [];
  private last = performance.now();
  private readonly cpuStart = process.cpuUsage();

  /** Closes the phase since the previous mark (or the start). */
  mark(name: string): void {
    const now = performance.now();
    this.phases.push([name, now - this.last]);
    this.last = now;
  }

  /** CPU time (user + system, all threads) since this was made, ms. */
  cpuMs(): number {
    const c = process.cpuUsage(this.cpuStart);
    return (c.user + c.system) / 1000;
  }

  toString(): string {
    return this.phases.map(([name, ms]) => `${name} ${ms.toFixed(1)} ms`).join(", ");
  }
}
