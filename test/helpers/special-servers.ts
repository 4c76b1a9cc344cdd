// Upstreams that misbehave in ways an HTTP server framework will not: they die halfway through a
// response, or speak after an Upgrade. Raw node:net servers, on loopback.
import net from "node:net";

export interface RawServer {
  port: number;
  address: string;
  hits: () => number;
  stop(): Promise<void>;
}

function rawServer(onRequest: (sock: net.Socket, head: string, rest: Buffer) => void): Promise<RawServer> {
  let hits = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    let buf = Buffer.alloc(0), answered = false;
    sock.on("data", (d: Buffer) => {
      if (answered) return;
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      answered = true;
      hits++;
      onRequest(sock, buf.subarray(0, end).toString("latin1"), buf.subarray(end + 4));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port, address: `127.0.0.1:${port}`, hits: () => hits,
        stop: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
      });
    });
  });
}

/** Promises 100000 bytes, sends 1000, then resets the connection. */
export function dyingServer(): Promise<RawServer> {
  return rawServer((sock) => {
    sock.write("HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + "d".repeat(1000), () => setTimeout(() => sock.destroy(), 50));
  });
}

/** Answers an Upgrade with 101, then echoes every byte back in upper case. */
export function upgradeEchoServer(): Promise<RawServer> {
  return rawServer((sock, head, rest) => {
    if (!/\r\nupgrade: *echo/i.test(head)) {
      sock.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      return;
    }
    sock.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
    const echo = (d: Buffer) => sock.write(d.toString("latin1").toUpperCase());
    if (rest.length) echo(rest);
    sock.on("data", echo);
  });
}
