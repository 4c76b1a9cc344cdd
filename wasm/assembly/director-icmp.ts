// ICMP errors about a tracked connection (unreachable, time exceeded, parameter problem, packet
// too big): the embedded packet names the connection; the outer and embedded addresses and
// ports are translated as the connection's own packets are, with the embedded IP and L4
// checksums (where quoted) and the ICMP checksum updated incrementally.
import {
  DIR_OFF, DG_ISRC, DG_IDST, CT_NONE, CT_IN, CT_CADDR, CT_VADDR, CT_LADDR, CT_DADDR, CT_CPORT,
  CT_VPORT, CT_LPORT, CT_DPORT, R_ICMP_NOT_ERROR, R_ICMP_BAD, R_ICMP_UNTRACKED,
} from "./layout";
import { pL3, pL4, pEnd, pV6, keyAddr } from "./director-parse";
import { put16, putAddr, applyDelta, delta16 } from "./director-csum";
import { ctLookup, protoKey } from "./conntrack";

export let iLink: u32 = CT_NONE; // the connection link an ICMP error belongs to
let iIn: u32 = 0; // embedded IP header
export let iL4: u32 = 0; // embedded TCP/UDP header
export let iProto: u32 = 0;

// Finds the connection an ICMP error is about; R_NONE (0) and iLink set, or a drop reason.
export function icmpLookup(): u32 {
  const type = <u32>load<u8>(pL4);
  const isError = pV6 ? type >= 1 && type <= 4 : type == 3 || type == 11 || type == 12;
  if (!isError) return R_ICMP_NOT_ERROR;
  const inner = pL4 + 8;
  let isrc: u32, idst: u32;
  if (pV6) {
    if (inner + 44 > pEnd || (<u32>load<u8>(inner) >> 4) != 6) return R_ICMP_BAD;
    iProto = <u32>load<u8>(inner + 6);
    iL4 = inner + 40;
    isrc = inner + 8; idst = inner + 24;
  } else {
    if (inner + 20 > pEnd || (<u32>load<u8>(inner) >> 4) != 4) return R_ICMP_BAD;
    const ihl = (<u32>load<u8>(inner) & 15) << 2;
    if (ihl < 20 || inner + ihl + 4 > pEnd) return R_ICMP_BAD;
    if ((bswap<u16>(load<u16>(inner + 6)) & 0x1fff) != 0) return R_ICMP_BAD; // no ports quoted
    iProto = <u32>load<u8>(inner + 9);
    iL4 = inner + ihl;
    isrc = inner + 12; idst = inner + 16;
  }
  if (iProto != 6 && iProto != 17) return R_ICMP_UNTRACKED;
  iIn = inner;
  keyAddr(DIR_OFF + DG_ISRC, isrc, pV6);
  keyAddr(DIR_OFF + DG_IDST, idst, pV6);
  // The embedded packet went the other way: its reversed tuple is the connection's key.
  iLink = ctLookup(DIR_OFF + DG_IDST, DIR_OFF + DG_ISRC, <u32>load<u16>(iL4 + 2), <u32>load<u16>(iL4),
    protoKey(iProto, pV6, false), pV6);
  return iLink == CT_NONE ? R_ICMP_UNTRACKED : 0;
}

// Rewrites an ICMP error of connection entry e for nat/fullnat. dir CT_IN: it came from the
// client's side and goes to the server; else from the server's side to the client.
export function icmpRewrite(e: u32, dir: u32, fullnat: bool): void {
  const oSrc = pV6 ? pL3 + 8 : pL3 + 12, oDst = pV6 ? pL3 + 24 : pL3 + 16;
  const iSrc = pV6 ? iIn + 8 : iIn + 12, iDst = pV6 ? iIn + 24 : iIn + 16;
  let outer: u32 = 0, inner: u32 = 0, ports: u32 = 0;
  if (dir == CT_IN) {
    // The client's side saw vip -> client: it now reads server -> local address.
    outer += putAddr(oDst, e + CT_DADDR, pV6);
    inner += putAddr(iSrc, e + CT_DADDR, pV6);
    ports += put16(iL4, <u32>load<u16>(e + CT_DPORT));
    if (fullnat) {
      outer += putAddr(oSrc, e + CT_LADDR, pV6);
      inner += putAddr(iDst, e + CT_LADDR, pV6);
      ports += put16(iL4 + 2, <u32>load<u16>(e + CT_LPORT));
    }
  } else {
    // The server's side saw local -> server: it now reads client -> vip.
    outer += putAddr(oSrc, e + CT_VADDR, pV6);
    inner += putAddr(iDst, e + CT_VADDR, pV6);
    ports += put16(iL4 + 2, <u32>load<u16>(e + CT_VPORT));
    if (fullnat) {
      outer += putAddr(oDst, e + CT_CADDR, pV6);
      inner += putAddr(iSrc, e + CT_CADDR, pV6);
      ports += put16(iL4, <u32>load<u16>(e + CT_CPORT));
    }
  }
  let icmp = inner + ports;
  if (!pV6) {
    const old = <u32>load<u16>(iIn + 10);
    applyDelta(iIn + 10, inner);
    icmp += delta16(old, <u32>load<u16>(iIn + 10));
  } else {
    icmp += outer; // ICMPv6's pseudo-header holds the outer addresses
  }
  // The embedded L4 checksum, when the quote reaches it (UDP 0 means none, over IPv4).
  const ck = iL4 + (iProto == 6 ? 16 : 6);
  if (ck + 2 <= pEnd) {
    const old = <u32>load<u16>(ck);
    if (!(iProto == 17 && old == 0 && !pV6)) {
      applyDelta(ck, inner + ports);
      icmp += delta16(old, <u32>load<u16>(ck));
    }
  }
  applyDelta(pL4 + 2, icmp);
  if (!pV6) applyDelta(pL3 + 10, outer);
}
