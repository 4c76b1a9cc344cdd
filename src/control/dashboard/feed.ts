// The dashboard's live feed, GET /api/events (Server-Sent Events): on connect the chart history
// ("history") and a snapshot; then a snapshot every second with that second's sample (cause
// "tick"), and one at once when health reports a transition or an admin write changed something
// (cause "change": the first snapshot that shows a change always says so, even when the second's
// tick came first and carried it).
// A snapshot is what the read API says (status, pools, vrrp, l4), so the page shows nothing the
// API does not. Clients are bounded in number; one that stops reading is dropped once
// MAX_BACKLOG events wait for it, so memory stays bounded.
import { timers, type Repeating } from "../../core/timer.ts";
import { ApiError } from "../admin-http.ts";
import { poolsView, statusView, vrrpView } from "../admin-read.ts";
import { l4View } from "../admin-l4.ts";
import type { ControlState } from "../admin-state.ts";
import type { Generation } from "../generation.ts";
import { POOL_FIELDS, Sampler, SERVER_FIELDS } from "./samples.ts";

export const MAX_CLIENTS = 32;
const MAX_BACKLOG = 30;
const encoder = new TextEncoder();

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
}

export class LiveFeed {
  readonly sampler = new Sampler();
  private readonly clients = new Set<Client>();
  private readonly ticker: Repeating;
  private followed: Generation | null = null;
  private unfollow: () => void = () => {};
  private pokeQueued = false;
  /** Events sent, and clients dropped for not reading (for tests and the log). */
  sent = 0;
  dropped = 0;

  constructor(private readonly state: ControlState) {
    this.follow();
    this.sampler.sample(state.generation);
    this.ticker = timers.every(1000, () => this.tick());
  }

  get connected(): number {
    return this.clients.size;
  }

  /** The SSE response for one client; 503 when MAX_CLIENTS are connected. A client that goes
   * away cancels its stream (both runtimes do), which removes it. */
  open(): Response {
    if (this.clients.size >= MAX_CLIENTS) throw new ApiError(503, `the live feed has ${MAX_CLIENTS} clients already; close a dashboard`);
    let client: Client | null = null;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        client = { controller };
        this.clients.add(client);
        const history = this.sampler.ring.history();
        controller.enqueue(encoder.encode(`retry: 1000\n${frame("history", { fields: { pool: POOL_FIELDS, server: SERVER_FIELDS }, ...history })}`));
        controller.enqueue(encoder.encode(frame("snapshot", this.snapshot("connect", false))));
      },
      cancel: () => { if (client) this.clients.delete(client); },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" },
    });
  }

  /** Something changed (a health transition, an admin write): a snapshot goes out at once,
   * one for all the changes of this turn of the event loop. */
  poke(): void {
    if (this.pokeQueued || this.clients.size === 0) return;
    this.pokeQueued = true;
    setTimeout(() => {
      if (!this.pokeQueued) return; // a tick sent it already
      this.follow(); // after POST /api/reload: the new generation's health at once
      this.pokeQueued = false;
      this.broadcast(this.snapshot("change", false));
    }, 0);
  }

  /** Ends every stream (a server cannot stop while a response streams) and the ticker. */
  stop(): void {
    this.ticker.stop();
    this.unfollow();
    for (const c of [...this.clients]) this.close(c);
  }

  private tick(): void {
    this.follow();
    this.sampler.sample(this.state.generation);
    const cause = this.pokeQueued ? "change" : "tick";
    this.pokeQueued = false;
    if (this.clients.size > 0) this.broadcast(this.snapshot(cause, true));
  }

  /** Health events of the generation serving now; a reload swaps it (seen at the next tick, or
   * at once when the reload came through the API, which pokes). */
  private follow(): void {
    const g = this.state.generation;
    if (g === this.followed) return;
    this.unfollow();
    this.followed = g;
    this.unfollow = g.health.subscribe(() => this.poke());
    this.poke();
  }

  private snapshot(cause: "connect" | "tick" | "change", withSample: boolean) {
    const g = this.state.generation;
    return {
      at: Date.now(),
      cause,
      status: statusView(this.state),
      pools: poolsView(g),
      vrrp: vrrpView(g),
      l4: l4View(g),
      sample: withSample ? this.sampler.ring.latest() : null,
    };
  }

  private broadcast(data: unknown): void {
    if (this.clients.size === 0) return;
    const bytes = encoder.encode(frame("snapshot", data));
    for (const c of [...this.clients]) {
      if ((c.controller.desiredSize ?? 0) < -MAX_BACKLOG) { this.dropped++; this.close(c); continue; }
      try {
        c.controller.enqueue(bytes);
        this.sent++;
      } catch {
        this.clients.delete(c);
      }
    }
  }

  private close(c: Client): void {
    if (!this.clients.delete(c)) return;
    try { c.controller.close(); } catch { /* already closed by the client */ }
  }
}

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
