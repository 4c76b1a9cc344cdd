// Connection sync between directors (LVS's sync daemon): the export walk that writes the entries
// a peer has not seen yet (new, changed state, or an expiry moved on by the refresh period) as
// wire records, and the import that applies a peer's records to this node's table, resolving
// the real server by address and port against this node's own pool (slots differ between nodes).
// Fields are read through the CT_* and REC_* names only: the entry's layout may change.
import {
  DG_CAP, DG_ENTRIES, DG_HWM, DG_NOW, DG_READY, CT_SIZE, CT_NONE, CT_IN, CT_OUT, CT_CADDR, CT_VADDR, CT_LADDR,
  CT_DADDR, CT_CPORT, CT_VPORT, CT_LPORT, CT_DPORT, CT_PROTO, CT_STATE, CT_FLAGS, CT_LIDX, CT_DEST,
  CT_VS, CT_EXPIRE, CT_TMPL, CT_PROTO_TMPL, CTF_USED, CTF_V6, CTF_OUTKEY, CTF_TOA, CT_S_NONE,
  CT_S_SYN_RECV, CT_S_SYNACK, CT_S_UDP, DIR_VS_OFF, VS_SIZE, VS_KIND, VS_POOL, VS_LCOUNT, VS_LFIRST,
  KIND_NAT, KIND_DR, KIND_TUN, KIND_FULLNAT, D_ADDR, D_PORT, D_INACTIVE, DIR_SLOT2DEST_OFF, P_BASE,
  P_COUNT, L_ADDR, L_TOP, L_HEAD, LPORTS, DIR_PORTS_OFF, PORTS_STRIDE,
} from "./layout";
import {
  SYNC_STATS_OFF, ST_CURSOR, ST_EXPORTED, ST_IMPORTED, ST_READY, SYNC_BUF_OFF,
  SYNC_BUF_SIZE, SYNC_SHADOW_OFF, SYNC_SHADOW_STRIDE, SHADOW_UNIT_SHIFT, SHADOW_ID_MASK, REC_SIZE, REC_PROTO, REC_STATE, REC_FLAGS,
  REC_RESERVED, REC_TIMEOUT, REC_CADDR, REC_VADDR, REC_LADDR, REC_DADDR, REC_CPORT, REC_VPORT,
  REC_LPORT, REC_DPORT, RECF_V6, RECF_KNOWN, SR_IMPORTED, SR_UPDATED, SR_MALFORMED, SR_NO_SERVICE,
  SR_NO_SERVER, SR_NO_LADDR, SR_TABLE_FULL, SR_CONFLICT,
} from "./sync-layout";
import { fmix32 } from "./hash";
import { pget } from "./mem";
import {
  gget, ent, destAt, ctLookup, ctAlloc, ctRemove, ctHashIn, wheelFile, wheelReschedule, setState,
  timeoutOf, protoKey, syncActive, addrEq,
} from "./conntrack";
import { laddrAt } from "./director-lports";
import { vsLookup } from "./director";

@inline function base(): u32 { return gget(DG_ENTRIES) + gget(DG_CAP) * CT_SIZE; }
@inline function stat(off: u32): u32 { return base() + SYNC_STATS_OFF + off; }
@inline function bump(off: u32): void { store<u32>(stat(off), load<u32>(stat(off)) + 1); }

// The region exists only when the control plane sized the memory for it.
function sized(): bool {
  if (gget(DG_READY) == 0) return false;
  return <u64>base() + <u64>SYNC_SHADOW_OFF + <u64>gget(DG_CAP) * SYNC_SHADOW_STRIDE <= (<u64>memory.size() << 16);
}

// Clears the statistics, the walk's cursor and what was sent (nothing yet), once per director:
// a daemon that takes a director over (a reload) keeps them. -1 when the memory has no room.
export function syncInit(): i32 {
  if (!sized()) return -1;
  if (load<u32>(stat(ST_READY)) == 1) return 0;
  memory.fill(base(), 0, SYNC_SHADOW_OFF);
  memory.fill(base() + SYNC_SHADOW_OFF, 0, gget(DG_CAP) * SYNC_SHADOW_STRIDE);
  store<u32>(stat(ST_READY), 1);
  return 0;
}

// Which connection an entry holds and its state (the shadow's low 12 bits, sync-layout.ts): a
// reused entry (another tuple) most likely differs, so it is sent anew.
@inline function shadowId(e: u32): u32 {
  let h = fmix32(load<u32>(e + CT_CADDR) ^ (<u32>load<u16>(e + CT_CPORT) << 16 | <u32>load<u16>(e + CT_VPORT)));
  h = fmix32(h ^ load<u32>(e + CT_CADDR + 12) ^ load<u32>(e + CT_DADDR));
  h = fmix32(h ^ load<u32>(e + CT_LADDR) ^ (<u32>load<u16>(e + CT_LPORT) << 16 | <u32>load<u16>(e + CT_DPORT)));
  return ((h >>> 25) << 5) | 16 | (<u32>load<u8>(e + CT_STATE) & 15);
}

