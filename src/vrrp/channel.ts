// VRRP on the wire: raw IP protocol 112 sockets. One receive socket per interface and family is
// shared by every instance there and hands each advert to the instance of its VRID; each instance
// sends through its own socket, bound to its source address so the v3 pseudo-header is known.
import {
  AF_INET, AF_INET6, addressOfSockaddr, bindSocket, bindToDevice, closeSocket, IP_ADD_MEMBERSHIP, IP_MULTICAST_IF,
  IP_MULTICAST_LOOP, IP_MULTICAST_TTL, IP_TTL, ipMreqn, IPPROTO_IP, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, IPV6_HOPLIMIT,
  IPV6_MULTICAST_HOPS, IPV6_MULTICAST_IF, IPV6_MULTICAST_LOOP, IPV6_PKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO,
  IPV6_UNICAST_HOPS, ipv6Mreq, MessageReceiver, openSocket, receiveFrom, sendTo, setOption, SO_RCVBUF, SOCK_RAW,
  sockaddrIn, sockaddrIn6, SOL_SOCKET,
} from "../ffi/socket.ts";
import { type Family, sameAddress } from "./ip.ts";
import {
  type Advert, type ChecksumMode, decodeAdvert, type DropReason, encodeAdvert, parseIPv4Packet, peekVrid, VRRP_GROUP_V4,
  VRRP_GROUP_V6, VRRP_PROTOCOL, VRRP_TTL,
} from "./packet.ts";
import { addPoll, removePoll } from "./poller.ts";

/** An instance as the receive side sees it. */
export interface AdvertListener {
  readonly vrid: number;
  readonly checksumMode: ChecksumMode;
  /** Adverts from these addresses are our own (looped back) and ignored. */
  readonly localSource: Uint8Array;
  readonly multicast: boolean;
  receive(advert: Advert, source: Uint8Array): void;
  drop(reason: DropReason, detail: string, source: Uint8Array | null): void;
}

/** At most this many datagrams per socket per poll, so a flood cannot starve the event loop. */
const MAX_PER_POLL = 256;

export class ReceiveChannel {
  static readonly #open = new Map<string, ReceiveChannel>();

  /** The shared channel for an interface and family (opened on first use). */
  static for(ifname: string, ifindex: number, family: Family): ReceiveChannel {
    const key = `${ifname}/${family}`;
    let channel = ReceiveChannel.#open.get(key);
    if (channel === undefined) {
      channel = new ReceiveChannel(ifname, ifindex, family);
      ReceiveChannel.#open.set(key, channel);
    }
    return channel;
  }

  readonly #listeners = new Map<number, AdvertListener>();
  readonly #fd: number;
  #joined = false;
  readonly #poll = () => this.#receiveAll();
  readonly #buffer = new Uint8Array(new ArrayBuffer(4096));
  readonly #from = new Uint8Array(new ArrayBuffer(128));
  readonly #messages: MessageReceiver | null;

