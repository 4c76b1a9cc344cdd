// Rewrite and encapsulation kernels over the packet the parse kernel described: NAT and FULLNAT
// address/port rewrites with incremental checksums, DR's MAC rewrite, TUN's IPIP / IPv6-in-IPv6
// header, TOA (TCP option 254), and the ICMP "too big" error sent back when a tunnel would not
// fit. Headers grow backwards into the packet's headroom, so the payload never moves.
import {
  DIR_OFF, DG_SRC, DG_DST, CT_CADDR, CT_VADDR, CT_LADDR, CT_DADDR, CT_CPORT, CT_VPORT, CT_LPORT,
  CT_DPORT, VS_SRC, D_ADDR, DESC_OFF, DESC_LEN,
} from "./layout";
import { pL3, pL4, pEnd, pV6, pProto, pL4Csum } from "./director-parse";
import { put16, putAddr, applyDelta, applyUdpDelta, delta16, sum, finish } from "./director-csum";

@inline function srcField(): u32 { return pV6 ? pL3 + 8 : pL3 + 12; }
@inline function dstField(): u32 { return pV6 ? pL3 + 24 : pL3 + 16; }

@inline function applyL4(d: u32): void {
  if (pProto == 6) applyDelta(pL4Csum, d);
  else applyUdpDelta(pL4Csum, d, pV6);
}

// Client -> server: destination to the server; fullnat also the source to the local address.
@inline export function rewriteIn(e: u32, fullnat: bool): void {
  let ip = putAddr(dstField(), e + CT_DADDR, pV6);
  let l4 = ip + put16(pL4 + 2, <u32>load<u16>(e + CT_DPORT));
  if (fullnat) {
    const a = putAddr(srcField(), e + CT_LADDR, pV6);
    ip += a;
    l4 += a + put16(pL4, <u32>load<u16>(e + CT_LPORT));
  }
  if (!pV6) applyDelta(pL3 + 10, ip);
  applyL4(l4);
}

// Server -> client: the source back to the VIP; fullnat also the destination back to the client.
@inline export function rewriteOut(e: u32, fullnat: bool): void {
  let ip = putAddr(srcField(), e + CT_VADDR, pV6);
  let l4 = ip + put16(pL4, <u32>load<u16>(e + CT_VPORT));
  if (fullnat) {
    const a = putAddr(dstField(), e + CT_CADDR, pV6);
    ip += a;
    l4 += a + put16(pL4 + 2, <u32>load<u16>(e + CT_CPORT));
  }
  if (!pV6) applyDelta(pL3 + 10, ip);
  applyL4(l4);
}

// Ethernet destination and source MACs.
export function setMacs(frame: u32, dmac: u32, smac: u32): void {
  store<u32>(frame, load<u32>(dmac)); store<u16>(frame + 4, load<u16>(dmac + 4));
  store<u32>(frame + 6, load<u32>(smac)); store<u16>(frame + 10, load<u16>(smac + 4));
}

// Inserts TOA (kind 254: the client's port and address) after the TCP header's options, moving
// the headers back by the option's length. False when the header has no room for it.
export function insertToa(desc: u32, e: u32, l2: bool): bool {
  const optLen: u32 = pV6 ? 20 : 8;
  const doff = (<u32>load<u8>(pL4 + 12) >> 4) << 2;
  if (doff + optLen > 60) return false;
  const off = <u32>load<u32>(desc + DESC_OFF);
  const hdrEnd = pL4 + doff;
  memory.copy(off - optLen, off, hdrEnd - off);
  const l3 = pL3 - optLen, l4 = pL4 - optLen, opt = hdrEnd - optLen;
  store<u8>(opt, 254);
  store<u8>(opt + 1, <u8>optLen);
  store<u16>(opt + 2, load<u16>(e + CT_CPORT));
  if (pV6) {
    store<u64>(opt + 4, load<u64>(e + CT_CADDR));
    store<u64>(opt + 12, load<u64>(e + CT_CADDR + 8));
  } else {
    store<u32>(opt + 4, load<u32>(e + CT_CADDR));
  }
  const l4LenOld = <u32>(pEnd - pL4);
  let d: u32 = delta16(<u32>bswap<u16>(<u16>l4LenOld), <u32>bswap<u16>(<u16>(l4LenOld + <u32>optLen)));
  if (pV6) {
    put16(l3 + 4, <u32>bswap<u16>(<u16>(<u32>bswap<u16>(load<u16>(l3 + 4)) + <u32>optLen)));
  } else {
    const ipd = put16(l3 + 2, <u32>bswap<u16>(<u16>(<u32>bswap<u16>(load<u16>(l3 + 2)) + <u32>optLen)));
    applyDelta(l3 + 10, ipd);
  }
  // Data offset grows by optLen / 4 words: the high nibble of byte 12.
  const w = <u32>load<u16>(l4 + 12);
  d += put16(l4 + 12, w + (<u32>(optLen >> 2) << 4));
  d += sum(opt, <i32>optLen);
  applyDelta(l4 + 16, d);
  store<u32>(desc + DESC_OFF, <u32>(off - optLen));
  store<u32>(desc + DESC_LEN, <u32>(pEnd - off + optLen));
  return true;
}

