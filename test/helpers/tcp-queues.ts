// What the kernel knows about a loopback TCP connection, read with `ss -tin` (iproute2): bytes
// received and acknowledged over its life, and what sits in its queues now. With these, a test
// can tell how many bytes a process holds in its own memory between two of its sockets.
import { runtime } from "../../src/runtime/index.ts";

export interface TcpQueues {
  /** The process that has the socket open (0 when ss could not tell). */
  pid: number;
  /** Bytes that arrived and the process has not read yet. */
  recvQ: number;
  /** Bytes the process wrote that the peer has not acknowledged yet. */
  sendQ: number;
  /** Bytes received over the connection's life (tcpi_bytes_received). */
  bytesReceived: number;
  /** Bytes the peer acknowledged over the connection's life (tcpi_bytes_acked). */
  bytesAcked: number;
}

/** Every established TCP connection on this machine, by "local peer" address pair. */
export async function tcpConnections(): Promise<Map<string, TcpQueues>> {
  const child = runtime.spawn(["ss", "-tinpH", "state", "established"]);
  const [text] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  await child.exited;
  const found = new Map<string, TcpQueues>();
  // Each connection is a line "RecvQ SendQ local peer" followed by an indented line of tcp_info.
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i];
    const m = /^(\d+)\s+(\d+)\s+(\S+)\s+(\S+)/.exec(first);
    if (!m) continue;
    const info = lines[i + 1]?.startsWith("\t") ? lines[++i] : "";
    const num = (name: string) => Number(new RegExp(`\\b${name}:(\\d+)`).exec(info)?.[1] ?? 0);
    found.set(`${m[3]} ${m[4]}`, {
      pid: Number(/pid=(\d+)/.exec(first)?.[1] ?? 0),
      recvQ: Number(m[1]), sendQ: Number(m[2]), bytesReceived: num("bytes_received"), bytesAcked: num("bytes_acked"),
    });
  }
  return found;
}

/** The connection whose local end is `local` and remote end `peer` ("127.0.0.1:port"). */
export function connection(all: Map<string, TcpQueues>, local: string, peer: string): TcpQueues | null {
  return all.get(`${local} ${peer}`) ?? null;
}

/** The connections process `pid` has open to `peer` ("127.0.0.1:port"). */
export function connectionsTo(all: Map<string, TcpQueues>, pid: number, peer: string): TcpQueues[] {
  return [...all].filter(([k, q]) => q.pid === pid && k.endsWith(` ${peer}`)).map(([, q]) => q);
}

/** Bytes a process has read from connection `from` and not yet handed to the kernel on
 * connection `to` (both are the process's own ends): what it buffers in between. */
export function heldBetween(from: TcpQueues, to: TcpQueues): number {
  const read = from.bytesReceived - from.recvQ;
  // Handed to the kernel: acknowledged by the peer, or still queued (Send-Q holds both the
  // unsent and the sent-but-unacknowledged bytes).
  const written = to.bytesAcked + to.sendQ;
  return read - written;
}
