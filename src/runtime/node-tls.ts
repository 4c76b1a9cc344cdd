// TLS listeners on both runtimes through node:tls, which picks a certificate per SNI name
// (Bun.listen takes one certificate; Deno.listenTls has no SNI). Plain TCP stays on each
// runtime's own, faster API.
import tls from "node:tls";
import type net from "node:net";
import { listenError, type ListenTcpOptions, type TcpHandlers, type TcpListener, type TcpSocket, type TlsCertificate } from "./types.ts";

class NodeTcp implements TcpSocket {
  private closed = false;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly alpnProtocol: string | null;
  readonly localAddress: string;
  readonly localPort: number;

  constructor(private readonly s: net.Socket, public handlers: TcpHandlers) {
    this.remoteAddress = (s.remoteAddress ?? "").replace(/^::ffff:/, "");
    this.remotePort = s.remotePort ?? 0;
    this.alpnProtocol = (s as tls.TLSSocket).alpnProtocol || null;
    this.localAddress = (s.localAddress ?? "").replace(/^::ffff:/, "");
    this.localPort = s.localPort ?? 0;
    s.setNoDelay(true);
    s.on("data", (d: Uint8Array) => this.handlers.data(d));
    s.on("drain", () => this.handlers.drain());
    s.on("close", () => this.onClose());
    s.on("error", () => this.onClose());
  }

  get pending(): number { return this.s.writableLength; }
  /** node:net hands out a new Buffer per read. */
  readonly chunksOwned = true;

  write(data: Uint8Array, offset = 0, length = data.length - offset, keep = false): boolean {
    if (this.closed) return false;
    // node keeps what it is given: a copy, unless handed over.
    const end = offset + length;
    return this.s.write(keep ? data.subarray(offset, end) : data.slice(offset, end));
  }

  end(): void { this.s.end(); }
  shutdown(): void { this.s.end(); }
  destroy(): void { this.s.destroy(); this.onClose(); }
  pause(): void { this.s.pause(); }
  resume(): void { this.s.resume(); }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.close();
  }
}

/** The certificate for an SNI name: an exact name, then a leading wildcard, then the first. */
export function certificateFor(certs: TlsCertificate[], name: string | undefined): TlsCertificate {
  const n = (name ?? "").toLowerCase();
  return certs.find((c) => c.serverNames.includes(n))
    ?? certs.find((c) => c.serverNames.some((p) => p.startsWith("*.") && n.endsWith(p.slice(1)) && n.length > p.length - 1))
    ?? certs[0];
}

export function listenTls(o: ListenTcpOptions): Promise<TcpListener> {
  let certs = o.tls!;
  const contextsOf = (list: TlsCertificate[]) => new Map(list.map((c) => [c, tls.createSecureContext({ cert: c.cert, key: c.key })]));
  let contexts = contextsOf(certs);
  const server = tls.createServer({
    cert: certs[0].cert,
    key: certs[0].key,
    SNICallback: (name, done) => done(null, contexts.get(certificateFor(certs, name))),
    ...(o.alpn ? { ALPNProtocols: o.alpn } : {}),
  }, (socket) => {
    const s = new NodeTcp(socket, { data() {}, drain() {}, close() {} });
    s.handlers = o.accept(s);
  });
  // Every accepted TCP connection, handshake done or not: close() waits for all of them, so stop
  // must end them itself (a client that connected just before stop is not yet the edge's).
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once("error", (e: Error & { code?: string }) => {
      // Deno's node:net reports bind's EADDRNOTAVAIL as EINVAL (Deno 2.9), which a fresh listen
      // socket cannot otherwise get from bind.
      const misreported = "Deno" in globalThis && e.code === "EINVAL";
      reject(listenError(o.hostname, o.port, misreported ? { code: "EADDRNOTAVAIL" } : e));
    });
    server.listen({ port: o.port, host: o.hostname, reusePort: o.reusePort ?? false } as net.ListenOptions, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        // The SNI callback reads these on every handshake; a client without SNI gets the
        // server's own context, so that is replaced too.
        setCertificates: (next: TlsCertificate[]) => {
          contexts = contextsOf(next);
          certs = next;
          server.setSecureContext({ cert: next[0].cert, key: next[0].key });
        },
        close: () => { server.close(); },
        stop: () => new Promise<void>((r) => {
          server.close(() => r());
          for (const s of sockets) s.destroy();
        }),
      });
    });
  });
}