// Prepends an IPIP (or IPv6-in-IPv6) header from the director's address to the server's.
export function encapsulate(desc: u32, vs: u32, dest: u32, l2: bool, dmac: u32, smac: u32): void {
  const outer: u32 = pV6 ? 40 : 20;
  const inner = <u32>(pEnd - pL3);
  const h = pL3 - outer;
  if (pV6) {
    store<u32>(h, 0x60);
    store<u16>(h + 4, bswap<u16>(<u16>inner));
    store<u8>(h + 6, 41);
    store<u8>(h + 7, 64);
    memory.copy(h + 8, vs + VS_SRC, 16);
    memory.copy(h + 24, dest + D_ADDR, 16);
  } else {
    store<u8>(h, 0x45);
    store<u8>(h + 1, load<u8>(pL3 + 1));
    store<u16>(h + 2, bswap<u16>(<u16>(inner + 20)));
    store<u16>(h + 4, 0);
    store<u16>(h + 6, load<u16>(pL3 + 6) & 0x0040); // the inner DF bit
    store<u8>(h + 8, 64);
    store<u8>(h + 9, 4);
    store<u16>(h + 10, 0);
    store<u32>(h + 12, load<u32>(vs + VS_SRC));
    store<u32>(h + 16, load<u32>(dest + D_ADDR));
    store<u16>(h + 10, finish(sum(h, 20)));
  }
  let start = h;
  if (l2) {
    start = h - 14;
    setMacs(start, dmac, smac);
    store<u16>(start + 12, pV6 ? 0xdd86 : 0x0008);
  }
  store<u32>(desc + DESC_OFF, <u32>start);
  store<u32>(desc + DESC_LEN, <u32>(pEnd - start));
}

// Replaces the packet with an ICMP "fragmentation needed" (IPv4, RFC 1191) or ICMPv6 "packet too
// big" (RFC 4443) from the address the client sent to, quoting the packet's start. The quoted
// bytes stay where they are; the new headers go in front of them.
export function icmpTooBig(desc: u32, mtu: u32, l2: bool): void {
  const off = <u32>load<u32>(desc + DESC_OFF);
  const hdr: u32 = pV6 ? 48 : 28;
  const maxQuote: u32 = pV6 ? 1232 : 548;
  let quoted = <u32>(pEnd - pL3);
  if (quoted > maxQuote) quoted = maxQuote;
  const h = pL3 - hdr, icmp = h + (pV6 ? 40 : 20);
  let start = h;
  if (l2) {
    // Back to whoever sent it: the MACs swap.
    const d0 = load<u32>(off), d1 = load<u16>(off + 4), s0 = load<u32>(off + 6), s1 = load<u16>(off + 10);
    start = h - 14;
    store<u32>(start, s0); store<u16>(start + 4, s1);
    store<u32>(start + 6, d0); store<u16>(start + 10, d1);
    store<u16>(start + 12, pV6 ? 0xdd86 : 0x0008);
  }
  const msgLen = 8 + quoted;
  if (pV6) {
    store<u32>(h, 0x60);
    store<u16>(h + 4, bswap<u16>(<u16>msgLen));
    store<u8>(h + 6, 58);
    store<u8>(h + 7, 64);
    memory.copy(h + 8, DIR_OFF + DG_DST, 16);
    memory.copy(h + 24, DIR_OFF + DG_SRC, 16);
    store<u8>(icmp, 2); store<u8>(icmp + 1, 0); store<u16>(icmp + 2, 0);
    store<u32>(icmp + 4, bswap<u32>(mtu < 1280 ? 1280 : mtu));
    const s = sum(h + 8, 32) + <u32>bswap<u16>(<u16>msgLen) + <u32>bswap<u16>(58) + sum(icmp, <i32>msgLen);
    store<u16>(icmp + 2, finish(s));
  } else {
    store<u8>(h, 0x45); store<u8>(h + 1, 0);
    store<u16>(h + 2, bswap<u16>(<u16>(20 + msgLen)));
    store<u16>(h + 4, 0); store<u16>(h + 6, 0x0040);
    store<u8>(h + 8, 64); store<u8>(h + 9, 1); store<u16>(h + 10, 0);
    store<u32>(h + 12, load<u32>(DIR_OFF + DG_DST));
    store<u32>(h + 16, load<u32>(DIR_OFF + DG_SRC));
    store<u8>(icmp, 3); store<u8>(icmp + 1, 4); store<u16>(icmp + 2, 0); store<u16>(icmp + 4, 0);
    store<u16>(icmp + 6, bswap<u16>(<u16>mtu));
    store<u16>(icmp + 2, finish(sum(icmp, <i32>msgLen)));
    store<u16>(h + 10, finish(sum(h, 20)));
  }
  store<u32>(desc + DESC_OFF, <u32>start);
  store<u32>(desc + DESC_LEN, <u32>(icmp + msgLen - start));
}
