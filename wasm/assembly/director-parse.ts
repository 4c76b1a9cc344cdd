// Parse kernel: validates one packet's L2/L3/L4 headers and leaves what the lookup and rewrite
// kernels need in these globals. Never reads past the packet's length; every refusal is a reason.
import {
  DIR_OFF, DG_SRC, DG_DST, R_NONE, R_TRUNCATED, R_BAD_L2, R_BAD_IP, R_FRAGMENT, R_PROTO, R_BAD_L4,
} from "./layout";

export let pL3: u32 = 0; // IP header
export let pL4: u32 = 0; // TCP/UDP/ICMP header
export let pEnd: u32 = 0; // end of the IP packet (trailing frame padding excluded)
export let pV6: bool = false;
export let pProto: u32 = 0; // 6, 17, 1 (ICMP) or 58 (ICMPv6)
export let pSport: u32 = 0; // network order, as loaded
export let pDport: u32 = 0;
export let pTcpFlags: u32 = 0; // FIN 1, SYN 2, RST 4, ACK 16
export let pL4Csum: u32 = 0; // checksum field of the TCP/UDP header

export const TCP_FIN: u32 = 1;
export const TCP_SYN: u32 = 2;
export const TCP_RST: u32 = 4;
export const TCP_ACK: u32 = 16;

// Copies an address into a 16-byte key slot (IPv4: 4 bytes then zeros).
@inline export function keyAddr(dst: u32, src: u32, v6: bool): void {
  if (v6) {
    store<u64>(dst, load<u64>(src));
    store<u64>(dst + 8, load<u64>(src + 8));
  } else {
    store<u64>(dst, <u64>load<u32>(src));
    store<u64>(dst + 8, 0);
  }
}

// Parses the packet at [off, off + len). l2: it starts with an Ethernet header.
@inline export function parse(off: u32, len: u32, l2: bool): u32 {
  const end = off + <u32>len;
  let l3 = off;
  let et: u32 = 0;
  if (l2) {
    if (len < 14) return R_TRUNCATED;
    et = <u32>load<u16>(off + 12);
    if (et != 0x0008 && et != 0xdd86) return R_BAD_L2; // 0x0800, 0x86dd in network order
    l3 = off + 14;
  }
  if (l3 + 1 > end) return R_TRUNCATED;
  const ver = <u32>load<u8>(l3) >> 4;
  if (l2 && (et == 0x0008) != (ver == 4)) return R_BAD_IP;
  let l4: u32 = 0, proto: u32 = 0, ipEnd: u32 = 0;
  if (ver == 4) {
    if (l3 + 20 > end) return R_TRUNCATED;
    const ihl = (<u32>load<u8>(l3) & 15) << 2;
    if (ihl < 20) return R_BAD_IP;
    const total = <u32>bswap<u16>(load<u16>(l3 + 2));
    if (total < ihl) return R_BAD_IP;
    if (l3 + total > end) return R_TRUNCATED;
    // More-fragments set or a fragment offset: refused.
    if ((bswap<u16>(load<u16>(l3 + 6)) & 0x3fff) != 0) return R_FRAGMENT;
    proto = <u32>load<u8>(l3 + 9);
    l4 = l3 + ihl;
    ipEnd = l3 + total;
    keyAddr(DIR_OFF + DG_SRC, l3 + 12, false);
    keyAddr(DIR_OFF + DG_DST, l3 + 16, false);
    pV6 = false;
  } else if (ver == 6) {
    if (l3 + 40 > end) return R_TRUNCATED;
    ipEnd = l3 + 40 + <u32>bswap<u16>(load<u16>(l3 + 4));
    if (ipEnd > end) return R_TRUNCATED;
    proto = <u32>load<u8>(l3 + 6);
    l4 = l3 + 40;
    // Hop-by-hop, routing and destination options are stepped over (at most 4); a fragment
    // header is refused.
    for (let k = 0; k < 4; k++) {
      if (proto == 44) return R_FRAGMENT;
      if (proto != 0 && proto != 43 && proto != 60) break;
      if (l4 + 8 > ipEnd) return R_TRUNCATED;
      proto = <u32>load<u8>(l4);
      l4 += (<u32>load<u8>(l4 + 1) + 1) << 3;
    }
    if (proto == 44) return R_FRAGMENT;
    if (l4 > ipEnd) return R_TRUNCATED;
    keyAddr(DIR_OFF + DG_SRC, l3 + 8, true);
    keyAddr(DIR_OFF + DG_DST, l3 + 24, true);
    pV6 = true;
  } else {
    return R_BAD_IP;
  }
  pL3 = l3; pL4 = l4; pEnd = ipEnd; pProto = proto; pTcpFlags = 0;
  if (proto == 6) {
    if (l4 + 20 > ipEnd) return R_TRUNCATED;
    const doff = (<u32>load<u8>(l4 + 12) >> 4) << 2;
    if (doff < 20 || l4 + doff > ipEnd) return R_BAD_L4;
    pTcpFlags = <u32>load<u8>(l4 + 13);
    pL4Csum = l4 + 16;
  } else if (proto == 17) {
    if (l4 + 8 > ipEnd) return R_TRUNCATED;
    pL4Csum = l4 + 6;
  } else if (proto == 1 || proto == 58) {
    if ((proto == 1) == pV6) return R_PROTO; // ICMP in IPv6 or ICMPv6 in IPv4
    if (l4 + 8 > ipEnd) return R_TRUNCATED;
    return R_NONE;
  } else {
    return R_PROTO;
  }
  pSport = <u32>load<u16>(l4);
  pDport = <u32>load<u16>(l4 + 2);
  if (pSport == 0 || pDport == 0) return R_BAD_L4;
  return R_NONE;
}
