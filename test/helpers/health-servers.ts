// Real loopback servers for the health tests, switchable at run time between the ways servers
// break: answer 503, answer the wrong body, accept and never answer, close mid-response, die
// (stop listening and drop every connection), and come back on the same port.
import net from "node:net";

export type Mode =
  | "ok"
  | { status: number }
  | { body: string }
  | "hang"
  | "close-mid-response";

export class FlakyServer {
  mode: Mode = "ok";
  /** HTTP requests seen (health checks and proxied traffic alike). */
  requests = 0;
  /** Connections accepted. */
  connections = 0;
  /** When each request head arrived (performance.now()): the times the server saw each check. */
  readonly requestTimes: number[] = [];
  /** When each connection was accepted (performance.now()). */
  readonly connectTimes: number[] = [];
  port = 0;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly name: string, readonly body = `${name} ok\n`) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.server !== null;
  }

  /** Listens (on its old port when it had one: "comes back"). */
  async start(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Dies: stops listening and drops every open connection. */
  async kill(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.connections++;
    this.connectTimes.push(performance.now());
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
    let buffered = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf("\r\n\r\n"); end >= 0; end = buffered.indexOf("\r\n\r\n")) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        this.requests++;
        this.requestTimes.push(performance.now());
        if (!this.answer(socket, /^connection:\s*close/im.test(head))) return;
      }
    });
  }

  /** Writes the answer the current mode calls for; false when the connection is finished. */
  private answer(socket: net.Socket, close: boolean): boolean {
    const mode = this.mode;
    if (mode === "hang") return false; // accepted, read, never answered
    if (mode === "close-mid-response") {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b");
      socket.destroy();
      return false;
    }
    const status = typeof mode === "object" && "status" in mode ? mode.status : 200;
    const body = typeof mode === "object" && "body" in mode ? mode.body : this.body;
    const bytes = Buffer.byteLength(body);
    socket.write(`HTTP/1.1 ${status} ${status === 200 ? "OK" : "Status"}\r\nContent-Length: ${bytes}\r\n` +
      `Content-Type: text/plain\r\nX-Backend: ${this.name}\r\n${close ? "Connection: close\r\n" : ""}\r\n${body}`);
    if (close) socket.end();
    return !close;
  }
}

export async function startFlaky(name: string, body?: string): Promise<FlakyServer> {
  const s = new FlakyServer(name, body);
  await s.start();
  return s;
}

/** Waits until `predicate` holds, checking every `everyMs`, for at most `timeoutMs`; returns the
 * time it took in ms, or throws with `what` when it never held. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs: number, everyMs = 20): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < Math.ceil(timeoutMs / everyMs) + 1; i++) {
    if (predicate()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) break;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
