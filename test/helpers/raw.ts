// Raw TCP for tests that must control every byte: a client that sends exact bytes and reads
// until the peer closes (or a bounded wait), and an upstream that records what reaches it.
import net from "node:net";

export interface RawReply {
  text: string;
  /** True when the server closed the connection within the wait. */
  closed: boolean;
}

/** Sends the pieces (with pauses between them) and collects the answer for up to waitMs. */
export function rawExchange(port: number, pieces: (string | Uint8Array)[], waitMs = 1500, gapMs = 0): Promise<RawReply> {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let text = "", closed = false;
    const done = () => { clearTimeout(timer); sock.destroy(); resolve({ text, closed }); };
    const timer = setTimeout(done, waitMs);
    sock.on("data", (d: Buffer) => { text += d.toString("latin1"); });
    sock.on("end", () => { closed = true; done(); });
    sock.on("close", () => { closed = true; done(); });
    sock.on("error", () => {});
    sock.on("connect", async () => {
      for (const p of pieces) {
        sock.write(typeof p === "string" ? Buffer.from(p, "latin1") : p);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

/** The status codes of every response in a raw reply, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/** An upstream that answers each request head with a small 200 naming the request line, and
 * records every byte it received. It frames bodies by Content-Length or chunked encoding. */
export interface Sink {
  port: number;
  received: () => string;
  connections: () => number;
  reset(): void;
  stop(): Promise<void>;
}

export function startSink(): Promise<Sink> {
  let received = "", connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    connections++;
    sockets.add(sock);
    let buf = "";
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    sock.on("data", (d: Buffer) => {
      const s = d.toString("latin1");
      received += s;
      buf += s;
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.slice(0, end);
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        const need = /\r\ntransfer-encoding: *chunked/i.test(head) ? chunkedEnd(buf, end + 4) : end + 4 + (cl ? Number(cl[1]) : 0);
        if (need < 0 || buf.length < need) return;
        buf = buf.slice(need);
        const line = head.split("\r\n")[0];
        const body = `sink saw: ${line}\n`;
        sock.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        received: () => received,
        connections: () => connections,
        reset: () => { received = ""; },
        stop: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
      });
    });
  });
}

/** Where a chunked body starting at `at` ends (past its trailers' blank line), or -1 while it is
 * incomplete. Lenient: the sink records whatever it is sent. */
function chunkedEnd(buf: string, at: number): number {
  for (;;) {
    const eol = buf.indexOf("\r\n", at);
    if (eol < 0) return -1;
    const size = parseInt(buf.slice(at, eol), 16);
    if (!(size > 0)) {
      if (buf.startsWith("\r\n", eol + 2)) return eol + 4;
      const blank = buf.indexOf("\r\n\r\n", eol + 2);
      return blank < 0 ? -1 : blank + 4;
    }
    at = eol + 2 + size + 2;
    if (at > buf.length) return -1;
  }
}
