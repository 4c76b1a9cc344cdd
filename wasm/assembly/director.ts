// The director's batch entry point: for each packet descriptor, parse, look the connection up
// (or schedule a new one through the pool's pick kernel), rewrite or encapsulate, and leave a
// verdict and a counted reason. One call per batch, never one per packet.
import {
  DIR_OFF, DG_NOW, DG_READY, DG_HWM, DG_CAP, MAX_BATCH, DG_SRC, DG_DST, DIR_DESC_OFF, DESC_SIZE, DESC_OFF, DESC_LEN, DESC_FLAGS,
  DESC_VERDICT, DESC_REASON, DESC_CONN, DESCF_L2, VERDICT_DROP, VERDICT_TO_SERVER, VERDICT_TO_CLIENT,
  PKT_HEADROOM, DIR_VS_OFF, VS_SIZE, MAX_VS, VS_ADDR, VS_PORT, VS_PROTO, VS_FAMILY, VS_KIND, VS_FLAGS,
  VS_LCOUNT, VS_LFIRST, VS_POOL, VS_PERSIST, VS_MTU, VS_LCURSOR, VS_MAC, VS_GWMAC, VS_CONNS,
  VS_PKTS_IN, VS_PKTS_OUT, VS_BYTES_IN, VS_BYTES_OUT, VSF_USED, VSF_TOA, VSF_ADOPT, VSF_PROXY, KIND_NAT, KIND_DR, KIND_TUN,
  KIND_FULLNAT, VS_BUCKETS, DIR_VSHASH_OFF, D_ADDR, D_PORT, D_FLAGS, D_MAC, D_SLOT, D_INACTIVE, D_CONNS,
  D_PKTS_IN, D_PKTS_OUT, DF_RESET, DIR_SLOT2DEST_OFF, L_ADDR, CT_NONE, CT_IN, CT_OUT, CT_CADDR,
  CT_VADDR, CT_LADDR, CT_DADDR, CT_CPORT, CT_VPORT, CT_LPORT, CT_DPORT, CT_PROTO, CT_STATE, CT_FLAGS,
  CT_LIDX, CT_DEST, CT_VS, CT_EXPIRE, CT_TMPL, CT_SIZE, CT_NEXT_IN, CT_NEXT_OUT, CTF_USED, CTF_V6, CTF_OUTKEY, CTF_TOA,
  CT_S_NONE, CT_S_ESTABLISHED, CT_S_SYN_RECV, CT_S_TIME_WAIT, CT_S_CLOSE, CT_S_UDP, CT_S_TEMPLATE,
  R_NONE, R_FWD_IN, R_FWD_OUT, R_FWD_ICMP_IN, R_FWD_ICMP_OUT, R_FRAG_NEEDED, R_NO_SERVICE, R_NOT_SYN,
  R_NO_SERVER, R_TABLE_FULL, R_NO_LPORT, R_NEED_L2, R_TOO_BIG, R_DEST_DOWN, R_NOT_READY, R_BAD_DESC,
  C_CREATED, C_TEMPLATES, C_ADOPTED, S_GATE,
} from "./layout";
import { sget } from "./mem";
import { pick } from "./index";
import {
  parse, pL3, pEnd, pV6, pProto, pSport, pDport, pTcpFlags, TCP_SYN, TCP_ACK, TCP_RST, TCP_FIN,
} from "./director-parse";
import {
  gget, ent, count, destAt, ctInit, ctLookup, ctAlloc, ctRemove, ctHashIn, wheelFile, setState,
  tcpNext, timeoutOf, protoKey, hashTuple, ctAdvance, syncActive, ctFree, wheelReschedule, ctBucket,
} from "./conntrack";
import { allocLport, laddrAt } from "./director-lports";
import { rewriteIn, rewriteOut, setMacs, insertToa, encapsulate, icmpTooBig } from "./director-rewrite";
import { icmpLookup, icmpRewrite, iLink } from "./director-icmp";
import { proxyIn, proxyOut, proxyIcmpOut, insertProxyHeader, proxyHeaderLength } from "./director-proxy";

