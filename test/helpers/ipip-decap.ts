// A real server's end of an IPIP tunnel, for labs whose kernel has no ipip device: a raw socket
// for IP protocol 4 receives each tunnelled packet (outer header included), and the inner packet
// is written into a TUN in the same namespace, where the kernel takes it as arriving from the
// network and delivers it locally (the VIP is on lo). Replies take the server's own routes.
//
// Run inside the server's namespace with the tests' runtime: `<runtime> ipip-decap.ts TUN`. It
// prints "ipip-decap: ready on TUN" once both ends are open; the caller brings the TUN up and
// turns its reverse-path filter off (the inner sources are clients, routed through eth0). On
// SIGTERM it prints what it did: "ipip-decap: decapsulated N, refused M".
import process from "node:process";
import { AF_INET, addressOf, openSocket, receiveFrom, SOCK_RAW } from "../../src/ffi/socket.ts";
import { openTun, writePacket } from "../../src/ffi/tun.ts";

const IPPROTO_IPIP = 4;
/** Packets drained per turn of the event loop at most, so a flood cannot starve the timers. */
const BURST = 256;

const name = process.argv[2];
if (!name) {
  console.error("usage: ipip-decap.ts TUN_NAME");
  process.exit(2);
}

const tun = openTun(name);
const socket = openSocket(AF_INET, SOCK_RAW, IPPROTO_IPIP);
// A fixed buffer: its address is handed to write(2) as is.
const packet = new Uint8Array(65536);
const at = Number(addressOf(packet));
const from = new Uint8Array(16);
let decapsulated = 0, refused = 0;

/** The inner packet's offset and length, or null when this is not an IPv4-in-IPv4 packet. */
function inner(length: number): { offset: number; length: number } | null {
  if (length < 20 || packet[0] >> 4 !== 4 || packet[9] !== IPPROTO_IPIP) return null;
  const header = (packet[0] & 0x0f) * 4;
  const total = (packet[2] << 8) | packet[3];
  if (header < 20 || total > length || total < header + 20 || packet[header] >> 4 !== 4) return null;
  return { offset: header, length: total - header };
}

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
