// TS twin of wasm/assembly/director.ts: the same batch kernel over the same memory layout.
import {
  DIR_OFF, DG_NOW, DG_READY, DG_HWM, DG_SRC, DG_DST, MAX_BATCH, DIR_DESC_OFF, DESC_SIZE, DESC_OFF,
  DESC_LEN, DESC_FLAGS, DESC_VERDICT, DESC_REASON, DESC_CONN, DESCF_L2, VERDICT_DROP, VERDICT_TO_SERVER,
  VERDICT_TO_CLIENT, PKT_HEADROOM, DIR_VS_OFF, VS_SIZE, MAX_VS, VS_ADDR, VS_PORT, VS_PROTO, VS_FAMILY,
  VS_KIND, VS_FLAGS, VS_LCOUNT, VS_LFIRST, VS_POOL, VS_PERSIST, VS_MTU, VS_LCURSOR, VS_MAC, VS_GWMAC,
  VS_CONNS, VS_PKTS_IN, VS_PKTS_OUT, VS_BYTES_IN, VS_BYTES_OUT, VSF_USED, VSF_TOA, VSF_ADOPT, VSF_PROXY, KIND_NAT, KIND_DR,
  KIND_TUN, KIND_FULLNAT, VS_BUCKETS, DIR_VSHASH_OFF, D_ADDR, D_PORT, D_FLAGS, D_MAC, D_SLOT, D_INACTIVE,
  D_CONNS, D_PKTS_IN, D_PKTS_OUT, DF_RESET, DIR_SLOT2DEST_OFF, L_ADDR, CT_NONE, CT_IN, CT_OUT, CT_CADDR,
  CT_VADDR, CT_LADDR, CT_DADDR, CT_CPORT, CT_VPORT, CT_LPORT, CT_DPORT, CT_PROTO, CT_STATE, CT_FLAGS,
  CT_LIDX, CT_DEST, CT_VS, CT_EXPIRE, CT_TMPL, CTF_USED, CTF_V6, CTF_OUTKEY, CTF_TOA, CT_S_NONE,
  CT_S_ESTABLISHED, CT_S_SYN_RECV, CT_S_TIME_WAIT, CT_S_CLOSE, CT_S_UDP, CT_S_TEMPLATE, R_NONE, R_FWD_IN,
  R_FWD_OUT, R_FWD_ICMP_IN, R_FWD_ICMP_OUT, R_FRAG_NEEDED, R_NO_SERVICE, R_NOT_SYN, R_NO_SERVER,
  R_TABLE_FULL, R_NO_LPORT, R_NEED_L2, R_TOO_BIG, R_DEST_DOWN, R_NOT_READY, R_BAD_DESC, C_CREATED,
  C_TEMPLATES, C_ADOPTED, S_GATE, SERVERS_OFF, MAX_SERVERS,
} from "../../../core/layout.ts";
import { pick } from "../../../core/twin/index.ts";
import { bind, memBytes, ld8, ld16, ld32, ldi32, st8, st16, st32, sti32, copy, fill, add64 } from "./mem.ts";
import { P, TCP_SYN, TCP_ACK, TCP_RST, TCP_FIN } from "./state.ts";
import { parse } from "./parse.ts";
import {
  gget, ent, count, destAt, ctInit, ctLookup, ctAlloc, ctRemove, ctHashIn, wheelFile, setState, tcpNext,
  timeoutOf, protoKey, hashTuple, ctAdvance, syncActive, ctFree, allocLport, laddrAt, wheelReschedule,
} from "./conntrack.ts";
import { rewriteIn, rewriteOut, setMacs, insertToa, encapsulate, icmpTooBig } from "./rewrite.ts";
import { icmpLookup, icmpRewrite, I } from "./icmp.ts";
import { proxyIn, proxyOut, proxyIcmpOut, insertProxyHeader, proxyHeaderLength } from "./proxy.ts";

const vsAt = (v: number): number => DIR_VS_OFF + v * VS_SIZE;
const SRC = DIR_OFF + DG_SRC, DST = DIR_OFF + DG_DST;
let words = new Int32Array(0);

function vsHash(addr: number, port: number, proto: number): number {
  return Math.imul((ld32(addr) ^ ld32(addr + 12) ^ Math.imul(port, 0x9e3779b1) ^ proto), 0x85ebca6b) >>> 22;
}

