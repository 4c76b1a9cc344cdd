// PROXY protocol v2 through the packet path (fullnat over TCP): the header's bytes go in front of
// the client's first payload (its sequence number is the SYN's + 1, kept in the entry), and from
// there on the client's sequence numbers are shifted up by the header's length toward the server
// and the server's acknowledgements shifted back down toward the client. SACK is turned off for
// the connection (SACK-permitted on the client's SYN becomes two NOPs), so no SACK block would
// need shifting; the server's MSS on its SYN-ACK is lowered by the header's length, so the first
// segment still fits the path once the header is in it. A retransmission of the first segment
// gets the same header again. An ICMP error about a client's segment has the quoted sequence
// number put back into the client's numbering (its stack checks it is one it sent).
import {
  CT_CADDR, CT_VADDR, CT_CPORT, CT_VPORT, CT_FLAGS, CT_FIRST_SEQ, CTF_PROXY, DESC_OFF, DESC_LEN,
} from "./layout";
import { pL3, pL4, pEnd, pV6, pTcpFlags, TCP_SYN, TCP_ACK } from "./director-parse";
import { put16, delta16, applyDelta, sum } from "./director-csum";
import { iL4, iProto } from "./director-icmp";

// The header's length: 16 bytes, then addresses and ports (IPv4 12, IPv6 36).
@inline export function proxyHeaderLength(v6: bool): u32 { return v6 ? 52 : 28; }

@inline function seqOf(p: u32): u32 { return bswap<u32>(load<u32>(p)); }

// Replaces the u32 at p (a sequence or acknowledgement number, host order in) and returns the
// checksum delta.
@inline function putSeq(p: u32, host: u32): u32 {
  const net = bswap<u32>(host);
  return put16(p, net & 0xffff) + put16(p + 2, net >>> 16);
}

// The checksum delta of an edit of the TCP options, from their sum before it: the options area
// starts at an even offset, so its sum over words before and after gives the delta, wherever in
// it an option sits.
function optionsDelta(before: u32): u32 {
  const doff = (<u32>load<u8>(pL4 + 12) >> 4) << 2;
  return delta16(before, sum(pL4 + 20, <i32>doff - 20));
}

@inline function optionsSum(): u32 {
  const doff = (<u32>load<u8>(pL4 + 12) >> 4) << 2;
  return sum(pL4 + 20, <i32>doff - 20);
}

// Walks the TCP options: for SACK-permitted (kind 4) writes two NOPs; for MSS (kind 2) lowers it
// by `mssCut`. Stops at the end-of-options or a malformed length.
function editOptions(stripSack: bool, mssCut: u32): void {
  const end = pL4 + ((<u32>load<u8>(pL4 + 12) >> 4) << 2);
  let p = pL4 + 20;
  while (p < end) {
    const kind = <u32>load<u8>(p);
    if (kind == 0) break;
    if (kind == 1) { p++; continue; }
    if (p + 1 >= end) break;
    const len = <u32>load<u8>(p + 1);
    if (len < 2 || p + len > end) break;
    if (kind == 4 && len == 2 && stripSack) { store<u8>(p, 1); store<u8>(p + 1, 1); }
    if (kind == 2 && len == 4 && mssCut > 0) {
      const mss = (<u32>load<u8>(p + 2) << 8) | <u32>load<u8>(p + 3);
      const cut = mss > mssCut + 64 ? mss - mssCut : 64;
      store<u8>(p + 2, <u8>(cut >> 8)); store<u8>(p + 3, <u8>cut);
    }
    p += len;
  }
}