function writeRecord(r: u32, e: u32, now: u32): void {
  store<u8>(r + REC_PROTO, <u8>(load<u8>(e + CT_PROTO) & 63));
  store<u8>(r + REC_STATE, load<u8>(e + CT_STATE));
  store<u8>(r + REC_FLAGS, <u8>((load<u8>(e + CT_FLAGS) & CTF_V6) != 0 ? RECF_V6 : 0));
  store<u8>(r + REC_RESERVED, 0);
  const left = <i32>(load<u32>(e + CT_EXPIRE) - now);
  store<u32>(r + REC_TIMEOUT, bswap<u32>(left > 0 ? <u32>left : 0));
  memory.copy(r + REC_CADDR, e + CT_CADDR, 16);
  memory.copy(r + REC_VADDR, e + CT_VADDR, 16);
  memory.copy(r + REC_LADDR, e + CT_LADDR, 16);
  memory.copy(r + REC_DADDR, e + CT_DADDR, 16);
  store<u16>(r + REC_CPORT, load<u16>(e + CT_CPORT));
  store<u16>(r + REC_VPORT, load<u16>(e + CT_VPORT));
  store<u16>(r + REC_LPORT, load<u16>(e + CT_LPORT));
  store<u16>(r + REC_DPORT, load<u16>(e + CT_DPORT));
}

// Walks at most maxSteps entries from the cursor and writes a record (at the buffer) for each
// connection the peer has not seen as it is now: new to it, another state, or an expiry that
// moved refreshMs or more past the one sent (so the peer's copy expires within refreshMs of
// ours, and an idle connection is never resent). At most maxRecords. Returns the records
// written, plus 65536 when the walk reached the table's end (the cursor starts over). -1: no region.
export function syncExport(maxRecords: u32, maxSteps: u32, refreshMs: u32): i32 {
  if (!sized()) return -1;
  const cap = <u32>(SYNC_BUF_SIZE / REC_SIZE);
  if (maxRecords > cap) maxRecords = cap;
  const hwm = gget(DG_HWM), now = gget(DG_NOW), shadow = base() + SYNC_SHADOW_OFF, buf = base() + SYNC_BUF_OFF;
  const refreshUnits = <i32>max<u32>(1, refreshMs >>> SHADOW_UNIT_SHIFT);
  let i = load<u32>(stat(ST_CURSOR)), n: u32 = 0, steps: u32 = 0, wrapped = false;
  while (n < maxRecords) {
    if (i >= hwm) { i = 0; wrapped = true; break; }
    if (steps >= maxSteps) break;
    steps++;
    const e = ent(i), sh = shadow + i * SYNC_SHADOW_STRIDE;
    i++;
    if ((load<u8>(e + CT_FLAGS) & CTF_USED) == 0 || (<u32>load<u8>(e + CT_PROTO) & CT_PROTO_TMPL) != 0) continue;
    if (<u32>load<u8>(e + CT_STATE) == CT_S_NONE) continue;
    const id = shadowId(e), units = load<u32>(e + CT_EXPIRE) >>> SHADOW_UNIT_SHIFT, was = load<u32>(sh);
    // The expiry's move since it was sent, in units, as a signed 20-bit difference.
    const moved = (<i32>((units - (was >>> 12)) << 12)) >> 12;
    if ((was & SHADOW_ID_MASK) == id && moved < refreshUnits) continue;
    writeRecord(buf + n * REC_SIZE, e, now);
    store<u32>(sh, id | (units << 12));
    n++;
  }
  store<u32>(stat(ST_CURSOR), i);
  store<u32>(stat(ST_EXPORTED), load<u32>(stat(ST_EXPORTED)) + n);
  return <i32>n + (wrapped ? 65536 : 0);
}

// An IPv4 address sits in the first 4 bytes of its 16; the rest must be zero (keys compare all 16).
@inline function addrOk(a: u32, v6: bool): bool {
  return v6 || (load<u32>(a + 4) == 0 && load<u64>(a + 8) == 0);
}

@inline function portsOf(r: u32, a: u32, b: u32): u32 {
  return <u32>load<u16>(r + a) | (<u32>load<u16>(r + b) << 16);
}