function vsRebuild(): void {
  fill(DIR_VSHASH_OFF, 0, VS_BUCKETS * 4);
  for (let v = 0; v < MAX_VS; v++) {
    const p = vsAt(v);
    if ((ld8(p + VS_FLAGS) & VSF_USED) === 0) continue;
    let b = vsHash(p + VS_ADDR, ld16(p + VS_PORT), ld8(p + VS_PROTO)) & (VS_BUCKETS - 1);
    while (ld32(DIR_VSHASH_OFF + b * 4) !== 0) b = (b + 1) & (VS_BUCKETS - 1);
    st32(DIR_VSHASH_OFF + b * 4, v + 1);
  }
}

export function vsLookup(addr: number, port: number, proto: number, v6: boolean): number {
  let b = vsHash(addr, port, proto) & (VS_BUCKETS - 1);
  for (let k = 0; k < VS_BUCKETS; k++) {
    const v = ld32(DIR_VSHASH_OFF + b * 4);
    if (v === 0) return -1;
    const p = vsAt(v - 1);
    if (ld16(p + VS_PORT) === port && ld8(p + VS_PROTO) === proto && (ld8(p + VS_FAMILY) === 6) === v6
      && ld32(p + VS_ADDR) === ld32(addr) && ld32(p + VS_ADDR + 4) === ld32(addr + 4)
      && ld32(p + VS_ADDR + 8) === ld32(addr + 8) && ld32(p + VS_ADDR + 12) === ld32(addr + 12)) return v - 1;
    b = (b + 1) & (VS_BUCKETS - 1);
  }
  return -1;
}

let createReason = 0;
const gate = (slot: number): number => words[(SERVERS_OFF >> 2) + S_GATE * MAX_SERVERS + slot];

function ctCreate(v: number): number {
  const vs = vsAt(v), kind = ld8(vs + VS_KIND), v6 = P.v6;
  const i = ctAlloc();
  if (i === CT_NONE) { createReason = R_TABLE_FULL; return CT_NONE; }
  const e = ent(i), persist = ld32(vs + VS_PERSIST), now = gget(DG_NOW);
  let dest = -1, tmpl = CT_NONE;
  if (persist > 0) {
    const tl = ctLookup(SRC, DST, 0, P.dport, protoKey(P.proto, v6, true), v6);
    if (tl !== CT_NONE) {
      tmpl = tl >>> 1;
      const d = ld16(ent(tmpl) + CT_DEST), slot = ldi32(destAt(d) + D_SLOT);
      if (slot >= 0 && gate(slot) >= 0) dest = d;
    }
  }
  if (dest < 0) {
    const slot = pick(words, ldi32(vs + VS_POOL), hashTuple(SRC, SRC, 0, 0, v6) | 0);
    if (slot >= 0) dest = ldi32(DIR_SLOT2DEST_OFF + slot * 4);
    if (dest < 0) { ctFree(i); createReason = R_NO_SERVER; return CT_NONE; }
  }
  let lidx = 255, lport = 0;
  if (kind === KIND_FULLNAT) {
    const n = ld8(vs + VS_LCOUNT), first = ld8(vs + VS_LFIRST), cur = ld32(vs + VS_LCURSOR);
    for (let k = 0; k < n; k++) {
      const li = first + ((cur + k) >>> 0) % n;
      lport = allocLport(li);
      if (lport !== 0) { lidx = li; st32(vs + VS_LCURSOR, cur + k + 1); break; }
    }
    if (lidx === 255) { ctFree(i); createReason = R_NO_LPORT; return CT_NONE; }
  }
  const d = destAt(dest);
  copy(e + CT_CADDR, SRC, 16);
  copy(e + CT_VADDR, DST, 16);
  copy(e + CT_DADDR, d + D_ADDR, 16);
  st16(e + CT_CPORT, P.sport);
  st16(e + CT_VPORT, P.dport);
  st16(e + CT_DPORT, kind === KIND_DR || kind === KIND_TUN ? P.dport : ld16(d + D_PORT));
  if (lidx !== 255) {
    copy(e + CT_LADDR, laddrAt(lidx) + L_ADDR, 16);
    st16(e + CT_LPORT, lport);
  } else {
    copy(e + CT_LADDR, SRC, 16);
    st16(e + CT_LPORT, P.sport);
  }
  const outKey = kind === KIND_NAT || kind === KIND_FULLNAT;
  st8(e + CT_PROTO, protoKey(P.proto, v6, false));
  st8(e + CT_STATE, P.proto === 6 ? CT_S_NONE : CT_S_UDP);
  st8(e + CT_FLAGS, CTF_USED | (v6 ? CTF_V6 : 0) | (outKey ? CTF_OUTKEY : 0));
  st8(e + CT_LIDX, lidx);
  st16(e + CT_DEST, dest);
  st16(e + CT_VS, v);
  st32(e + CT_EXPIRE, now + timeoutOf(P.proto === 6 ? CT_S_SYN_RECV : CT_S_UDP));
  st32(e + CT_TMPL, 0);
  ctHashIn(i, CT_IN);
  if (outKey) ctHashIn(i, CT_OUT);
  wheelFile(i);
  sti32(d + D_INACTIVE, ldi32(d + D_INACTIVE) + 1);
  add64(d + D_CONNS, 1);
  syncActive(d);
  add64(vs + VS_CONNS, 1);
  count(C_CREATED);
  if (persist > 0) {
    if (tmpl === CT_NONE) tmpl = newTemplate(v, dest, persist);
    else {
      const te = ent(tmpl);
      tmplPoint(te, dest);
      st32(te + CT_EXPIRE, now + persist);
    }
    if (tmpl !== CT_NONE) {
      const te = ent(tmpl);
      st32(te + CT_TMPL, ld32(te + CT_TMPL) + 1);
      st32(e + CT_TMPL, tmpl + 1);
    }
  }
  return i;
}

