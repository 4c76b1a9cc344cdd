// One short timer polls every non-blocking socket the VRRP part reads (adverts, link changes):
// neither runtime can wait on a raw file descriptor, and one timer for all instances keeps ten
// of them as cheap as one. Stops when nothing is registered, so the process can exit.

/** How often sockets are read: bounds the delay before an advert is processed. */
export const POLL_INTERVAL_MS = 10;

type Poll = () => void;

const polls = new Set<Poll>();
let timer: ReturnType<typeof setInterval> | null = null;

function pollAll(): void {
  for (const poll of polls) {
    try {
      poll();
    } catch (e) {
      // A failing reader must not stop the others; it reports through its own log.
      console.error(`vrrp: poll failed: ${(e as Error).message}`);
    }
  }
}

export function addPoll(poll: Poll): void {
  polls.add(poll);
  timer ??= setInterval(pollAll, POLL_INTERVAL_MS);
}

export function removePoll(poll: Poll): void {
  polls.delete(poll);
  if (polls.size === 0 && timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}
