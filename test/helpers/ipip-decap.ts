// A real server's end of an IPIP tunnel, for labs whose kernel has no ipip (or ip6tnl) device: a
// raw socket for IP protocol 4 (IPv4 in IPv4) or, with family 6, an AF_INET6 one for protocol 41
// (IPv6 in IPv6) receives each tunnelled packet, and the inner packet is written into a TUN in the
// same namespace, where the kernel takes it as arriving from the network and delivers it locally
// (the VIP is on lo). Replies take the server's own routes. An IPv4 raw socket hands over the
// outer header too; an IPv6 one only what follows it.
//
// Run inside the server's namespace with the tests' runtime: `<runtime> ipip-decap.ts TUN [4|6]`.
// It prints "ipip-decap: ready on TUN" once both ends are open; the caller brings the TUN up and
// turns its reverse-path filter off (the inner sources are clients, routed through eth0). On
// SIGTERM it prints what it did: "ipip-decap: decapsulated N, refused M".
import process from "node:process";
import { AF_INET, AF_INET6, addressOf, openSocket, receiveFrom, SOCK_RAW } from "../../src/ffi/socket.ts";
import { openTun, writePacket } from "../../src/ffi/tun.ts";

const IPPROTO_IPIP = 4, IPPROTO_IPV6 = 41;
/** Packets drained per turn of the event loop at most, so a flood cannot starve the timers. */
const BURST = 256;

const name = process.argv[2];
const family = process.argv[3] ?? "4";
if (!name || (family !== "4" && family !== "6")) {
  console.error("usage: ipip-decap.ts TUN_NAME [4|6]");
  process.exit(2);
}

const tun = openTun(name);
const socket = family === "6" ? openSocket(AF_INET6, SOCK_RAW, IPPROTO_IPV6) : openSocket(AF_INET, SOCK_RAW, IPPROTO_IPIP);
// A fixed buffer: its address is handed to write(2) as is.
const packet = new Uint8Array(65536);
const at = Number(addressOf(packet));
const from = new Uint8Array(28); // a sockaddr_in6
let decapsulated = 0, refused = 0;

/** The inner packet's offset and length, or null when this is not an IPv4-in-IPv4 packet. */
function inner4(length: number): { offset: number; length: number } | null {
  if (length < 20 || packet[0] >> 4 !== 4 || packet[9] !== IPPROTO_IPIP) return null;
  const header = (packet[0] & 0x0f) * 4;
  const total = (packet[2] << 8) | packet[3];
  if (header < 20 || total > length || total < header + 20 || packet[header] >> 4 !== 4) return null;
  return { offset: header, length: total - header };
}

/** The inner IPv6 packet (the whole datagram: no outer header here), or null when it is not one. */
function inner6(length: number): { offset: number; length: number } | null {
  if (length < 40 || packet[0] >> 4 !== 6) return null;
  const total = 40 + ((packet[4] << 8) | packet[5]);
  return total > length ? null : { offset: 0, length: total };
}

const inner = family === "6" ? inner6 : inner4;

function drain(): void {
  let n = 0;
  for (; n < BURST; n++) {
    const length = receiveFrom(socket, packet, from);
    if (length === null) break;
    const p = inner(length);
    if (p === null || writePacket(tun.fd, at + p.offset, p.length) !== 0) refused++;
    else decapsulated++;
  }
  // Idle: look again in a millisecond (neither runtime can wait on a raw descriptor).
  setTimeout(drain, n > 0 ? 0 : 1);
}

process.on("SIGTERM", () => {
  console.log(`ipip-decap: decapsulated ${decapsulated}, refused ${refused}`);
  process.exit(0);
});
console.log(`ipip-decap: ready on ${tun.name}`);
drain();
