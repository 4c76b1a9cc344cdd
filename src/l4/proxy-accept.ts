// `accept_proxy` for a listener that is not the L4 proxy's own (the HTTP edge's): reads the PROXY
// header off an accepted connection, bounded in size (the codec's) and time, then hands the
// connection, with the client address the header names, to whoever serves it.
import type { TcpHandlers, TcpSocket } from "../runtime/types.ts";
import { type Endpoint, type ProxyHeaderError, parseProxyHeader } from "./proxy-protocol.ts";

/** Why a connection was refused before it was served. */
export type ProxyRefusal = ProxyHeaderError | "timeout";

/**
 * Handlers for a just-accepted socket that read its PROXY header first. `serve` gets the client
 * (the header's source, or the socket's peer for a LOCAL header) and the bytes after the header,
 * and returns the handlers the connection's events go to from then on. `refused` hears of a
 * missing, malformed, too long or late header; the socket is closed.
 */
export function acceptProxyHeader(
  socket: TcpSocket, timeoutMs: number,
  serve: (client: Endpoint, rest: Uint8Array) => TcpHandlers,
  refused: (why: ProxyRefusal, reason: string) => void,
): TcpHandlers {
  let buf = new Uint8Array(0);
  let target: TcpHandlers | null = null;
  let done = false;
  const timer = setTimeout(() => {
    if (done) return;
    done = true;
    refused("timeout", `no complete PROXY header in ${timeoutMs} ms`);
    socket.destroy();
  }, timeoutMs);
  return {
    data(chunk) {
      if (target) { target.data(chunk); return; }
      if (done) return;
      const next = new Uint8Array(buf.length + chunk.length); // chunks are lent: copied
      next.set(buf);
      next.set(chunk, buf.length);
      buf = next;
      const r = parseProxyHeader(buf);
      if (r.status === "incomplete") return;
      done = true;
      clearTimeout(timer);
      if (r.status === "invalid") { refused(r.kind, r.reason); socket.destroy(); return; }
      const client = r.header.command === "proxy" && r.header.source
        ? r.header.source
        : { address: socket.remoteAddress, port: socket.remotePort };
      target = serve(client, buf.subarray(r.length));
    },
    drain() { target?.drain(); },
    close() {
      clearTimeout(timer);
      done = true;
      target?.close();
    },
  };
}
