// One timer polls every non-blocking socket the VRRP part reads (adverts, link changes): neither
// runtime can wait on a raw file descriptor, and one timer for all instances keeps ten of them
// as cheap as one. Each reader says how often it needs reading; the timer runs at the shortest.
// Adverts carry their kernel arrival time, so a later read does not delay the protocol's timers.
// Stops when nothing is registered, so the process can exit.

type Poll = () => void;

const polls = new Map<Poll, number>();
let timer: ReturnType<typeof setInterval> | null = null;
let timerEveryMs = 0;

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
  if (everyMs === timerEveryMs) return;
  if (timer !== null) clearInterval(timer);
  timer = everyMs === 0 ? null : setInterval(pollAll, everyMs);
  timerEveryMs = everyMs;
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
