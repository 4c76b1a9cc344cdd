// TS twin of wasm/assembly/director-proxy.ts (PROXY protocol v2 through fullnat).
import { CT_CADDR, CT_VADDR, CT_CPORT, CT_VPORT, CT_FLAGS, CT_FIRST_SEQ, CTF_PROXY, DESC_OFF, DESC_LEN } from "../../../core/layout.ts";
import { P, TCP_SYN, TCP_ACK } from "./state.ts";
import { ld8, ld16, ld32, st8, st16, st32, copy, put16, delta16, applyDelta, sum, swap16, be16 } from "./mem.ts";
import { I } from "./icmp.ts";

export const proxyHeaderLength = (v6: boolean): number => v6 ? 52 : 28;
/** The v2 signature and version/command (PROXY). */
const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21];

const seqOf = (p: number): number => ((be16(p) << 16) | be16(p + 2)) >>> 0;
function putSeq(p: number, host: number): number {
  host >>>= 0;
  return put16(p, swap16(host >>> 16)) + put16(p + 2, swap16(host & 0xffff));
}
const doffOf = (l4: number): number => (ld8(l4 + 12) >> 4) << 2;
const optionsSum = (): number => sum(P.l4 + 20, doffOf(P.l4) - 20);

function editOptions(stripSack: boolean, mssCut: number): void {
  const end = P.l4 + doffOf(P.l4);
  let p = P.l4 + 20;
  while (p < end) {
    const kind = ld8(p);
    if (kind === 0) break;
    if (kind === 1) { p++; continue; }
    if (p + 1 >= end) break;
    const len = ld8(p + 1);
    if (len < 2 || p + len > end) break;
    if (kind === 4 && len === 2 && stripSack) { st8(p, 1); st8(p + 1, 1); }
    if (kind === 2 && len === 4 && mssCut > 0) {
      const mss = be16(p + 2), cut = mss > mssCut + 64 ? mss - mssCut : 64;
      st8(p + 2, cut >> 8); st8(p + 3, cut & 0xff);
    }
    p += len;
  }
}

function editOptionsWithChecksum(stripSack: boolean, mssCut: number): void {
  const before = optionsSum();
  editOptions(stripSack, mssCut);
  applyDelta(P.l4 + 16, delta16(before, optionsSum()));
}

export function proxyIn(e: number): boolean {
  const seq = seqOf(P.l4 + 4);
  if ((P.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
    st32(e + CT_FIRST_SEQ, seq + 1);
    editOptionsWithChecksum(true, 0);
    return false;
  }
  const rel = (seq - ld32(e + CT_FIRST_SEQ)) | 0;
  if (rel > 0) {
    applyDelta(P.l4 + 16, putSeq(P.l4 + 4, seq + proxyHeaderLength(P.v6)));
    return false;
  }
  return rel === 0 && P.l4 + doffOf(P.l4) < P.end;
}

export function proxyOut(e: number): void {
  const len = proxyHeaderLength(P.v6);
  if ((P.tcpFlags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) {
    editOptionsWithChecksum(false, len);
    return;
  }
  if ((P.tcpFlags & TCP_ACK) === 0 || (ld8(e + CT_FLAGS) & CTF_PROXY) === 0) return;
  const ack = seqOf(P.l4 + 8), first = ld32(e + CT_FIRST_SEQ), rel = (ack - first) | 0;
  if (rel <= 0) return;
  applyDelta(P.l4 + 16, putSeq(P.l4 + 8, unshifted(ack, first, len)));
}

const unshifted = (n: number, first: number, len: number): number => ((n - first) | 0) >= len ? n - len : first;

export function proxyIcmpOut(e: number): void {
  if (I.proto !== 6 || I.l4 + 8 > P.end) return;
  const seq = seqOf(I.l4 + 4), first = ld32(e + CT_FIRST_SEQ);
  if (((seq - first) | 0) <= 0) return;
  let icmp = putSeq(I.l4 + 4, unshifted(seq, first, proxyHeaderLength(P.v6)));
  const ck = I.l4 + 16;
  if (ck + 2 <= P.end) {
    const old = ld16(ck);
    applyDelta(ck, icmp);
    icmp += delta16(old, ld16(ck));
  }
  applyDelta(P.l4 + 2, icmp);
}

export function insertProxyHeader(desc: number, e: number, moved: number): void {
  const len = proxyHeaderLength(P.v6), off = ld32(desc + DESC_OFF);
  const l3 = P.l3 - moved, l4 = P.l4 - moved, hdrEnd = l4 + doffOf(l4);
  copy(off - len, off, hdrEnd - off);
  const nl3 = l3 - len, nl4 = l4 - len, h = hdrEnd - len;
  SIGNATURE.forEach((b, k) => st8(h + k, b));
  st8(h + 13, P.v6 ? 0x21 : 0x11);
  st16(h + 14, swap16(len - 16));
  const alen = P.v6 ? 16 : 4;
  copy(h + 16, e + CT_CADDR, alen);
  copy(h + 16 + alen, e + CT_VADDR, alen);
  st16(h + 16 + 2 * alen, ld16(e + CT_CPORT));
  st16(h + 18 + 2 * alen, ld16(e + CT_VPORT));
  const l4LenOld = P.end - l4;
  let d = delta16(swap16(l4LenOld), swap16(l4LenOld + len));
  if (P.v6) put16(nl3 + 4, swap16(be16(nl3 + 4) + len));
  else applyDelta(nl3 + 10, put16(nl3 + 2, swap16(be16(nl3 + 2) + len)));
  d += sum(h, len);
  applyDelta(nl4 + 16, d);
  st8(e + CT_FLAGS, ld8(e + CT_FLAGS) | CTF_PROXY);
  st32(desc + DESC_OFF, off - len);
  st32(desc + DESC_LEN, P.end - off + len);
}