// Client -> server, after the addresses were rewritten (positions as parsed): records the first
// sequence number on the SYN and turns SACK off; shifts later segments' sequence numbers.
// Returns whether this packet carries the first payload (the header goes in front of it).
export function proxyIn(e: u32): bool {
  const seq = seqOf(pL4 + 4);
  if ((pTcpFlags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
    store<u32>(e + CT_FIRST_SEQ, seq + 1);
    const before = optionsSum();
    editOptions(true, 0);
    applyDelta(pL4 + 16, optionsDelta(before));
    return false;
  }
  const rel = <i32>(seq - load<u32>(e + CT_FIRST_SEQ));
  if (rel > 0) {
    applyDelta(pL4 + 16, putSeq(pL4 + 4, seq + proxyHeaderLength(pV6)));
    return false;
  }
  const doff = (<u32>load<u8>(pL4 + 12) >> 4) << 2;
  return rel == 0 && pL4 + doff < pEnd;
}

// Server -> client, after the rewrite: the SYN-ACK's MSS lowered; acknowledgements of the header
// and what follows it shifted back into the client's numbering.
export function proxyOut(e: u32): void {
  const len = proxyHeaderLength(pV6);
  if ((pTcpFlags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
    const before = optionsSum();
    editOptions(false, len);
    applyDelta(pL4 + 16, optionsDelta(before));
    return;
  }
  if ((pTcpFlags & TCP_ACK) == 0 || (load<u8>(e + CT_FLAGS) & CTF_PROXY) == 0) return;
  const ack = seqOf(pL4 + 8), first = load<u32>(e + CT_FIRST_SEQ);
  const rel = <i32>(ack - first);
  if (rel <= 0) return;
  // Part of the header acknowledged: to the client, none of its own bytes yet.
  applyDelta(pL4 + 16, putSeq(pL4 + 8, unshifted(ack, first, len)));
}

// A number in the server's numbering back in the client's: past the header, less its length;
// inside it, the first payload byte.
@inline function unshifted(n: u32, first: u32, len: u32): u32 {
  return <i32>(n - first) >= <i32>len ? n - len : first;
}

// An ICMP error from the servers' side (already translated) about a segment of the client's:
// the quoted sequence number back in the client's numbering, the quoted TCP checksum (where
// quoted) and the ICMP checksum following.
export function proxyIcmpOut(e: u32): void {
  if (iProto != 6 || iL4 + 8 > pEnd) return;
  const seq = seqOf(iL4 + 4), first = load<u32>(e + CT_FIRST_SEQ);
  if (<i32>(seq - first) <= 0) return;
  let icmp = putSeq(iL4 + 4, unshifted(seq, first, proxyHeaderLength(pV6)));
  const ck = iL4 + 16;
  if (ck + 2 <= pEnd) {
    const old = <u32>load<u16>(ck);
    applyDelta(ck, icmp);
    icmp += delta16(old, <u32>load<u16>(ck));
  }
  applyDelta(pL4 + 2, icmp);
}

// Writes the header in front of the first payload: the packet's headers (from the descriptor's
// offset, which TOA may have moved back by `moved` bytes from where the parse found them) move
// back by the header's length into the headroom; lengths and checksums follow.
export function insertProxyHeader(desc: u32, e: u32, moved: u32): void {
  const len = proxyHeaderLength(pV6);
  const off = load<u32>(desc + DESC_OFF);
  const l3 = pL3 - moved, l4 = pL4 - moved;
  const hdrEnd = l4 + ((<u32>load<u8>(l4 + 12) >> 4) << 2);
  memory.copy(off - len, off, hdrEnd - off);
  const nl3 = l3 - len, nl4 = l4 - len, h = hdrEnd - len;
  // Signature, version 2 / PROXY, then TCP over IPv4 (0x11) or IPv6 (0x21) and the address block's length.
  store<u64>(h, 0x510a0d000a0d0a0d); // \r\n\r\n\0\r\nQ
  store<u32>(h + 8, 0x0a544955); // UIT\n
  store<u8>(h + 12, 0x21);
  store<u8>(h + 13, pV6 ? 0x21 : 0x11);
  store<u16>(h + 14, bswap<u16>(<u16>(len - 16)));
  const alen: u32 = pV6 ? 16 : 4;
  memory.copy(h + 16, e + CT_CADDR, alen);
  memory.copy(h + 16 + alen, e + CT_VADDR, alen);
  store<u16>(h + 16 + 2 * alen, load<u16>(e + CT_CPORT));
  store<u16>(h + 18 + 2 * alen, load<u16>(e + CT_VPORT));
  const l4LenOld = pEnd - l4;
  let d = delta16(<u32>bswap<u16>(<u16>l4LenOld), <u32>bswap<u16>(<u16>(l4LenOld + len)));
  if (pV6) {
    put16(nl3 + 4, <u32>bswap<u16>(<u16>(<u32>bswap<u16>(load<u16>(nl3 + 4)) + len)));
  } else {
    applyDelta(nl3 + 10, put16(nl3 + 2, <u32>bswap<u16>(<u16>(<u32>bswap<u16>(load<u16>(nl3 + 2)) + len))));
  }
  d += sum(h, <i32>len);
  applyDelta(nl4 + 16, d);
  store<u8>(e + CT_FLAGS, load<u8>(e + CT_FLAGS) | CTF_PROXY);
  store<u32>(desc + DESC_OFF, off - len);
  store<u32>(desc + DESC_LEN, pEnd - off + len);
}
