// TS twin of wasm/assembly/director-parse.ts.
import { DIR_OFF, DG_SRC, DG_DST, R_NONE, R_TRUNCATED, R_BAD_L2, R_BAD_IP, R_FRAGMENT, R_PROTO, R_BAD_L4 } from "../../../core/layout.ts";
import { ld8, ld16, ld32, st32, be16 } from "./mem.ts";
import { P } from "./state.ts";

export function keyAddr(dst: number, src: number, v6: boolean): void {
  st32(dst, ld32(src));
  st32(dst + 4, v6 ? ld32(src + 4) : 0);
  st32(dst + 8, v6 ? ld32(src + 8) : 0);
  st32(dst + 12, v6 ? ld32(src + 12) : 0);
}

export function parse(off: number, len: number, l2: boolean): number {
  const end = off + len;
  let l3 = off, et = 0;
  if (l2) {
    if (len < 14) return R_TRUNCATED;
    et = ld16(off + 12);
    if (et !== 0x0008 && et !== 0xdd86) return R_BAD_L2;
    l3 = off + 14;
  }
  if (l3 + 1 > end) return R_TRUNCATED;
  const ver = ld8(l3) >> 4;
  if (l2 && (et === 0x0008) !== (ver === 4)) return R_BAD_IP;
  let l4 = 0, proto = 0, ipEnd = 0;
  if (ver === 4) {
    if (l3 + 20 > end) return R_TRUNCATED;
    const ihl = (ld8(l3) & 15) << 2;
    if (ihl < 20) return R_BAD_IP;
    const total = be16(l3 + 2);
    if (total < ihl) return R_BAD_IP;
    if (l3 + total > end) return R_TRUNCATED;
    if ((be16(l3 + 6) & 0x3fff) !== 0) return R_FRAGMENT;
    proto = ld8(l3 + 9);
    l4 = l3 + ihl;
    ipEnd = l3 + total;
    keyAddr(DIR_OFF + DG_SRC, l3 + 12, false);
    keyAddr(DIR_OFF + DG_DST, l3 + 16, false);
    P.v6 = false;
  } else if (ver === 6) {
    if (l3 + 40 > end) return R_TRUNCATED;
    ipEnd = l3 + 40 + be16(l3 + 4);
    if (ipEnd > end) return R_TRUNCATED;
    proto = ld8(l3 + 6);
    l4 = l3 + 40;
    for (let k = 0; k < 4; k++) {
      if (proto === 44) return R_FRAGMENT;
      if (proto !== 0 && proto !== 43 && proto !== 60) break;
      if (l4 + 8 > ipEnd) return R_TRUNCATED;
      proto = ld8(l4);
      l4 += (ld8(l4 + 1) + 1) << 3;
    }
    if (proto === 44) return R_FRAGMENT;
    if (l4 > ipEnd) return R_TRUNCATED;
    keyAddr(DIR_OFF + DG_SRC, l3 + 8, true);
    keyAddr(DIR_OFF + DG_DST, l3 + 24, true);
    P.v6 = true;
  } else {
    return R_BAD_IP;
  }
  P.l3 = l3; P.l4 = l4; P.end = ipEnd; P.proto = proto; P.tcpFlags = 0;
  if (proto === 6) {
    if (l4 + 20 > ipEnd) return R_TRUNCATED;
    const doff = (ld8(l4 + 12) >> 4) << 2;
    if (doff < 20 || l4 + doff > ipEnd) return R_BAD_L4;
    P.tcpFlags = ld8(l4 + 13);
    P.l4Csum = l4 + 16;
  } else if (proto === 17) {
    if (l4 + 8 > ipEnd) return R_TRUNCATED;
    P.l4Csum = l4 + 6;
  } else if (proto === 1 || proto === 58) {
    if ((proto === 1) === P.v6) return R_PROTO;
    if (l4 + 8 > ipEnd) return R_TRUNCATED;
    return R_NONE;
  } else {
    return R_PROTO;
  }
  P.sport = ld16(l4);
  P.dport = ld16(l4 + 2);
  if (P.sport === 0 || P.dport === 0) return R_BAD_L4;
  return R_NONE;
}