function tmplPoint(te: number, dest: number): void {
  const d = destAt(dest);
  st16(te + CT_DEST, dest);
  copy(te + CT_DADDR, d + D_ADDR, 16);
  st16(te + CT_DPORT, ld16(d + D_PORT));
}

function newTemplate(v: number, dest: number, persist: number): number {
  const t = ctAlloc();
  if (t === CT_NONE) return CT_NONE;
  const e = ent(t), v6 = P.v6;
  copy(e + CT_CADDR, SRC, 16);
  copy(e + CT_VADDR, DST, 16);
  fill(e + CT_LADDR, 0, 32);
  st16(e + CT_CPORT, 0);
  st16(e + CT_VPORT, P.dport);
  st16(e + CT_LPORT, 0);
  tmplPoint(e, dest);
  st8(e + CT_PROTO, protoKey(P.proto, v6, true));
  st8(e + CT_STATE, CT_S_TEMPLATE);
  st8(e + CT_FLAGS, CTF_USED | (v6 ? CTF_V6 : 0));
  st8(e + CT_LIDX, 255);
  st16(e + CT_VS, v);
  st32(e + CT_EXPIRE, gget(DG_NOW) + persist);
  st32(e + CT_TMPL, 0);
  ctHashIn(t, CT_IN);
  wheelFile(t);
  count(C_TEMPLATES);
  return t;
}

