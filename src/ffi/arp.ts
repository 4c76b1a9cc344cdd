// Telling the LAN who now holds an address: gratuitous ARP (IPv4, an Ethernet frame through
// AF_PACKET) and unsolicited neighbour advertisements (IPv6, ICMPv6 through a raw socket, whose
// checksum the kernel fills in). Frame builders are pure; each sender keeps its socket open.
import {
  AF_INET6, AF_PACKET, bindSocket, bindToDevice, closeSocket, IPPROTO_ICMPV6, IPPROTO_IPV6, IPV6_MULTICAST_HOPS,
  IPV6_MULTICAST_IF, IPV6_UNICAST_HOPS, openSocket, sendTo, setOption, SO_RCVBUF, SOCK_RAW, sockaddrIn6, sockaddrLl,
  SOL_SOCKET,
} from "./socket.ts";

const ETH_P_ARP = 0x0806;
const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
export const ALL_NODES = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01);

/** A broadcast ARP request for `address` from itself (an RFC 5227 announcement), Ethernet header included. */
export function gratuitousArpFrame(mac: Uint8Array, address: Uint8Array): Uint8Array {
  const f = new Uint8Array(42);
  const v = new DataView(f.buffer);
  f.set(BROADCAST, 0);
  f.set(mac, 6);
  v.setUint16(12, ETH_P_ARP);
  v.setUint16(14, 1); // hardware: Ethernet
  v.setUint16(16, 0x0800); // protocol: IPv4
  f[18] = 6;
  f[19] = 4;
  v.setUint16(20, 1); // request
  f.set(mac, 22);
  f.set(address, 28);
  // target hardware address stays zero
  f.set(address, 38);
  return f;
}

/** An ICMPv6 neighbour advertisement for `target` with the override flag and our link-layer address. */
export function neighbourAdvertisement(mac: Uint8Array, target: Uint8Array): Uint8Array {
  const m = new Uint8Array(32);
  m[0] = 136; // type: neighbour advertisement; code and checksum 0 (the kernel computes it)
  m[4] = 0x20; // flags: override
  m.set(target, 8);
  m[24] = 2; // option: target link-layer address
  m[25] = 1; // length in units of 8 bytes
  m.set(mac, 26);
  return m;
}

/** Sends gratuitous ARPs out of one interface. The socket stays open: closing a packet socket
 * waits for an RCU grace period (~10 ms), too slow for the moment of a takeover. */
export class GratuitousArpSender {
  readonly #fd: number;
  readonly #to: Uint8Array;

  constructor(ifindex: number, readonly mac: Uint8Array) {
    this.#fd = openSocket(AF_PACKET, SOCK_RAW, 0); // protocol 0: send only, receive nothing
    this.#to = sockaddrLl(ifindex, ETH_P_ARP, BROADCAST);
  }

  /** `repeat` announcements for each address. */
  send(addresses: Uint8Array[], repeat = 1): void {
    for (let i = 0; i < repeat; i++) for (const a of addresses) sendTo(this.#fd, gratuitousArpFrame(this.mac, a), this.#to);
  }

  close(): void {
    closeSocket(this.#fd);
  }
}

/** Sends unsolicited neighbour advertisements to all nodes out of one interface (hop limit 255). */
export class NeighbourAdvertSender {
  readonly #fd: number;
  readonly #to: Uint8Array;

  constructor(ifname: string, ifindex: number, readonly mac: Uint8Array, source: Uint8Array | null) {
    this.#fd = openSocket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
    try {
      bindToDevice(this.#fd, ifname);
      // RFC 4861 §7.1.2: a receiver drops neighbour discovery packets whose hop limit is not 255.
      setOption(this.#fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255);
      setOption(this.#fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255);
      setOption(this.#fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex);
      setOption(this.#fd, SOL_SOCKET, SO_RCVBUF, 1); // never read
      if (source !== null) bindSocket(this.#fd, sockaddrIn6(source, ifindex));
    } catch (e) {
      closeSocket(this.#fd);
      throw e;
    }
    this.#to = sockaddrIn6(ALL_NODES, ifindex);
  }

  send(addresses: Uint8Array[], repeat = 1): void {
    for (let i = 0; i < repeat; i++) for (const a of addresses) sendTo(this.#fd, neighbourAdvertisement(this.mac, a), this.#to);
  }

  close(): void {
    closeSocket(this.#fd);
  }
}