// The dest of virtual server vs whose address (and port, where the kind changes it) match the
// record's server, among the pool's current slots; -1 when this node's pool has none.
function destFor(vs: u32, r: u32): i32 {
  const pool = load<i32>(vs + VS_POOL), first = pget(P_BASE, pool), n = pget(P_COUNT, pool);
  const kind = <u32>load<u8>(vs + VS_KIND), keepsPort = kind == KIND_DR || kind == KIND_TUN;
  for (let k = 0; k < n; k++) {
    const d = load<i32>(DIR_SLOT2DEST_OFF + (<u32>(first + k) << 2));
    if (d < 0) continue;
    const dp = destAt(<u32>d);
    if (!addrEq(dp + D_ADDR, r + REC_DADDR)) continue;
    if (keepsPort || load<u16>(dp + D_PORT) == load<u16>(r + REC_DPORT)) return d;
  }
  return -1;
}

// fullnat: the index of vs's local address the record names, or 255.
function laddrFor(vs: u32, r: u32): u32 {
  const first = <u32>load<u8>(vs + VS_LFIRST), n = <u32>load<u8>(vs + VS_LCOUNT);
  for (let k: u32 = 0; k < n; k++) if (addrEq(laddrAt(first + k) + L_ADDR, r + REC_LADDR)) return first + k;
  return 255;
}

// Takes a given port out of local address li's ring of free ports (director-lports.ts: L_TOP
// free from L_HEAD on, wrapping): the head's port moves into its place and the head goes on, as
// allocLport takes one; false when it is not free here. A control-plane path (once per imported
// fullnat connection), never per packet.
function takeLport(li: u32, port: u32): bool {
  const l = laddrAt(li), free = load<u32>(l + L_TOP), head = load<u32>(l + L_HEAD), ring = DIR_PORTS_OFF + li * PORTS_STRIDE;
  let at = head;
  for (let k: u32 = 0; k < free; k++) {
    if (<u32>load<u16>(ring + (at << 1)) == port) {
      store<u16>(ring + (at << 1), load<u16>(ring + (head << 1)));
      store<u32>(l + L_TOP, free - 1);
      store<u32>(l + L_HEAD, head + 1 == <u32>LPORTS ? 0 : head + 1);
      return true;
    }
    at = at + 1 == <u32>LPORTS ? 0 : at + 1;
  }
  return false;
}

@inline function sameMapping(e: u32, r: u32, dest: i32): bool {
  return <i32>load<u16>(e + CT_DEST) == dest && addrEq(e + CT_DADDR, r + REC_DADDR) && addrEq(e + CT_LADDR, r + REC_LADDR)
    && load<u16>(e + CT_DPORT) == load<u16>(r + REC_DPORT) && load<u16>(e + CT_LPORT) == load<u16>(r + REC_LPORT);
}