@inline function vsAt(v: u32): u32 { return DIR_VS_OFF + <u32>v * VS_SIZE; }
@inline function add64(p: u32, n: u64): void { store<u64>(p, load<u64>(p) + n); }
@inline function src(): u32 { return DIR_OFF + DG_SRC; }
@inline function dst(): u32 { return DIR_OFF + DG_DST; }

// Sizes the connection table; -1 when the memory does not reach it.
export function directorInit(capacity: u32): i32 {
  return ctInit(capacity);
}

function vsHash(addr: u32, port: u32, proto: u32): u32 {
  return (load<u32>(addr) ^ load<u32>(addr + 12) ^ (port * 0x9e3779b1) ^ proto) * 0x85ebca6b >> 22;
}

// Rebuilds the virtual-service index from the table (the control plane calls it after changes).
export function vsRebuild(): void {
  memory.fill(DIR_VSHASH_OFF, 0, VS_BUCKETS << 2);
  for (let v: u32 = 0; v < <u32>MAX_VS; v++) {
    const p = vsAt(v);
    if ((load<u8>(p + VS_FLAGS) & VSF_USED) == 0) continue;
    let b = vsHash(p + VS_ADDR, <u32>load<u16>(p + VS_PORT), <u32>load<u8>(p + VS_PROTO)) & (VS_BUCKETS - 1);
    while (load<u32>(DIR_VSHASH_OFF + (<u32>b << 2)) != 0) b = (b + 1) & (VS_BUCKETS - 1);
    store<u32>(DIR_VSHASH_OFF + (<u32>b << 2), v + 1);
  }
}

export function vsLookup(addr: u32, port: u32, proto: u32, v6: bool): i32 {
  let b = vsHash(addr, port, proto) & (VS_BUCKETS - 1);
  for (let k = 0; k < VS_BUCKETS; k++) {
    const v = load<u32>(DIR_VSHASH_OFF + (<u32>b << 2));
    if (v == 0) return -1;
    const p = vsAt(v - 1);
    if (<u32>load<u16>(p + VS_PORT) == port && <u32>load<u8>(p + VS_PROTO) == proto
      && (load<u8>(p + VS_FAMILY) == 6) == v6
      && load<u64>(p + VS_ADDR) == load<u64>(addr) && load<u64>(p + VS_ADDR + 8) == load<u64>(addr + 8)) return <i32>(v - 1);
    b = (b + 1) & (VS_BUCKETS - 1);
  }
  return -1;
}

let createReason: u32 = 0;