function forwardIn(desc: number, i: number, off: number, l2: boolean): number {
  const e = ent(i), vs = vsAt(ld16(e + CT_VS)), d = destAt(ld16(e + CT_DEST)), kind = ld8(vs + VS_KIND);
  if (ld8(d + D_FLAGS) & DF_RESET) { ctRemove(i); return R_DEST_DOWN; }
  if (kind === KIND_DR && !l2) return R_NEED_L2;
  sti32(desc + DESC_CONN, i);
  const now = gget(DG_NOW);
  let toa = false;
  if (P.proto === 6) {
    const st = ld8(e + CT_STATE);
    const ns = tcpNext(st, kind === KIND_DR || kind === KIND_TUN ? 2 : 0, P.tcpFlags);
    st32(e + CT_EXPIRE, now + timeoutOf(ns));
    if (ns !== st) { setState(i, ns); wheelReschedule(i); }
    if (kind === KIND_FULLNAT && (ld8(vs + VS_FLAGS) & VSF_TOA) !== 0) {
      if ((P.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) toa = true;
      else if (st === CT_S_SYN_RECV && ns === CT_S_ESTABLISHED && (ld8(e + CT_FLAGS) & CTF_TOA) === 0) {
        toa = true;
        st8(e + CT_FLAGS, ld8(e + CT_FLAGS) | CTF_TOA);
      }
    }
  } else {
    st32(e + CT_EXPIRE, now + timeoutOf(CT_S_UDP));
  }
  add64(vs + VS_PKTS_IN, 1);
  add64(vs + VS_BYTES_IN, P.end - P.l3);
  add64(d + D_PKTS_IN, 1);
  if (kind === KIND_DR) {
    setMacs(off, d + D_MAC, vs + VS_MAC);
    return R_FWD_IN;
  }
  if (kind === KIND_TUN) return tunnel(desc, vs, d, l2);
  rewriteIn(e, kind === KIND_FULLNAT);
  if (l2) setMacs(off, d + D_MAC, vs + VS_MAC);
  const proxied = P.proto === 6 && (ld8(vs + VS_FLAGS) & VSF_PROXY) !== 0;
  const header = proxied && proxyIn(e);
  const toaLen = toa ? (P.v6 ? 20 : 8) : 0;
  if (header && P.end - P.l3 + toaLen + proxyHeaderLength(P.v6) > ld32(vs + VS_MTU)) return R_TOO_BIG;
  if (toa && P.end - P.l3 + toaLen <= ld32(vs + VS_MTU)) insertToa(desc, e);
  if (header) insertProxyHeader(desc, e, off - ld32(desc + DESC_OFF));
  return R_FWD_IN;
}

function tunnel(desc: number, vs: number, d: number, l2: boolean): number {
  const mtu = ld32(vs + VS_MTU), outer = P.v6 ? 40 : 20;
  if (P.end - P.l3 + outer > mtu) {
    if (P.proto === 1 || P.proto === 58) return R_TOO_BIG;
    if (!P.v6 && (ld16(P.l3 + 6) & 0x0040) === 0) return R_TOO_BIG;
    icmpTooBig(desc, mtu - outer, l2);
    return R_FRAG_NEEDED;
  }
  encapsulate(desc, vs, d, l2, d + D_MAC, vs + VS_MAC);
  return R_FWD_IN;
}

function forwardOut(desc: number, i: number, off: number, l2: boolean): number {
  const e = ent(i), vs = vsAt(ld16(e + CT_VS)), d = destAt(ld16(e + CT_DEST));
  sti32(desc + DESC_CONN, i);
  const now = gget(DG_NOW);
  if (P.proto === 6) {
    const st = ld8(e + CT_STATE), ns = tcpNext(st, 1, P.tcpFlags);
    st32(e + CT_EXPIRE, now + timeoutOf(ns));
    if (ns !== st) { setState(i, ns); wheelReschedule(i); }
  } else {
    st32(e + CT_EXPIRE, now + timeoutOf(CT_S_UDP));
  }
  add64(vs + VS_PKTS_OUT, 1);
  add64(vs + VS_BYTES_OUT, P.end - P.l3);
  add64(d + D_PKTS_OUT, 1);
  rewriteOut(e, ld8(vs + VS_KIND) === KIND_FULLNAT);
  if (P.proto === 6 && (ld8(vs + VS_FLAGS) & VSF_PROXY) !== 0) proxyOut(e);
  if (l2) setMacs(off, vs + VS_GWMAC, vs + VS_MAC);
  return R_FWD_OUT;
}

function icmpError(desc: number, off: number, l2: boolean): number {
  const r = icmpLookup();
  if (r !== R_NONE) return r;
  const i = I.link >>> 1, dir = I.link & 1, e = ent(i);
  const vs = vsAt(ld16(e + CT_VS)), d = destAt(ld16(e + CT_DEST)), kind = ld8(vs + VS_KIND);
  sti32(desc + DESC_CONN, i);
  if (dir === CT_OUT) {
    icmpRewrite(e, dir, kind === KIND_FULLNAT);
    if ((ld8(vs + VS_FLAGS) & VSF_PROXY) !== 0) proxyIcmpOut(e);
    if (l2) setMacs(off, vs + VS_GWMAC, vs + VS_MAC);
    return R_FWD_ICMP_OUT;
  }
  if (kind === KIND_DR) {
    if (!l2) return R_NEED_L2;
    setMacs(off, d + D_MAC, vs + VS_MAC);
  } else if (kind === KIND_TUN) {
    if (P.end - P.l3 + (P.v6 ? 40 : 20) > ld32(vs + VS_MTU)) return R_TOO_BIG;
    encapsulate(desc, vs, d, l2, d + D_MAC, vs + VS_MAC);
  } else {
    icmpRewrite(e, dir, kind === KIND_FULLNAT);
    if (l2) setMacs(off, d + D_MAC, vs + VS_MAC);
  }
  return R_FWD_ICMP_IN;
}

function processOne(desc: number): number {
  const off = ld32(desc + DESC_OFF), len = ld32(desc + DESC_LEN);
  const l2 = (ld16(desc + DESC_FLAGS) & DESCF_L2) !== 0;
  sti32(desc + DESC_CONN, -1);
  if (off < PKT_HEADROOM || len > 65535 || off + len > memBytes()) return R_BAD_DESC;
  if (gget(DG_READY) === 0) return R_NOT_READY;
  const r = parse(off, len, l2);
  if (r !== R_NONE) return r;
  if (P.proto === 1 || P.proto === 58) return icmpError(desc, off, l2);
  st32(desc + DESC_LEN, P.end - off);
  const v6 = P.v6;
  const link = ctLookup(SRC, DST, P.sport, P.dport, protoKey(P.proto, v6, false), v6);
  if (link !== CT_NONE) {
    const i = link >>> 1;
    if ((link & 1) === CT_OUT) return forwardOut(desc, i, off, l2);
    const st = ld8(ent(i) + CT_STATE);
    const reuse = P.proto === 6 && (P.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN
      && (st === CT_S_TIME_WAIT || st === CT_S_CLOSE);
    if (!reuse) return forwardIn(desc, i, off, l2);
    ctRemove(i);
  }
  const v = vsLookup(DST, P.dport, P.proto, v6);
  if (v < 0) return R_NO_SERVICE;
  const adopt = P.proto === 6 && (P.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) !== TCP_SYN;
  if (adopt && !adoptable(vsAt(v))) return R_NOT_SYN;
  if (ld8(vsAt(v) + VS_KIND) === KIND_DR && !l2) return R_NEED_L2;
  const i = ctCreate(v);
  if (i === CT_NONE) return createReason;
  if (adopt) adoptEstablished(i);
  return forwardIn(desc, i, off, l2);
}

// A mid-flow TCP packet with no entry (ECMP moved the flow): taken over only where VSF_ADOPT is
// set (dr, tun with a consistent keyed scheduler) and only for an ACK without SYN or RST; the
// reasons for the rest are at the WASM kernel's adoptable.
const adoptable = (vs: number): boolean =>
  (ld8(vs + VS_FLAGS) & VSF_ADOPT) !== 0 && (P.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_ACK;

function adoptEstablished(i: number): void {
  setState(i, CT_S_ESTABLISHED);
  st32(ent(i) + CT_EXPIRE, gget(DG_NOW) + timeoutOf(CT_S_ESTABLISHED));
  wheelReschedule(i);
  count(C_ADOPTED);
}

function verdictOf(r: number): number {
  if (r === R_FWD_IN || r === R_FWD_ICMP_IN) return VERDICT_TO_SERVER;
  if (r === R_FWD_OUT || r === R_FWD_ICMP_OUT || r === R_FRAG_NEEDED) return VERDICT_TO_CLIENT;
  return VERDICT_DROP;
}

function use(memory: ArrayBuffer): void {
  bind(memory);
  if (words.buffer !== memory) words = new Int32Array(memory);
}

/** The director kernels' exports, as the WASM module has them, over one memory. */
export interface DirectorKernels {
  directorInit(capacity: number): number;
  vsRebuild(): void;
  processBatch(n: number, now: number): number;
  directorTick(now: number): void;
  ctDelete(i: number): void;
}

export function directorTwin(memory: ArrayBuffer): DirectorKernels {
  return {
    directorInit: (capacity) => { use(memory); return ctInit(capacity); },
    vsRebuild: () => { use(memory); vsRebuild(); },
    processBatch: (n, now) => {
      use(memory);
      st32(DIR_OFF + DG_NOW, now);
      if (gget(DG_READY) !== 0) ctAdvance(now >>> 0);
      let forwarded = 0;
      n = Math.min(n, MAX_BATCH);
      for (let k = 0; k < n; k++) {
        const desc = DIR_DESC_OFF + k * DESC_SIZE, r = processOne(desc), v = verdictOf(r);
        st8(desc + DESC_VERDICT, v);
        st8(desc + DESC_REASON, r);
        count(r);
        if (v !== VERDICT_DROP) forwarded++;
      }
      return forwarded;
    },
    directorTick: (now) => {
      use(memory);
      st32(DIR_OFF + DG_NOW, now);
      if (gget(DG_READY) !== 0) ctAdvance(now >>> 0);
    },
    ctDelete: (i) => {
      use(memory);
      if (gget(DG_READY) !== 0 && i < gget(DG_HWM)) ctRemove(i);
    },
  };
}
