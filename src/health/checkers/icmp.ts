// ICMP echo check (keepalived PING_CHECK): one echo request per check on a raw socket (through
// src/ffi/socket.ts, so it needs CAP_NET_RAW); up when the matching echo reply comes back within
// the timeout. One socket serves every ICMP check in the process; a short timer reads it only
// while replies are awaited (neither runtime can wait on a raw descriptor).
import dns from "node:dns";
import net from "node:net";
import { readFileSync } from "node:fs";
import {
  AF_INET, closeSocket, openSocket, receiveFrom, sendTo, SocketError, SOCK_RAW,
} from "../../ffi/socket.ts";
import { type Deadline, fail, pass, type CheckResult, type Probe } from "../result.ts";

const IPPROTO_ICMP = 1;
const ECHO_REPLY = 0;
const ECHO_REQUEST = 8;
const EPERM = 1;
const EACCES = 13;
const CAP_NET_RAW = 13;
/** How often the socket is read while a reply is awaited: bounds the measured round trip's error. */
const POLL_MS = 5;
const PAYLOAD = new TextEncoder().encode("fulcrum-health-icmp");

/** Why ICMP checks cannot run here, in words an operator can act on. */
export class IcmpUnavailableError extends Error {}

interface Waiting {
  address: string;
  sentAt: number;
  resolve: (r: CheckResult) => void;
}

/** The process's echo socket and the requests awaiting replies. */
class Pinger {
  private readonly fd: number;
  private readonly id = (Math.random() * 0xffff) | 0;
  private seq = 0;
  private readonly waiting = new Map<number, Waiting>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly buffer = new Uint8Array(1500);
  private readonly from = new Uint8Array(16);

  constructor() {
    try {
      this.fd = openSocket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    } catch (e) {
      if (e instanceof SocketError && (e.errno === EPERM || e.errno === EACCES)) {
        throw new IcmpUnavailableError(`ICMP checks need CAP_NET_RAW to open a raw socket, and this process ` +
          `${hasCapability(CAP_NET_RAW) ? "was refused one" : "does not have it"}: run as root, or grant it ` +
          `(setcap cap_net_raw+ep on the binary, AmbientCapabilities=CAP_NET_RAW under systemd)`);
      }
      throw new IcmpUnavailableError(`ICMP checks cannot open a raw socket: ${(e as Error).message}`);
    }
  }

  /** Sends one echo request to an IPv4 address; resolves with the reply or, on abort, a timeout. */
  ping(address: string, deadline: Deadline): Promise<CheckResult> {
    return new Promise((resolve) => {
      const seq = this.seq = (this.seq + 1) & 0xffff;
      const packet = echoRequest(this.id, seq);
      try {
        sendTo(this.fd, packet, sockaddrIn(address));
      } catch (e) {
        resolve(fail(`ICMP send failed: ${(e as Error).message}`));
        return;
      }
      const entry: Waiting = { address, sentAt: performance.now(), resolve };
      this.waiting.set(seq, entry);
      this.timer ??= setInterval(() => this.drain(), POLL_MS);
      deadline.onExpire(() => {
        if (this.waiting.get(seq) !== entry) return;
        this.forget(seq);
        resolve(fail(`ICMP no echo reply ${deadline.reason}`));
      });
    });
  }

  private drain(): void {
    for (;;) {
      let n: number | null;
      try {
        n = receiveFrom(this.fd, this.buffer, this.from);
      } catch {
        return;
      }
      if (n === null) return;
      const b = this.buffer;
      const ihl = (b[0] & 0x0f) * 4;
      if (n < ihl + 8 || b[ihl] !== ECHO_REPLY) continue;
      const id = (b[ihl + 4] << 8) | b[ihl + 5];
      const seq = (b[ihl + 6] << 8) | b[ihl + 7];
      const entry = this.waiting.get(seq);
      const source = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
      if (id !== this.id || !entry || entry.address !== source) continue;
      this.forget(seq);
      entry.resolve(pass(`ICMP echo reply in ${(performance.now() - entry.sentAt).toFixed(1)} ms`));
    }
  }

  private forget(seq: number): void {
    this.waiting.delete(seq);
    if (this.waiting.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    closeSocket(this.fd);
  }
}

let pinger: Pinger | null = null;

/** Opens the shared socket now, so a missing capability stops startup with the reason. */
let users = 0;

/** One more user of the shared socket (a generation with ICMP checks); opens it on the first. */
export function openIcmp(): void {
  pinger ??= new Pinger();
  users++;
}

/** One user fewer; the last closes the shared socket (a reload's old and new generations overlap). */
export function closeIcmp(): void {
  if (users > 0 && --users > 0) return;
  pinger?.close();
  pinger = null;
}

export function icmpProbe(host: string): Probe {
  return async (deadline) => {
    if (net.isIPv6(host)) return fail("ICMP checks support IPv4 addresses only");
    let address = host;
    if (!net.isIPv4(host)) {
      try {
        address = (await dns.promises.lookup(host, { family: 4 })).address;
      } catch (e) {
        return fail(`ICMP cannot resolve ${host}: ${(e as Error).message}`);
      }
    }
    try {
      openIcmp();
    } catch (e) {
      return fail((e as Error).message);
    }
    return pinger!.ping(address, deadline);
  };
}

function echoRequest(id: number, seq: number): Uint8Array {
  const p = new Uint8Array(8 + PAYLOAD.length);
  p[0] = ECHO_REQUEST;
  p[4] = id >> 8; p[5] = id & 0xff;
  p[6] = seq >> 8; p[7] = seq & 0xff;
  p.set(PAYLOAD, 8);
  const sum = checksum(p);
  p[2] = sum >> 8; p[3] = sum & 0xff;
  return p;
}

/** The Internet checksum (RFC 1071). */
function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length & 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function sockaddrIn(address: string): Uint8Array {
  const s = new Uint8Array(16);
  s[0] = AF_INET & 0xff; s[1] = AF_INET >> 8; // sa_family, host order (little-endian)
  address.split(".").forEach((part, i) => { s[4 + i] = Number(part); });
  return s;
}

/** Whether the effective capability set has `bit` (Linux /proc/self/status). */
function hasCapability(bit: number): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    return m !== null && ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n;
  } catch {
    return false;
  }
}