// A new connection of service v for the parsed packet: persistence template or scheduler, local
// port for fullnat, entry, keys, wheel and counts. CT_NONE with createReason when it cannot be.
function ctCreate(v: u32): u32 {
  const vs = vsAt(v), kind = <u32>load<u8>(vs + VS_KIND), v6 = pV6;
  const i = ctAlloc();
  if (i == CT_NONE) { createReason = R_TABLE_FULL; return CT_NONE; }
  const e = ent(i);
  const persist = load<u32>(vs + VS_PERSIST), now = gget(DG_NOW);
  let dest: i32 = -1, tmpl: u32 = CT_NONE;
  if (persist > 0) {
    const tl = ctLookup(src(), dst(), 0, pDport, protoKey(pProto, v6, true), v6);
    if (tl != CT_NONE) {
      tmpl = tl >> 1;
      const d = <i32>load<u16>(ent(tmpl) + CT_DEST);
      const slot = load<i32>(destAt(d) + D_SLOT);
      // A template's server out of its pool or out of service: schedule afresh, keep the template.
      if (slot >= 0 && sget(S_GATE, slot) >= 0) dest = d;
    }
  }
  if (dest < 0) {
    const slot = pick(load<i32>(vs + VS_POOL), hashTuple(src(), src(), 0, 0, v6));
    if (slot >= 0) dest = load<i32>(DIR_SLOT2DEST_OFF + (<u32>slot << 2));
    if (dest < 0) { ctFree(i); createReason = R_NO_SERVER; return CT_NONE; }
  }
  let lidx: u32 = 255, lport: u32 = 0;
  if (kind == KIND_FULLNAT) {
    const n = <u32>load<u8>(vs + VS_LCOUNT), first = <u32>load<u8>(vs + VS_LFIRST);
    const cur = load<u32>(vs + VS_LCURSOR);
    for (let k: u32 = 0; k < n; k++) {
      const li = first + (cur + k) % n;
      lport = allocLport(li);
      if (lport != 0) { lidx = li; store<u32>(vs + VS_LCURSOR, cur + k + 1); break; }
    }
    if (lidx == 255) { ctFree(i); createReason = R_NO_LPORT; return CT_NONE; }
  }
  const d = destAt(<u32>dest);
  memory.copy(e + CT_CADDR, src(), 16);
  memory.copy(e + CT_VADDR, dst(), 16);
  memory.copy(e + CT_DADDR, d + D_ADDR, 16);
  store<u16>(e + CT_CPORT, <u16>pSport);
  store<u16>(e + CT_VPORT, <u16>pDport);
  // dr and tun keep the port (the server answers from the VIP itself).
  store<u16>(e + CT_DPORT, kind == KIND_DR || kind == KIND_TUN ? <u16>pDport : load<u16>(d + D_PORT));
  if (lidx != 255) {
    memory.copy(e + CT_LADDR, laddrAt(lidx) + L_ADDR, 16);
    store<u16>(e + CT_LPORT, <u16>lport);
  } else {
    memory.copy(e + CT_LADDR, src(), 16);
    store<u16>(e + CT_LPORT, <u16>pSport);
  }
  const outKey = kind == KIND_NAT || kind == KIND_FULLNAT;
  store<u8>(e + CT_PROTO, <u8>protoKey(pProto, v6, false));
  store<u8>(e + CT_STATE, <u8>(pProto == 6 ? CT_S_NONE : CT_S_UDP));
  store<u8>(e + CT_FLAGS, <u8>(CTF_USED | (v6 ? CTF_V6 : 0) | (outKey ? CTF_OUTKEY : 0)));
  store<u8>(e + CT_LIDX, <u8>lidx);
  store<u16>(e + CT_DEST, <u16>dest);
  store<u16>(e + CT_VS, <u16>v);
  store<u32>(e + CT_EXPIRE, now + timeoutOf(pProto == 6 ? CT_S_SYN_RECV : CT_S_UDP));
  store<u32>(e + CT_TMPL, 0);
  ctHashIn(i, CT_IN);
  if (outKey) ctHashIn(i, CT_OUT);
  wheelFile(i);
  store<i32>(d + D_INACTIVE, load<i32>(d + D_INACTIVE) + 1);
  add64(d + D_CONNS, 1);
  syncActive(d);
  add64(vs + VS_CONNS, 1);
  count(C_CREATED);
  if (persist > 0) {
    if (tmpl == CT_NONE) tmpl = newTemplate(v, <u32>dest, persist);
    else {
      const te = ent(tmpl);
      tmplPoint(te, <u32>dest);
      store<u32>(te + CT_EXPIRE, now + persist);
    }
    if (tmpl != CT_NONE) {
      const te = ent(tmpl);
      store<u32>(te + CT_TMPL, load<u32>(te + CT_TMPL) + 1);
      store<u32>(e + CT_TMPL, tmpl + 1);
    }
  }
  return i;
}

// A template names its server by dest, and by address for the listing.
function tmplPoint(te: u32, dest: u32): void {
  const d = destAt(dest);
  store<u16>(te + CT_DEST, <u16>dest);
  memory.copy(te + CT_DADDR, d + D_ADDR, 16);
  store<u16>(te + CT_DPORT, load<u16>(d + D_PORT));
}

