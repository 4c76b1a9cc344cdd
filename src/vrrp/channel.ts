// VRRP on the wire: raw IP protocol 112 sockets. One receive socket per interface and family is
// shared by every instance there and hands each advert to the instance of its VRID; each instance
// sends through its own socket, bound to its source address so the v3 pseudo-header is known.
import {
  AF_INET, AF_INET6, addressOfSockaddr, bindSocket, bindToDevice, closeSocket, IP_ADD_MEMBERSHIP, IP_MULTICAST_IF,
  IP_MULTICAST_LOOP, IP_MULTICAST_TTL, IP_TTL, ipMreqn, IPPROTO_IP, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, IPV6_HOPLIMIT,
  IPV6_MULTICAST_HOPS, IPV6_MULTICAST_IF, IPV6_MULTICAST_LOOP, IPV6_PKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO,
  IPV6_UNICAST_HOPS, ipv6Mreq, MessageReceiver, openSocket, realtimeNs, SCM_TIMESTAMPNS, sendTo, setOption, SO_RCVBUF,
  SO_RCVBUFFORCE, SO_TIMESTAMPNS, SOCK_RAW, sockaddrIn, sockaddrIn6, SOL_SOCKET, timespecNs,
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
  /** Our advertisement interval: how often the channel must be read. */
  readonly intervalCs: number;
  /** `at` is when the advert reached the host (performance.now() time), however late it is read. */
  receive(advert: Advert, source: Uint8Array, at: number): void;
  drop(reason: DropReason, detail: string, source: Uint8Array | null): void;
}

/** At most this many datagrams per socket per poll, so a flood cannot starve the event loop. */
const MAX_PER_POLL = 256;
const RECEIVE_BUFFER_BYTES = 1 << 20;

/** Read 20 times per advert interval, within 5..50 ms: prompt enough for priority-0 handovers
 * (their skew is measured from the kernel arrival time), rare enough to cost little when idle. */
function pollEveryMs(intervalCs: number): number {
  return Math.min(50, Math.max(5, (intervalCs * 10) / 20));
}

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
  readonly #messages = new MessageReceiver(4096);
  /** Clocks at the start of a poll: turn kernel timestamps into performance.now() times. */
  #pollPerf = 0;
  #pollRealNs = 0n;

  private constructor(readonly ifname: string, readonly ifindex: number, readonly family: Family) {
    this.#fd = openSocket(family === 4 ? AF_INET : AF_INET6, SOCK_RAW, VRRP_PROTOCOL);
    try {
      bindToDevice(this.#fd, ifname);
      setOption(this.#fd, SOL_SOCKET, SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS");
      // Room for a burst between polls (a flood of bad adverts, many instances); best effort.
      try {
        setOption(this.#fd, SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER_BYTES, "SO_RCVBUFFORCE");
      } catch {
        setOption(this.#fd, SOL_SOCKET, SO_RCVBUF, RECEIVE_BUFFER_BYTES, "SO_RCVBUF");
      }
      if (family === 6) {
        // IPv6 raw sockets do not return the header: the hop limit and destination come as control data.
        setOption(this.#fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT");
        setOption(this.#fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
      }
    } catch (e) {
      closeSocket(this.#fd);
      throw e;
    }
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
    this.#schedulePolls();
  }

  #schedulePolls(): void {
    if (this.#listeners.size === 0) return removePoll(this.#poll);
    addPoll(this.#poll, Math.min(...[...this.#listeners.values()].map((l) => pollEveryMs(l.intervalCs))));
  }

  detach(listener: AdvertListener): void {
    if (this.#listeners.get(listener.vrid) !== listener) return;
    this.#listeners.delete(listener.vrid);
    this.#schedulePolls();
    if (this.#listeners.size > 0) return;
    closeSocket(this.#fd);
    ReceiveChannel.#open.delete(`${this.ifname}/${this.family}`);
  }

  #receiveAll(): void {
    for (let i = 0; i < MAX_PER_POLL; i++) {
      const message = this.#messages.receive(this.#fd);
      if (message === null) return;
      if (i === 0) {
        this.#pollPerf = performance.now();
        this.#pollRealNs = realtimeNs();
      }
      let hopLimit = -1;
      let destination: Uint8Array = VRRP_GROUP_V6;
      let at = this.#pollPerf;
      for (const [level, type, data] of message.control) {
        if (level === SOL_SOCKET && type === SCM_TIMESTAMPNS && data.length >= 16) at = this.#arrival(timespecNs(data));
        if (level !== IPPROTO_IPV6) continue;
        if (type === IPV6_HOPLIMIT && data.length >= 4) hopLimit = new DataView(data.buffer, data.byteOffset).getInt32(0, true);
        if (type === IPV6_PKTINFO && data.length >= 16) destination = data.slice(0, 16);
      }
      const bytes = this.#messages.data.slice(0, message.length);
      if (this.family === 6) {
        // IPv6 raw sockets do not return the header: source from the address, the rest from control data.
        const source = addressOfSockaddr(this.#messages.from);
        if (source !== null) this.#dispatch(bytes, hopLimit, source, destination, at);
        continue;
      }
      const packet = parseIPv4Packet(bytes);
      if (packet === null) this.#dropForAll("length", `a broken IPv4 header (${bytes.length} bytes)`, null);
      else this.#dispatch(packet.payload, packet.ttl, packet.source, packet.destination, at);
    }
  }

  /** A kernel arrival time as a performance.now() time (never later than the poll). */
  #arrival(kernelNs: bigint): number {
    const ageMs = Number(this.#pollRealNs - kernelNs) / 1e6;
    return this.#pollPerf - Math.max(0, ageMs);
  }

  #dispatch(payload: Uint8Array, hopLimit: number, source: Uint8Array, destination: Uint8Array, at: number): void {
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
    if (decoded.ok) listener.receive(decoded.advert, source, at);
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
  readonly #byPriority = new Map<number, Uint8Array[]>();

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
    for (const [i, message] of this.#encoded(advert).entries()) {
      try {
        sendTo(this.#fd, message, this.#targets[i].sockaddr);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    return errors;
  }

  /** Encodes (and keeps) the messages for this advert ahead of time, so a takeover only sends. */
  prepare(advert: Advert): void {
    this.#encoded(advert);
  }

  /** One instance's adverts differ only in priority: their bytes are kept per priority and target. */
  #encoded(advert: Advert): Uint8Array[] {
    let messages = this.#byPriority.get(advert.priority);
    if (messages === undefined) {
      messages = this.#targets.map((target) =>
        encodeAdvert(advert, this.options.family, { source: this.options.source, destination: target.address }, this.options.checksumMode));
      this.#byPriority.set(advert.priority, messages);
    }
    return messages;
  }

  close(): void {
    closeSocket(this.#fd);
  }
}
