// TS twin of wasm/assembly/director-icmp.ts.
import {
  DIR_OFF, DG_ISRC, DG_IDST, CT_NONE, CT_IN, CT_CADDR, CT_VADDR, CT_LADDR, CT_DADDR, CT_CPORT,
  CT_VPORT, CT_LPORT, CT_DPORT, R_ICMP_NOT_ERROR, R_ICMP_BAD, R_ICMP_UNTRACKED,
} from "../../../core/layout.ts";
import { P } from "./state.ts";
import { ld8, ld16, be16, put16, putAddr, applyDelta, delta16 } from "./mem.ts";
import { keyAddr } from "./parse.ts";
import { ctLookup, protoKey } from "./conntrack.ts";

export const I = { link: CT_NONE, inner: 0, l4: 0, proto: 0 };

export function icmpLookup(): number {
  const type = ld8(P.l4);
  const isError = P.v6 ? type >= 1 && type <= 4 : type === 3 || type === 11 || type === 12;
  if (!isError) return R_ICMP_NOT_ERROR;
  const inner = P.l4 + 8;
  let isrc: number, idst: number;
  if (P.v6) {
    if (inner + 44 > P.end || (ld8(inner) >> 4) !== 6) return R_ICMP_BAD;
    I.proto = ld8(inner + 6);
    I.l4 = inner + 40;
    isrc = inner + 8; idst = inner + 24;
  } else {
    if (inner + 20 > P.end || (ld8(inner) >> 4) !== 4) return R_ICMP_BAD;
    const ihl = (ld8(inner) & 15) << 2;
    if (ihl < 20 || inner + ihl + 4 > P.end) return R_ICMP_BAD;
    if ((be16(inner + 6) & 0x1fff) !== 0) return R_ICMP_BAD;
    I.proto = ld8(inner + 9);
    I.l4 = inner + ihl;
    isrc = inner + 12; idst = inner + 16;
  }
  if (I.proto !== 6 && I.proto !== 17) return R_ICMP_UNTRACKED;
  I.inner = inner;
  keyAddr(DIR_OFF + DG_ISRC, isrc, P.v6);
  keyAddr(DIR_OFF + DG_IDST, idst, P.v6);
  I.link = ctLookup(DIR_OFF + DG_IDST, DIR_OFF + DG_ISRC, ld16(I.l4 + 2), ld16(I.l4), protoKey(I.proto, P.v6, false), P.v6);
  return I.link === CT_NONE ? R_ICMP_UNTRACKED : 0;
}

export function icmpRewrite(e: number, dir: number, fullnat: boolean): void {
  const v6 = P.v6, iIn = I.inner, iL4 = I.l4;
  const oSrc = v6 ? P.l3 + 8 : P.l3 + 12, oDst = v6 ? P.l3 + 24 : P.l3 + 16;
  const iSrc = v6 ? iIn + 8 : iIn + 12, iDst = v6 ? iIn + 24 : iIn + 16;
  let outer = 0, inner = 0, ports = 0;
  if (dir === CT_IN) {
    outer += putAddr(oDst, e + CT_DADDR, v6);
    inner += putAddr(iSrc, e + CT_DADDR, v6);
    ports += put16(iL4, ld16(e + CT_DPORT));
    if (fullnat) {
      outer += putAddr(oSrc, e + CT_LADDR, v6);
      inner += putAddr(iDst, e + CT_LADDR, v6);
      ports += put16(iL4 + 2, ld16(e + CT_LPORT));
    }
  } else {
    outer += putAddr(oSrc, e + CT_VADDR, v6);
    inner += putAddr(iDst, e + CT_VADDR, v6);
    ports += put16(iL4 + 2, ld16(e + CT_VPORT));
    if (fullnat) {
      outer += putAddr(oDst, e + CT_CADDR, v6);
      inner += putAddr(iSrc, e + CT_CADDR, v6);
      ports += put16(iL4, ld16(e + CT_CPORT));
    }
  }
  let icmp = inner + ports;
  if (!v6) {
    const old = ld16(iIn + 10);
    applyDelta(iIn + 10, inner);
    icmp += delta16(old, ld16(iIn + 10));
  } else {
    icmp += outer;
  }
  const ck = iL4 + (I.proto === 6 ? 16 : 6);
  if (ck + 2 <= P.end) {
    const old = ld16(ck);
    if (!(I.proto === 17 && old === 0 && !v6)) {
      applyDelta(ck, inner + ports);
      icmp += delta16(old, ld16(ck));
    }
  }
  applyDelta(P.l4 + 2, icmp);
  if (!v6) applyDelta(P.l3 + 10, outer);
}