// The persistence template client -> server (port 0), held while connections use it.
function newTemplate(v: u32, dest: u32, persist: u32): u32 {
  const t = ctAlloc();
  if (t == CT_NONE) return CT_NONE;
  const e = ent(t), v6 = pV6;
  memory.copy(e + CT_CADDR, src(), 16);
  memory.copy(e + CT_VADDR, dst(), 16);
  memory.fill(e + CT_LADDR, 0, 32);
  store<u16>(e + CT_CPORT, 0);
  store<u16>(e + CT_VPORT, <u16>pDport);
  store<u16>(e + CT_LPORT, 0);
  tmplPoint(e, dest);
  store<u8>(e + CT_PROTO, <u8>protoKey(pProto, v6, true));
  store<u8>(e + CT_STATE, <u8>CT_S_TEMPLATE);
  store<u8>(e + CT_FLAGS, <u8>(CTF_USED | (v6 ? CTF_V6 : 0)));
  store<u8>(e + CT_LIDX, 255);
  store<u16>(e + CT_VS, <u16>v);
  store<u32>(e + CT_EXPIRE, gget(DG_NOW) + persist);
  store<u32>(e + CT_TMPL, 0);
  ctHashIn(t, CT_IN);
  wheelFile(t);
  count(C_TEMPLATES);
  return t;
}

// Client -> server for connection i.
@inline function forwardIn(desc: u32, i: u32, off: u32, l2: bool): u32 {
  const e = ent(i), vs = vsAt(<u32>load<u16>(e + CT_VS)), d = destAt(<u32>load<u16>(e + CT_DEST));
  const kind = <u32>load<u8>(vs + VS_KIND);
  if (load<u8>(d + D_FLAGS) & DF_RESET) { ctRemove(i); return R_DEST_DOWN; }
  if (kind == KIND_DR && !l2) return R_NEED_L2;
  store<i32>(desc + DESC_CONN, <i32>i);
  const now = gget(DG_NOW);
  let toa = false;
  if (pProto == 6) {
    const st = <u32>load<u8>(e + CT_STATE);
    const ns = tcpNext(st, kind == KIND_DR || kind == KIND_TUN ? 2 : 0, pTcpFlags);
    store<u32>(e + CT_EXPIRE, now + timeoutOf(ns));
    if (ns != st) { setState(i, ns); wheelReschedule(i); }
    if (kind == KIND_FULLNAT && (load<u8>(vs + VS_FLAGS) & VSF_TOA) != 0) {
      // TOA on the SYN and on the ACK that completes the handshake (where servers' toa modules
      // read it), once each.
      if ((pTcpFlags & (TCP_SYN | TCP_ACK)) == TCP_SYN) toa = true;
      else if (st == CT_S_SYN_RECV && ns == CT_S_ESTABLISHED && (load<u8>(e + CT_FLAGS) & CTF_TOA) == 0) {
        toa = true;
        store<u8>(e + CT_FLAGS, load<u8>(e + CT_FLAGS) | CTF_TOA);
      }
    }
  } else {
    store<u32>(e + CT_EXPIRE, now + timeoutOf(CT_S_UDP));
  }
  const bytes = <u64>(pEnd - pL3);
  add64(vs + VS_PKTS_IN, 1);
  add64(vs + VS_BYTES_IN, bytes);
  add64(d + D_PKTS_IN, 1);
  if (kind == KIND_DR) {
    setMacs(off, d + D_MAC, vs + VS_MAC);
    return R_FWD_IN;
  }
  if (kind == KIND_TUN) return tunnel(desc, vs, d, l2);
  rewriteIn(e, kind == KIND_FULLNAT);
  if (l2) setMacs(off, d + D_MAC, vs + VS_MAC);
  const proxied = pProto == 6 && (load<u8>(vs + VS_FLAGS) & VSF_PROXY) != 0;
  const header = proxied && proxyIn(e);
  const toaLen: u32 = toa ? (pV6 ? 20 : 8) : 0;
  const grown = <u32>(pEnd - pL3) + toaLen + (header ? proxyHeaderLength(pV6) : 0);
  // The header cannot be left out of the first segment: one that would not fit is refused.
  if (header && grown > load<u32>(vs + VS_MTU)) return R_TOO_BIG;
  if (toa && <u32>(pEnd - pL3) + toaLen <= load<u32>(vs + VS_MTU)) insertToa(desc, e, l2);
  if (header) insertProxyHeader(desc, e, off - load<u32>(desc + DESC_OFF));
  return R_FWD_IN;
}