function importOne(r: u32): u32 {
  const proto = <u32>load<u8>(r + REC_PROTO), state = <u32>load<u8>(r + REC_STATE), flags = <u32>load<u8>(r + REC_FLAGS);
  if (proto != 6 && proto != 17) return SR_MALFORMED;
  if (proto == 6 ? state == <u32>CT_S_NONE || state > <u32>CT_S_SYNACK : state != <u32>CT_S_UDP) return SR_MALFORMED;
  if ((flags & ~RECF_KNOWN) != 0 || load<u8>(r + REC_RESERVED) != 0) return SR_MALFORMED;
  const v6 = (flags & RECF_V6) != 0;
  if (!addrOk(r + REC_CADDR, v6) || !addrOk(r + REC_VADDR, v6) || !addrOk(r + REC_LADDR, v6) || !addrOk(r + REC_DADDR, v6)) return SR_MALFORMED;
  if (load<u16>(r + REC_CPORT) == 0 || load<u16>(r + REC_VPORT) == 0 || load<u16>(r + REC_LPORT) == 0 || load<u16>(r + REC_DPORT) == 0) return SR_MALFORMED;
  const v = vsLookup(r + REC_VADDR, <u32>load<u16>(r + REC_VPORT), proto, v6);
  if (v < 0) return SR_NO_SERVICE;
  const vs = DIR_VS_OFF + <u32>v * VS_SIZE, kind = <u32>load<u8>(vs + VS_KIND);
  // Only fullnat rewrites the source: elsewhere the local side is the client itself.
  let lidx: u32 = 255;
  if (kind == KIND_FULLNAT) {
    lidx = laddrFor(vs, r);
    if (lidx == 255) return SR_NO_LADDR;
  } else if (!addrEq(r + REC_LADDR, r + REC_CADDR) || load<u16>(r + REC_LPORT) != load<u16>(r + REC_CPORT)) {
    return SR_MALFORMED;
  }
  if ((kind == KIND_DR || kind == KIND_TUN) && load<u16>(r + REC_DPORT) != load<u16>(r + REC_VPORT)) return SR_MALFORMED;
  const dest = destFor(vs, r);
  if (dest < 0) return SR_NO_SERVER;
  const now = gget(DG_NOW);
  let timeout = bswap<u32>(load<u32>(r + REC_TIMEOUT));
  if (timeout > timeoutOf(state)) timeout = timeoutOf(state);
  const pk = protoKey(proto, v6, false);
  const link = ctLookup(r + REC_CADDR, r + REC_VADDR, <u32>load<u16>(r + REC_CPORT), <u32>load<u16>(r + REC_VPORT), pk, v6);
  if (link != CT_NONE) {
    if ((link & 1) != CT_IN) return SR_CONFLICT;
    const i = link >> 1, e = ent(i);
    if (sameMapping(e, r, dest)) {
      if (<u32>load<u8>(e + CT_STATE) != state) setState(i, state);
      store<u32>(e + CT_EXPIRE, now + timeout);
      wheelReschedule(i);
      return SR_UPDATED;
    }
    // The peer mapped this client anew (its entry was replaced): its mapping wins.
    ctRemove(i);
  }
  const outKey = kind == KIND_NAT || kind == KIND_FULLNAT;
  if (outKey) {
    // Another connection here holding the server-side key would take this one's replies: the
    // peer, which directs, knows better.
    const out = ctLookup(r + REC_DADDR, r + REC_LADDR, <u32>load<u16>(r + REC_DPORT), <u32>load<u16>(r + REC_LPORT), pk, v6);
    if (out != CT_NONE) ctRemove(out >> 1);
  }
  const i = ctAlloc();
  if (i == CT_NONE) return SR_TABLE_FULL;
  // A local port taken here too, so this node never hands it to another connection; one this
  // node holds already is left unowned (not returned when the entry goes).
  if (lidx != 255 && !takeLport(lidx, <u32>load<u16>(r + REC_LPORT))) lidx = 255;
  const e = ent(i), d = destAt(<u32>dest);
  memory.copy(e + CT_CADDR, r + REC_CADDR, 16);
  memory.copy(e + CT_VADDR, r + REC_VADDR, 16);
  memory.copy(e + CT_LADDR, r + REC_LADDR, 16);
  memory.copy(e + CT_DADDR, r + REC_DADDR, 16);
  store<u16>(e + CT_CPORT, load<u16>(r + REC_CPORT));
  store<u16>(e + CT_VPORT, load<u16>(r + REC_VPORT));
  store<u16>(e + CT_LPORT, load<u16>(r + REC_LPORT));
  store<u16>(e + CT_DPORT, load<u16>(r + REC_DPORT));
  store<u8>(e + CT_PROTO, <u8>pk);
  // Counted inactive first; setState moves it to active when it is ESTABLISHED.
  store<u8>(e + CT_STATE, <u8>(proto == 6 ? CT_S_NONE : CT_S_UDP));
  // TOA went out on the peer's handshake unless the handshake is still to complete here.
  const toa = kind == KIND_FULLNAT && state != CT_S_SYN_RECV ? CTF_TOA : 0;
  store<u8>(e + CT_FLAGS, <u8>(CTF_USED | (v6 ? CTF_V6 : 0) | (outKey ? CTF_OUTKEY : 0) | toa));
  store<u8>(e + CT_LIDX, <u8>lidx);
  store<u16>(e + CT_DEST, <u16>dest);
  store<u16>(e + CT_VS, <u16>v);
  store<u32>(e + CT_EXPIRE, now + timeout);
  store<u32>(e + CT_TMPL, 0);
  ctHashIn(i, CT_IN);
  if (outKey) ctHashIn(i, CT_OUT);
  wheelFile(i);
  store<i32>(d + D_INACTIVE, load<i32>(d + D_INACTIVE) + 1);
  syncActive(d);
  if (proto == 6) setState(i, state);
  return SR_IMPORTED;
}

// Applies n records at the buffer; returns how many made or refreshed an entry (-1: no region).
// Each result is counted in the statistics.
export function syncImport(n: u32): i32 {
  if (!sized()) return -1;
  const cap = <u32>(SYNC_BUF_SIZE / REC_SIZE);
  if (n > cap) n = cap;
  const buf = base() + SYNC_BUF_OFF;
  let applied = 0;
  for (let k: u32 = 0; k < n; k++) {
    const res = importOne(buf + k * REC_SIZE);
    bump(ST_IMPORTED + (res << 2));
    if (res == SR_IMPORTED || res == SR_UPDATED) applied++;
  }
  return applied;
}