  private constructor(readonly ifname: string, readonly ifindex: number, readonly family: Family) {
    this.#fd = openSocket(family === 4 ? AF_INET : AF_INET6, SOCK_RAW, VRRP_PROTOCOL);
    try {
      bindToDevice(this.#fd, ifname);
      if (family === 6) {
        // IPv6 raw sockets do not return the header: the hop limit and destination come as control data.
        setOption(this.#fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT");
        setOption(this.#fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
      }
    } catch (e) {
      closeSocket(this.#fd);
      throw e;
    }
    this.#messages = family === 6 ? new MessageReceiver(4096) : null;
  }

  attach(listener: AdvertListener): void {
    if (this.#listeners.has(listener.vrid)) {
      throw new Error(`VRID ${listener.vrid} is used twice on ${this.ifname} (IPv${this.family})`);
    }
    if (listener.multicast && !this.#joined) {
      const group = this.family === 4
        ? ipMreqn(VRRP_GROUP_V4, this.ifindex)
        : ipv6Mreq(VRRP_GROUP_V6, this.ifindex);
      setOption(this.#fd, this.family === 4 ? IPPROTO_IP : IPPROTO_IPV6, this.family === 4 ? IP_ADD_MEMBERSHIP : IPV6_ADD_MEMBERSHIP, group, "join the VRRP group");
      this.#joined = true;
    }
    this.#listeners.set(listener.vrid, listener);
    if (this.#listeners.size === 1) addPoll(this.#poll);
  }

  detach(listener: AdvertListener): void {
    if (this.#listeners.get(listener.vrid) !== listener) return;
    this.#listeners.delete(listener.vrid);
    if (this.#listeners.size > 0) return;
    removePoll(this.#poll);
    closeSocket(this.#fd);
    ReceiveChannel.#open.delete(`${this.ifname}/${this.family}`);
  }

  #receiveAll(): void {
    for (let i = 0; i < MAX_PER_POLL; i++) {
      if (!(this.family === 4 ? this.#receiveIPv4() : this.#receiveIPv6())) return;
    }
  }

  #receiveIPv4(): boolean {
    const n = receiveFrom(this.#fd, this.#buffer, this.#from);
    if (n === null) return false;
    const packet = parseIPv4Packet(this.#buffer.subarray(0, n));
    if (packet === null) {
      this.#dropForAll("length", `a broken IPv4 header (${n} bytes)`, null);
      return true;
    }
    this.#dispatch(packet.payload, packet.ttl, packet.source, packet.destination);
    return true;
  }

  #receiveIPv6(): boolean {
    const message = this.#messages!.receive(this.#fd);
    if (message === null) return false;
    const source = addressOfSockaddr(this.#messages!.from);
    let hopLimit = -1;
    let destination: Uint8Array = VRRP_GROUP_V6;
    for (const [level, type, data] of message.control) {
      if (level !== IPPROTO_IPV6) continue;
      if (type === IPV6_HOPLIMIT && data.length >= 4) hopLimit = new DataView(data.buffer, data.byteOffset).getInt32(0, true);
      if (type === IPV6_PKTINFO && data.length >= 16) destination = data.slice(0, 16);
    }
    if (source === null) return true;
    this.#dispatch(this.#messages!.data.slice(0, message.length), hopLimit, source, destination);
    return true;
  }

  #dispatch(payload: Uint8Array, hopLimit: number, source: Uint8Array, destination: Uint8Array): void {
    const vrid = peekVrid(payload);
    if (vrid === null) {
      this.#dropForAll("length", `${payload.length} bytes, too short for a VRRP header`, source);
      return;
    }
    const listener = this.#listeners.get(vrid);
    if (listener === undefined) {
      this.#dropForAll("vrid", `VRID ${vrid} is not configured on ${this.ifname}`, source);
      return;
    }
    if (sameAddress(source, listener.localSource)) return; // our own advert, looped back
    const decoded = decodeAdvert(payload, {
      family: this.family, hopLimit, endpoints: { source, destination }, checksumMode: listener.checksumMode,
    });
    if (decoded.ok) listener.receive(decoded.advert, source);
    else listener.drop(decoded.reason, decoded.detail, source);
  }

  #dropForAll(reason: DropReason, detail: string, source: Uint8Array | null): void {
    for (const listener of this.#listeners.values()) {
      if (source !== null && sameAddress(source, listener.localSource)) continue;
      listener.drop(reason, detail, source);
    }
  }
}

export interface SenderOptions {
  ifname: string;
  ifindex: number;
  family: Family;
  /** Our address: bound, so it is the packet's source and the pseudo-header's. */
  source: Uint8Array;
  /** Unicast peers; empty means the VRRP multicast group. */
  peers: Uint8Array[];
  checksumMode: ChecksumMode;
}

/** Sends one instance's adverts, TTL / hop limit 255, to the group or to each unicast peer. */
export class AdvertSender {
  readonly #fd: number;
  readonly #targets: { address: Uint8Array; sockaddr: Uint8Array }[];

  constructor(readonly options: SenderOptions) {
    const { family, ifname, ifindex, source } = options;
    this.#fd = openSocket(family === 4 ? AF_INET : AF_INET6, SOCK_RAW, VRRP_PROTOCOL);
    try {
      // Never read: its receive queue (unicast adverts to our address) is kept minimal.
      setOption(this.#fd, SOL_SOCKET, SO_RCVBUF, 1, "SO_RCVBUF");
      bindToDevice(this.#fd, ifname);
      if (family === 4) {
        setOption(this.#fd, IPPROTO_IP, IP_TTL, VRRP_TTL, "IP_TTL");
        setOption(this.#fd, IPPROTO_IP, IP_MULTICAST_TTL, VRRP_TTL, "IP_MULTICAST_TTL");
        setOption(this.#fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
        setOption(this.#fd, IPPROTO_IP, IP_MULTICAST_IF, ipMreqn(new Uint8Array(4), ifindex), "IP_MULTICAST_IF");
        bindSocket(this.#fd, sockaddrIn(source));
      } else {
        setOption(this.#fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, VRRP_TTL, "IPV6_UNICAST_HOPS");
        setOption(this.#fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, VRRP_TTL, "IPV6_MULTICAST_HOPS");
        setOption(this.#fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP");
        setOption(this.#fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex, "IPV6_MULTICAST_IF");
        bindSocket(this.#fd, sockaddrIn6(source, ifindex));
      }
    } catch (e) {
      closeSocket(this.#fd);
      throw e;
    }
    const destinations = options.peers.length > 0 ? options.peers : [family === 4 ? VRRP_GROUP_V4 : VRRP_GROUP_V6];
    this.#targets = destinations.map((address) => ({
      address,
      sockaddr: family === 4 ? sockaddrIn(address) : sockaddrIn6(address, ifindex),
    }));
  }

  /** Sends to every destination; returns the errors (a peer unreachable must not stop the others). */
  send(advert: Advert): string[] {
    const errors: string[] = [];
    for (const target of this.#targets) {
      const endpoints = { source: this.options.source, destination: target.address };
      const message = encodeAdvert(advert, this.options.family, endpoints, this.options.checksumMode);
      try {
        sendTo(this.#fd, message, target.sockaddr);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    return errors;
  }

  close(): void {
    closeSocket(this.#fd);
  }
}