// IPIP to the server, or the ICMP error back when the tunnelled packet would not fit the MTU.
function tunnel(desc: u32, vs: u32, d: u32, l2: bool): u32 {
  const mtu = load<u32>(vs + VS_MTU), outer: u32 = pV6 ? 40 : 20;
  if (<u32>(pEnd - pL3) + outer > mtu) {
    if (pProto == 1 || pProto == 58) return R_TOO_BIG; // never an ICMP error about an ICMP error
    // IPv4 without DF may not be answered with frag-needed; it is refused (never fragmented).
    if (!pV6 && (load<u16>(pL3 + 6) & 0x0040) == 0) return R_TOO_BIG;
    icmpTooBig(desc, mtu - outer, l2);
    return R_FRAG_NEEDED;
  }
  encapsulate(desc, vs, d, l2, d + D_MAC, vs + VS_MAC);
  return R_FWD_IN;
}

// Server -> client for connection i (nat and fullnat: the only kinds with a server-side key).
@inline function forwardOut(desc: u32, i: u32, off: u32, l2: bool): u32 {
  const e = ent(i), vs = vsAt(<u32>load<u16>(e + CT_VS)), d = destAt(<u32>load<u16>(e + CT_DEST));
  store<i32>(desc + DESC_CONN, <i32>i);
  const now = gget(DG_NOW);
  if (pProto == 6) {
    const st = <u32>load<u8>(e + CT_STATE);
    const ns = tcpNext(st, 1, pTcpFlags);
    store<u32>(e + CT_EXPIRE, now + timeoutOf(ns));
    if (ns != st) { setState(i, ns); wheelReschedule(i); }
  } else {
    store<u32>(e + CT_EXPIRE, now + timeoutOf(CT_S_UDP));
  }
  add64(vs + VS_PKTS_OUT, 1);
  add64(vs + VS_BYTES_OUT, <u64>(pEnd - pL3));
  add64(d + D_PKTS_OUT, 1);
  rewriteOut(e, load<u8>(vs + VS_KIND) == KIND_FULLNAT);
  if (pProto == 6 && (load<u8>(vs + VS_FLAGS) & VSF_PROXY) != 0) proxyOut(e);
  if (l2) setMacs(off, vs + VS_GWMAC, vs + VS_MAC);
  return R_FWD_OUT;
}

function icmpError(desc: u32, off: u32, l2: bool): u32 {
  const r = icmpLookup();
  if (r != R_NONE) return r;
  const i = iLink >> 1, dir = iLink & 1, e = ent(i);
  const vs = vsAt(<u32>load<u16>(e + CT_VS)), d = destAt(<u32>load<u16>(e + CT_DEST));
  const kind = <u32>load<u8>(vs + VS_KIND);
  store<i32>(desc + DESC_CONN, <i32>i);
  if (dir == CT_OUT) {
    icmpRewrite(e, dir, kind == KIND_FULLNAT);
    if ((load<u8>(vs + VS_FLAGS) & VSF_PROXY) != 0) proxyIcmpOut(e);
    if (l2) setMacs(off, vs + VS_GWMAC, vs + VS_MAC);
    return R_FWD_ICMP_OUT;
  }
  if (kind == KIND_DR) {
    if (!l2) return R_NEED_L2;
    setMacs(off, d + D_MAC, vs + VS_MAC);
  } else if (kind == KIND_TUN) {
    if (<u32>(pEnd - pL3) + (pV6 ? 40 : 20) > load<u32>(vs + VS_MTU)) return R_TOO_BIG;
    encapsulate(desc, vs, d, l2, d + D_MAC, vs + VS_MAC);
  } else {
    icmpRewrite(e, dir, kind == KIND_FULLNAT);
    if (l2) setMacs(off, d + D_MAC, vs + VS_MAC);
  }
  return R_FWD_ICMP_IN;
}

