// What a wrk run printed: the one reader of its summary for the tests and the benches.
export interface WrkSummary {
  rps: number;
  requests: number;
  /** The 99th percentile latency in ms (NaN without --latency). */
  p99ms: number;
  non2xx: number;
  /** Socket errors: connect, read, write, timeout. */
  socket: [number, number, number, number];
  /** non2xx plus every socket error. */
  errors: number;
}

export function parseWrk(out: string): WrkSummary {
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socket = (sock ? sock.slice(1).map(Number) : [0, 0, 0, 0]) as WrkSummary["socket"];
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    p99ms: p99 ? Number(p99[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[p99[2]] : NaN,
    non2xx,
    socket,
    errors: non2xx + socket.reduce((s, x) => s + x, 0),
  };
}
