// Virtual addresses on the interface, through rtnetlink: added on becoming master, removed on
// leaving it. Also the interface facts an instance needs (index, MAC, the addresses it sends from).
import { interfaceIndex } from "../ffi/libc.ts";
import { addAddress, deleteAddress, getLink, IFA_F_DEPRECATED, IFA_F_SECONDARY, IFA_F_TENTATIVE, listAddresses, NetlinkError } from "../ffi/netlink.ts";
import { type Family, formatIP, isIPv6LinkLocal, sameAddress } from "./ip.ts";

export interface VirtualAddress {
  family: Family;
  address: Uint8Array;
  prefixLength: number;
  /** As configured, e.g. "10.200.1.100/24". */
  text: string;
  /** IPv6: never a source of this host's own packets (added deprecated). */
  notSource?: boolean;
}

export interface InterfaceFacts {
  name: string;
  ifindex: number;
  mac: Uint8Array;
  /** The first primary IPv4 address that is not a virtual one (the VRRP source), or null. */
  primaryIPv4: Uint8Array | null;
  /** The interface's IPv6 link-local address (the VRRPv3 IPv6 source), or null. */
  linkLocalIPv6: Uint8Array | null;
  /** The first global IPv6 address the kernel would send from (not virtual, deprecated nor
   * tentative), or null: the source of tun's IPv6-in-IPv6 tunnels. */
  primaryIPv6: Uint8Array | null;
}

/** Looks the interface up; throws a message an operator can act on when it is missing. */
export function interfaceFacts(name: string, virtual: VirtualAddress[] = []): InterfaceFacts {
  const ifindex = interfaceIndex(name);
  if (ifindex === null) throw new Error(`interface ${name} does not exist`);
  const link = getLink(ifindex);
  const isVirtual = (a: Uint8Array) => virtual.some((v) => sameAddress(v.address, a));
  const addresses = listAddresses(ifindex).filter((a) => !isVirtual(a.address));
  const primary = addresses.find((a) => a.family === 4 && (a.flags & IFA_F_SECONDARY) === 0);
  const linkLocal = addresses.find((a) => a.family === 6 && isIPv6LinkLocal(a.address));
  const unusable = IFA_F_DEPRECATED | IFA_F_TENTATIVE;
  const primary6 = addresses.find((a) => a.family === 6 && a.scope === 0 && !isIPv6LinkLocal(a.address) && (a.flags & unusable) === 0);
  return {
    name,
    ifindex,
    mac: link?.mac ?? new Uint8Array(6),
    primaryIPv4: primary?.address ?? null,
    linkLocalIPv6: linkLocal?.address ?? null,
    primaryIPv6: primary6?.address ?? null,
  };
}

const EEXIST = 17;
const EADDRNOTAVAIL = 99;

/** Adds each address; returns one message per address that could not be added (already there is fine). */
export function addVirtualAddresses(ifindex: number, addresses: VirtualAddress[], label?: string): string[] {
  const problems: string[] = [];
  for (const v of addresses) {
    try {
      addAddress(ifindex, v.family, v.address, v.prefixLength, label, v.notSource);
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === EEXIST) continue;
      problems.push(`cannot add ${v.text}: ${(e as Error).message}`);
    }
  }
  return problems;
}

/** Removes each address; one already gone is fine. */
export function removeVirtualAddresses(ifindex: number, addresses: VirtualAddress[]): string[] {
  const problems: string[] = [];
  for (const v of addresses) {
    try {
      deleteAddress(ifindex, v.family, v.address, v.prefixLength);
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === EADDRNOTAVAIL) continue;
      problems.push(`cannot remove ${v.text}: ${(e as Error).message}`);
    }
  }
  return problems;
}

/** Which of the addresses are configured on the interface now. */
export function presentAddresses(ifindex: number, addresses: VirtualAddress[]): VirtualAddress[] {
  const here = listAddresses(ifindex);
  return addresses.filter((v) => here.some((a) => a.family === v.family && sameAddress(a.address, v.address)));
}

export function describeAddresses(addresses: VirtualAddress[]): string {
  return addresses.map((v) => formatIP(v.address)).join(", ");
}
