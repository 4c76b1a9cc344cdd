// Sends crafted IP protocol 112 packets, for tests that check what Fulcrum does with bad adverts.
// Run inside a lab namespace: `<runtime> vrrp-inject.ts '<json>'` with a list of
// { destination, ttl, hex } (IPv4; the kernel writes the IP header, so TTL is the only header field set).
import { runtime } from "../../src/runtime/index.ts";
import { interfaceIndex } from "../../src/ffi/libc.ts";
import {
  AF_INET, IP_MULTICAST_IF, IP_MULTICAST_TTL, IP_TTL, ipMreqn, IPPROTO_IP, openSocket, sendTo, setOption, SOCK_RAW,
  sockaddrIn,
} from "../../src/ffi/socket.ts";
import { parseIPv4 } from "../../src/vrrp/ip.ts";

interface Packet {
  destination: string;
  ttl: number;
  hex: string;
}

const packets = JSON.parse(runtime.args[0]) as Packet[];
const fd = openSocket(AF_INET, SOCK_RAW, 112);
setOption(fd, IPPROTO_IP, IP_MULTICAST_IF, ipMreqn(new Uint8Array(4), interfaceIndex("eth0")!));
for (const p of packets) {
  setOption(fd, IPPROTO_IP, IP_TTL, p.ttl);
  setOption(fd, IPPROTO_IP, IP_MULTICAST_TTL, p.ttl);
  const bytes = Uint8Array.from(p.hex.match(/../g) ?? [], (h) => parseInt(h, 16));
  sendTo(fd, bytes, sockaddrIn(parseIPv4(p.destination)!));
}
console.log(`sent ${packets.length}`);