function processOne(desc: u32): u32 {
  const off = <u32>load<u32>(desc + DESC_OFF), len = load<u32>(desc + DESC_LEN);
  const l2 = (load<u16>(desc + DESC_FLAGS) & DESCF_L2) != 0;
  store<i32>(desc + DESC_CONN, -1);
  if (off < <u32>PKT_HEADROOM || len > 65535 || <u64>off + <u64>len > (<u64>memory.size() << 16)) return R_BAD_DESC;
  if (gget(DG_READY) == 0) return R_NOT_READY;
  const r = parse(off, len, l2);
  if (r != R_NONE) return r;
  if (pProto == 1 || pProto == 58) return icmpError(desc, off, l2);
  // Trailing frame padding is not part of the packet.
  store<u32>(desc + DESC_LEN, <u32>(pEnd - off));
  const v6 = pV6;
  const link = ctLookup(src(), dst(), pSport, pDport, protoKey(pProto, v6, false), v6);
  if (link != CT_NONE) {
    const i = link >> 1;
    if ((link & 1) == CT_OUT) return forwardOut(desc, i, off, l2);
    const st = <u32>load<u8>(ent(i) + CT_STATE);
    // A new SYN on a closed connection's tuple starts a new connection (port reuse).
    const reuse = pProto == 6 && (pTcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN
      && (st == CT_S_TIME_WAIT || st == CT_S_CLOSE);
    if (!reuse) return forwardIn(desc, i, off, l2);
    ctRemove(i);
  }
  const v = vsLookup(dst(), pDport, pProto, v6);
  if (v < 0) return R_NO_SERVICE;
  const adopt = pProto == 6 && (pTcpFlags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) != TCP_SYN;
  if (adopt && !adoptable(vsAt(<u32>v))) return R_NOT_SYN;
  if (load<u8>(vsAt(<u32>v) + VS_KIND) == KIND_DR && !l2) return R_NEED_L2;
  const i = ctCreate(<u32>v);
  if (i == CT_NONE) return createReason;
  if (adopt) adoptEstablished(i);
  return forwardIn(desc, i, off, l2);
}

// A TCP packet with no entry that is not a SYN: a flow ECMP moved here from another node. Taken
// over only where the control plane set VSF_ADOPT (dr and tun with a consistent keyed scheduler),
// and only for an ACK without SYN or RST (an RST with no entry has nothing to close). Elsewhere it
// stays not_syn: rr, lc, wlc and the like pick differently on every node, so the flow would land
// on a server that never saw its handshake, and nat and fullnat replies need the mapping the
// node that saw the SYN holds.
@inline function adoptable(vs: u32): bool {
  return (load<u8>(vs + VS_FLAGS) & VSF_ADOPT) != 0 && (pTcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_ACK;
}

// The flow was established on the node that saw its handshake: its entry starts ESTABLISHED, so
// it counts as active for its server and lives by the established timeout.
function adoptEstablished(i: u32): void {
  setState(i, CT_S_ESTABLISHED);
  store<u32>(ent(i) + CT_EXPIRE, gget(DG_NOW) + timeoutOf(CT_S_ESTABLISHED));
  wheelReschedule(i);
  count(C_ADOPTED);
}

@inline function verdictOf(r: u32): u32 {
  if (r == R_FWD_IN || r == R_FWD_ICMP_IN) return VERDICT_TO_SERVER;
  if (r == R_FWD_OUT || r == R_FWD_ICMP_OUT || r == R_FRAG_NEEDED) return VERDICT_TO_CLIENT;
  return VERDICT_DROP;
}

let touched: u32 = 0;
// Per descriptor of the batch, for the early passes: the packet's source address (first word)
// and ports, to tell a chain's head entry that is someone else's.
const early = memory.data(MAX_BATCH * 8);

// The batch's early loads, before any packet is acted on: the first pass parses each packet and
// leaves its bucket's address in the descriptor's conn field (processOne overwrites it); the
// second loads every bucket's head link, the third every head entry's cache lines (an entry of
// CT_SIZE bytes spans up to three), the fourth the next entry of each chain whose head is another
// connection's (the buckets hold both directions' keys at about one key a bucket, so about half
// the packets find one). The loads of different packets do not depend on each other, and each
// pass after the first is a few instructions a packet, so the processor keeps many misses in
// flight at once (a pass with the parse between two loads keeps one or two) and the real pass
// finds the lines in cache. No effect on results (the TS twin has no such passes).
function earlyBucket(desc: u32, k: u32): void {
  store<u32>(desc + DESC_CONN, CT_NONE);
  const off = load<u32>(desc + DESC_OFF), len = load<u32>(desc + DESC_LEN);
  if (off < <u32>PKT_HEADROOM || len > 65535 || <u64>off + <u64>len > (<u64>memory.size() << 16)) return;
  if (parse(off, len, (load<u16>(desc + DESC_FLAGS) & DESCF_L2) != 0) != R_NONE) return;
  if (pProto == 1 || pProto == 58) return;
  store<u32>(early + (k << 3), load<u32>(src()));
  store<u32>(early + (k << 3) + 4, pSport | (pDport << 16));
  store<u32>(desc + DESC_CONN, ctBucket(src(), dst(), pSport, pDport, protoKey(pProto, pV6, false), pV6));
}

@inline function earlyHead(desc: u32): void {
  const b = load<u32>(desc + DESC_CONN);
  if (b != CT_NONE) store<u32>(desc + DESC_CONN, load<u32>(b));
}

@inline function touchEntry(e: u32): void {
  touched ^= load<u32>(e) ^ load<u32>(e + 64) ^ load<u32>(e + CT_SIZE - 4);
}

@inline function earlyEntry(desc: u32): void {
  const link = load<u32>(desc + DESC_CONN);
  if (link != CT_NONE) touchEntry(ent(link >> 1));
}

// The head entry is in cache by now: when its key is plainly not the packet's (source word or
// ports differ), the chain's next entry is loaded.
@inline function earlyNext(desc: u32, k: u32): void {
  const link = load<u32>(desc + DESC_CONN);
  if (link == CT_NONE) return;
  const e = ent(link >> 1), s0 = load<u32>(early + (k << 3)), ports = load<u32>(early + (k << 3) + 4);
  let next: u32;
  if ((link & 1) == CT_IN) {
    if (load<u32>(e + CT_CADDR) == s0 && load<u32>(e + CT_CPORT) == ports) return;
    next = load<u32>(e + CT_NEXT_IN);
  } else {
    if (load<u32>(e + CT_DADDR) == s0 && rotr<u32>(load<u32>(e + CT_LPORT), 16) == ports) return;
    next = load<u32>(e + CT_NEXT_OUT);
  }
  if (next != CT_NONE) touchEntry(ent(next >> 1));
}

// Processes n descriptors at DIR_DESC_OFF at time now (ms); returns how many were forwarded.
export function processBatch(n: i32, now: u32): i32 {
  store<u32>(DIR_OFF + DG_NOW, now);
  if (gget(DG_READY) != 0) ctAdvance(now);
  let forwarded = 0;
  if (n > MAX_BATCH) n = MAX_BATCH;
  // A table that fits in cache gains nothing from the early loads (4 MiB of entries and less).
  if (gget(DG_READY) != 0 && gget(DG_CAP) > 37449) {
    for (let k = 0; k < n; k++) earlyBucket(DIR_DESC_OFF + <u32>k * DESC_SIZE, <u32>k);
    for (let k = 0; k < n; k++) earlyHead(DIR_DESC_OFF + <u32>k * DESC_SIZE);
    for (let k = 0; k < n; k++) earlyEntry(DIR_DESC_OFF + <u32>k * DESC_SIZE);
    for (let k = 0; k < n; k++) earlyNext(DIR_DESC_OFF + <u32>k * DESC_SIZE, <u32>k);
  }
  for (let k = 0; k < n; k++) {
    const desc = DIR_DESC_OFF + <u32>k * DESC_SIZE;
    const r = processOne(desc);
    const v = verdictOf(r);
    store<u8>(desc + DESC_VERDICT, <u8>v);
    store<u8>(desc + DESC_REASON, <u8>r);
    count(r);
    if (v != VERDICT_DROP) forwarded++;
  }
  return forwarded;
}

// Expires what the clock passed without a packet batch (an idle director).
export function directorTick(now: u32): void {
  store<u32>(DIR_OFF + DG_NOW, now);
  if (gget(DG_READY) != 0) ctAdvance(now);
}

// Removes connection entry i (the control plane's flush and expire_on_down).
export function ctDelete(i: u32): void {
  if (gget(DG_READY) != 0 && i < gget(DG_HWM)) ctRemove(i);
}
