// One periodic entry on the process's timer polls every non-blocking socket the VRRP part reads
// (adverts, link changes): neither runtime can wait on a raw file descriptor, and one poll for all
// instances keeps ten of them as cheap as one. Each reader says how often it needs reading; the
// poll runs at the shortest, exactly on time (no coalescing: VRRP figures are sub-ms).
// Adverts carry their kernel arrival time, so a later read does not delay the protocol's timers.
// Stops when nothing is registered, so the process can exit.
import { type Repeating, timers } from "../core/timer.ts";

type Poll = () => void;

const polls = new Map<Poll, number>();
let repeating: Repeating | null = null;

function pollAll(): void {
  for (const poll of polls.keys()) {
    try {
      poll();
    } catch (e) {
      // A failing reader must not stop the others.
      console.error(`vrrp: poll failed: ${(e as Error).message}`);
    }
  }
}

function retime(): void {
  const everyMs = polls.size === 0 ? 0 : Math.min(...polls.values());
  if (everyMs === (repeating?.periodMs ?? 0)) return;
  repeating?.stop();
  repeating = everyMs === 0 ? null : timers.every(everyMs, pollAll);
}

/** Reads `poll` at least every `everyMs`. */
export function addPoll(poll: Poll, everyMs: number): void {
  polls.set(poll, Math.max(1, Math.round(everyMs)));
  retime();
}

export function removePoll(poll: Poll): void {
  polls.delete(poll);
  retime();
}
