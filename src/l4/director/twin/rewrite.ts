// TS twin of wasm/assembly/director-rewrite.ts.
import {
  DIR_OFF, DG_SRC, DG_DST, CT_CADDR, CT_VADDR, CT_LADDR, CT_DADDR, CT_CPORT, CT_VPORT, CT_LPORT,
  CT_DPORT, VS_SRC, D_ADDR, DESC_OFF, DESC_LEN,
} from "../../../core/layout.ts";
import { P } from "./state.ts";
import {
  ld8, ld16, ld32, st8, st16, st32, copy, put16, putAddr, applyDelta, applyUdpDelta, delta16, sum, finish, swap16, be16,
} from "./mem.ts";

const srcField = (): number => P.v6 ? P.l3 + 8 : P.l3 + 12;
const dstField = (): number => P.v6 ? P.l3 + 24 : P.l3 + 16;
function applyL4(d: number): void {
  if (P.proto === 6) applyDelta(P.l4Csum, d);
  else applyUdpDelta(P.l4Csum, d, P.v6);
}

export function rewriteIn(e: number, fullnat: boolean): void {
  let ip = putAddr(dstField(), e + CT_DADDR, P.v6);
  let l4 = ip + put16(P.l4 + 2, ld16(e + CT_DPORT));
  if (fullnat) {
    const a = putAddr(srcField(), e + CT_LADDR, P.v6);
    ip += a;
    l4 += a + put16(P.l4, ld16(e + CT_LPORT));
  }
  if (!P.v6) applyDelta(P.l3 + 10, ip);
  applyL4(l4);
}

export function rewriteOut(e: number, fullnat: boolean): void {
  let ip = putAddr(srcField(), e + CT_VADDR, P.v6);
  let l4 = ip + put16(P.l4, ld16(e + CT_VPORT));
  if (fullnat) {
    const a = putAddr(dstField(), e + CT_CADDR, P.v6);
    ip += a;
    l4 += a + put16(P.l4 + 2, ld16(e + CT_CPORT));
  }
  if (!P.v6) applyDelta(P.l3 + 10, ip);
  applyL4(l4);
}

export function setMacs(frame: number, dmac: number, smac: number): void {
  copy(frame, dmac, 6);
  copy(frame + 6, smac, 6);
}

export function insertToa(desc: number, e: number): boolean {
  const optLen = P.v6 ? 20 : 8;
  const doff = (ld8(P.l4 + 12) >> 4) << 2;
  if (doff + optLen > 60) return false;
  const off = ld32(desc + DESC_OFF), hdrEnd = P.l4 + doff;
  copy(off - optLen, off, hdrEnd - off);
  const l3 = P.l3 - optLen, l4 = P.l4 - optLen, opt = hdrEnd - optLen;
  st8(opt, 254);
  st8(opt + 1, optLen);
  st16(opt + 2, ld16(e + CT_CPORT));
  copy(opt + 4, e + CT_CADDR, P.v6 ? 16 : 4);
  const l4LenOld = P.end - P.l4;
  let d = delta16(swap16(l4LenOld), swap16(l4LenOld + optLen));
  if (P.v6) {
    put16(l3 + 4, swap16(be16(l3 + 4) + optLen));
  } else {
    applyDelta(l3 + 10, put16(l3 + 2, swap16(be16(l3 + 2) + optLen)));
  }
  d += put16(l4 + 12, ld16(l4 + 12) + ((optLen >> 2) << 4));
  d += sum(opt, optLen);
  applyDelta(l4 + 16, d);
  st32(desc + DESC_OFF, off - optLen);
  st32(desc + DESC_LEN, P.end - off + optLen);
  return true;
}

export function encapsulate(desc: number, vs: number, dest: number, l2: boolean, dmac: number, smac: number): void {
  const outer = P.v6 ? 40 : 20, inner = P.end - P.l3, h = P.l3 - outer;
  if (P.v6) {
    st32(h, 0x60);
    st16(h + 4, swap16(inner));
    st8(h + 6, 41);
    st8(h + 7, 64);
    copy(h + 8, vs + VS_SRC, 16);
    copy(h + 24, dest + D_ADDR, 16);
  } else {
    st8(h, 0x45);
    st8(h + 1, ld8(P.l3 + 1));
    st16(h + 2, swap16(inner + 20));
    st16(h + 4, 0);
    st16(h + 6, ld16(P.l3 + 6) & 0x0040);
    st8(h + 8, 64);
    st8(h + 9, 4);
    st16(h + 10, 0);
    st32(h + 12, ld32(vs + VS_SRC));
    st32(h + 16, ld32(dest + D_ADDR));
    st16(h + 10, finish(sum(h, 20)));
  }
  let start = h;
  if (l2) {
    start = h - 14;
    setMacs(start, dmac, smac);
    st16(start + 12, P.v6 ? 0xdd86 : 0x0008);
  }
  st32(desc + DESC_OFF, start);
  st32(desc + DESC_LEN, P.end - start);
}

export function icmpTooBig(desc: number, mtu: number, l2: boolean): void {
  const off = ld32(desc + DESC_OFF), hdr = P.v6 ? 48 : 28;
  const quoted = Math.min(P.end - P.l3, P.v6 ? 1232 : 548);
  const h = P.l3 - hdr, icmp = h + (P.v6 ? 40 : 20);
  let start = h;
  if (l2) {
    start = h - 14;
    const macs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((k) => ld8(off + k));
    for (let k = 0; k < 6; k++) { st8(start + k, macs[6 + k]); st8(start + 6 + k, macs[k]); }
    st16(start + 12, P.v6 ? 0xdd86 : 0x0008);
  }
  const msgLen = 8 + quoted;
  if (P.v6) {
    st32(h, 0x60);
    st16(h + 4, swap16(msgLen));
    st8(h + 6, 58);
    st8(h + 7, 64);
    copy(h + 8, DIR_OFF + DG_DST, 16);
    copy(h + 24, DIR_OFF + DG_SRC, 16);
    st8(icmp, 2); st8(icmp + 1, 0); st16(icmp + 2, 0);
    const m = Math.max(mtu, 1280);
    st16(icmp + 4, swap16(m >>> 16)); st16(icmp + 6, swap16(m & 0xffff));
    const s = sum(h + 8, 32) + swap16(msgLen) + swap16(58) + sum(icmp, msgLen);
    st16(icmp + 2, finish(s));
  } else {
    st8(h, 0x45); st8(h + 1, 0);
    st16(h + 2, swap16(20 + msgLen));
    st16(h + 4, 0); st16(h + 6, 0x0040);
    st8(h + 8, 64); st8(h + 9, 1); st16(h + 10, 0);
    st32(h + 12, ld32(DIR_OFF + DG_DST));
    st32(h + 16, ld32(DIR_OFF + DG_SRC));
    st8(icmp, 3); st8(icmp + 1, 4); st16(icmp + 2, 0); st16(icmp + 4, 0);
    st16(icmp + 6, swap16(mtu));
    st16(icmp + 2, finish(sum(icmp, msgLen)));
    st16(h + 10, finish(sum(h, 20)));
  }
  st32(desc + DESC_OFF, start);
  st32(desc + DESC_LEN, icmp + msgLen - start);
}
