// Real HTTP servers on loopback that tests put behind Fulcrum. Each answers with JSON saying who
// it is and what it received, unless told to misbehave.
import { runtime, type HttpServer } from "../../src/runtime/index.ts";

// "hold": answer (as "echo") only when the test calls finish(), oldest request first, so a test
// decides how long each request stays active on its server.
export type Behaviour = "echo" | "hang" | "hold" | { status: number } | { delayMs: number };

export interface Backend {
  name: string;
  port: number;
  address: string;
  /** Requests this backend has seen. */
  hits: number;
  behaviour: Behaviour;
  /** Requests a "hold" backend has received and not yet answered. */
  readonly held: number;
  /** A "hold" backend answers its oldest held request. */
  finish(): void;
  stop(): Promise<void>;
}

export interface Echo {
  backend: string;
  method: string;
  target: string;
  headers: Record<string, string>;
  bodyBytes: number;
  bodySum: number;
}

export async function startBackend(name: string, behaviour: Behaviour = "echo"): Promise<Backend> {
  const pending = new Set<() => void>();
  const holding: (() => void)[] = [];
  let server: HttpServer;
  const b: Backend = {
    name, port: 0, address: "", hits: 0, behaviour,
    get held() { return holding.length; },
    finish() {
      const release = holding.shift();
      if (!release) throw new Error(`${name} holds no request`);
      release();
    },
    stop: async () => {
      for (const release of pending) release();
      for (const release of holding.splice(0)) release();
      await server.stop();
    },
  };
  server = await runtime.serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      b.hits++;
      if (b.behaviour === "hang") {
        // Accept and never answer, until the test stops the backend.
        await new Promise<void>((resolve) => pending.add(resolve));
        return new Response("late\n");
      }
      if (b.behaviour === "hold") await new Promise<void>((resolve) => holding.push(resolve));
      if (typeof b.behaviour === "object" && "delayMs" in b.behaviour) {
        await new Promise((r) => setTimeout(r, (b.behaviour as { delayMs: number }).delayMs));
        return Response.json({ backend: name });
      }
      if (typeof b.behaviour === "object") return new Response(`${name} says ${b.behaviour.status}\n`, { status: b.behaviour.status });
      const url = new URL(req.url);
      const body = new Uint8Array(await req.arrayBuffer());
      let sum = 0;
      for (const x of body) sum = (sum + x) % 65521;
      const echo: Echo = {
        backend: name,
        method: req.method,
        target: url.pathname + url.search,
        headers: Object.fromEntries(req.headers),
        bodyBytes: body.length,
        bodySum: sum,
      };
      const size = Number(url.searchParams.get("size") ?? 0);
      if (size > 0) return new Response(new Uint8Array(size).fill(120), { headers: { "x-backend": name } });
      return Response.json(echo, {
        headers: { "x-backend": name, "x-remove-me": "1", "keep-alive": "timeout=5", connection: "keep-alive" },
      });
    },
  });
  b.port = server.port;
  b.address = `127.0.0.1:${server.port}`;
  return b;
}

/** A loopback port with nothing listening on it (bound, then released). */
/** A port free now, for a server a test starts later. It is drawn below the kernel's ephemeral
 * range (32768-60999 by default): a port from that range, once released, can be taken by any
 * outgoing connection on the machine before the test binds it again. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    try {
      const s = await runtime.serveHttp({ hostname: "127.0.0.1", port, fetch: () => new Response("") });
      await s.stop();
      return port;
    } catch { /* taken: draw again */ }
  }
  const s = await runtime.serveHttp({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const port = s.port;
  await s.stop();
  return port;
}
