// Connection table: bounded entries in linear memory, one bucket array holding both directions'
// keys (a link is entry * 2 + direction), a timer wheel for expiry, and per-server active and
// inactive counts. A packet only rewrites its own entry's expiry: the wheel is maintained lazily
// (an entry still filed under an older expiry is refiled when its slot comes round), so no packet
// touches another entry and nothing scans the table.
import {
  DIR_OFF, DIR_COUNTERS_OFF, DIR_WHEEL_OFF, DIR_DEST_OFF, DG_NOW, DG_CAP, DG_BMASK, DG_FREE, DG_USED,
  DG_TICK, DG_HWM, DG_BUCKETS, DG_ENTRIES, DG_READY, DG_TIMEOUTS, GLOBALS_OFF, G_HASH_K0, G_HASH_K1, CONN_OFF,
  CT_SIZE, CT_NONE, CT_IN, CT_OUT, CT_CADDR, CT_VADDR, CT_LADDR, CT_DADDR, CT_CPORT, CT_VPORT, CT_LPORT,
  CT_DPORT, CT_PROTO, CT_STATE, CT_FLAGS, CT_DEST, CT_EXPIRE, CT_NEXT_IN, CT_NEXT_OUT, CT_WPREV,
  CT_WNEXT, CT_TMPL, CT_WSLOT, CT_PROTO_TMPL, CTF_USED, CTF_V6, CTF_OUTKEY, CTF_ACTIVE, CT_S_NONE,
  CT_S_ESTABLISHED, CT_S_SYN_SENT, CT_S_SYN_RECV, CT_S_FIN_WAIT, CT_S_TIME_WAIT, CT_S_CLOSE,
  CT_S_CLOSE_WAIT, CT_S_LAST_ACK, WHEEL_SLOTS, WHEEL_SHIFT, EVICT_STEPS, DEST_SIZE,
  D_SLOT, D_ACTIVE, D_INACTIVE, C_EXPIRED, C_EVICTED, C_REFILED, S_ACTIVE, CT_LIDX,
  CT_VS, VS_PERSIST, DIR_VS_OFF, VS_SIZE,
} from "./layout";
import { sset } from "./mem";
import { fmix32 } from "./hash";
import { TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK } from "./director-parse";
import { freeLport } from "./director-lports";

@inline export function gget(off: u32): u32 { return load<u32>(DIR_OFF + <u32>off); }
@inline export function gset(off: u32, v: u32): void { store<u32>(DIR_OFF + <u32>off, v); }
@inline export function ent(i: u32): u32 { return <u32>gget(DG_ENTRIES) + <u32>i * CT_SIZE; }
@inline export function count(c: u32): void {
  const p = DIR_COUNTERS_OFF + (<u32>c << 3);
  store<u64>(p, load<u64>(p) + 1);
}
@inline export function destAt(d: u32): u32 { return DIR_DEST_OFF + <u32>d * DEST_SIZE; }
@inline function wheelHead(slot: u32): u32 { return DIR_WHEEL_OFF + (<u32>slot << 2); }

// Sizes the table for cap entries in memory that must already reach the end; -1 when it does not.
export function ctInit(cap: u32): i32 {
  if (cap == 0) return -1;
  let buckets: u32 = 1;
  while (buckets < cap * 2 && buckets < 0x40000000) buckets <<= 1;
  const bucketsOff = <u32>CONN_OFF;
  const entriesOff = bucketsOff + (<u32>buckets << 2);
  const end = <u64>entriesOff + <u64>cap * CT_SIZE;
  if (end > (<u64>memory.size() << 16)) return -1;
  memory.fill(bucketsOff, 0xff, <u32>buckets << 2);
  memory.fill(DIR_WHEEL_OFF, 0xff, WHEEL_SLOTS << 2);
  gset(DG_CAP, cap); gset(DG_BMASK, buckets - 1); gset(DG_FREE, CT_NONE); gset(DG_USED, 0);
  gset(DG_HWM, 0); gset(DG_BUCKETS, <u32>bucketsOff); gset(DG_ENTRIES, <u32>entriesOff);
  gset(DG_TICK, gget(DG_NOW) >> WHEEL_SHIFT);
  gset(DG_READY, 1);
  return 0;
}

@inline function mix(h: u32, w: u32): u32 {
  w *= 0xcc9e2d51; w = rotl<u32>(w, 15); w *= 0x1b873593;
  h ^= w; h = rotl<u32>(h, 13);
  return h * 5 + 0xe6546b64;
}

// Keyed hash of a tuple (addresses as 16-byte key slots, ports as loaded, the proto key).
@inline export function hashTuple(src: u32, dst: u32, ports: u32, proto: u32, v6: bool): u32 {
  let h = load<u32>(GLOBALS_OFF + G_HASH_K0) ^ proto;
  h = mix(h, load<u32>(src));
  h = mix(h, load<u32>(dst));
  if (v6) {
    for (let k: u32 = 4; k < 16; k += 4) { h = mix(h, load<u32>(src + k)); h = mix(h, load<u32>(dst + k)); }
  }
  h = mix(h, ports);
  return fmix32(h ^ load<u32>(GLOBALS_OFF + G_HASH_K1));
}

@inline export function addrEq(a: u32, b: u32): bool {
  return load<u64>(a) == load<u64>(b) && load<u64>(a + 8) == load<u64>(b + 8);
}

// The proto key: protocol, family and template bits (so no two kinds of key ever compare equal).
@inline export function protoKey(proto: u32, v6: bool, tmpl: bool): u32 {
  return proto | (v6 ? 64 : 0) | (tmpl ? CT_PROTO_TMPL : 0);
}

@inline function bucketOf(h: u32): u32 {
  return <u32>gget(DG_BUCKETS) + (<u32>(h & gget(DG_BMASK)) << 2);
}

// The link matching a packet's tuple in either direction, or CT_NONE.
@inline export function ctLookup(src: u32, dst: u32, sport: u32, dport: u32, pk: u32, v6: bool): u32 {
  let link = load<u32>(bucketOf(hashTuple(src, dst, sport | (dport << 16), pk, v6)));
  while (link != CT_NONE) {
    const e = ent(link >> 1);
    if ((link & 1) == CT_IN) {
      if (<u32>load<u8>(e + CT_PROTO) == pk && <u32>load<u16>(e + CT_CPORT) == sport
        && <u32>load<u16>(e + CT_VPORT) == dport && addrEq(e + CT_CADDR, src) && addrEq(e + CT_VADDR, dst)) return link;
      link = load<u32>(e + CT_NEXT_IN);
    } else {
      if (<u32>load<u8>(e + CT_PROTO) == pk && <u32>load<u16>(e + CT_DPORT) == sport
        && <u32>load<u16>(e + CT_LPORT) == dport && addrEq(e + CT_DADDR, src) && addrEq(e + CT_LADDR, dst)) return link;
      link = load<u32>(e + CT_NEXT_OUT);
    }
  }
  return CT_NONE;
}

// The address of a tuple's bucket: the batch's first pass computes it, a later one loads it early.
export function ctBucket(src: u32, dst: u32, sport: u32, dport: u32, pk: u32, v6: bool): u32 {
  return bucketOf(hashTuple(src, dst, sport | (dport << 16), pk, v6));
}

function keyHash(i: u32, dir: u32): u32 {
  const e = ent(i);
  const pk = <u32>load<u8>(e + CT_PROTO), v6 = (load<u8>(e + CT_FLAGS) & CTF_V6) != 0;
  if (dir == CT_IN) {
    return hashTuple(e + CT_CADDR, e + CT_VADDR, <u32>load<u16>(e + CT_CPORT) | (<u32>load<u16>(e + CT_VPORT) << 16), pk, v6);
  }
  return hashTuple(e + CT_DADDR, e + CT_LADDR, <u32>load<u16>(e + CT_DPORT) | (<u32>load<u16>(e + CT_LPORT) << 16), pk, v6);
}

@inline function nextField(link: u32): u32 {
  return ent(link >> 1) + ((link & 1) == CT_IN ? CT_NEXT_IN : CT_NEXT_OUT);
}

export function ctHashIn(i: u32, dir: u32): void {
  const b = bucketOf(keyHash(i, dir));
  const link = (i << 1) | dir;
  store<u32>(nextField(link), load<u32>(b));
  store<u32>(b, link);
}

function ctHashOut(i: u32, dir: u32): void {
  const link = (i << 1) | dir;
  let p = bucketOf(keyHash(i, dir));
  for (let l = load<u32>(p); l != CT_NONE; l = load<u32>(p)) {
    if (l == link) { store<u32>(p, load<u32>(nextField(link))); return; }
    p = nextField(l);
  }
}

// Files entry i under the wheel slot of its expiry (at least the next tick, within the horizon).
export function wheelFile(i: u32): void {
  const e = ent(i), cur = gget(DG_TICK);
  let t = load<u32>(e + CT_EXPIRE) >> WHEEL_SHIFT;
  if (<i32>(t - cur) <= 0) t = cur + 1;
  if (t - cur >= <u32>WHEEL_SLOTS) t = cur + WHEEL_SLOTS - 1;
  const slot = t & (WHEEL_SLOTS - 1), head = wheelHead(slot);
  const first = load<u32>(head);
  store<u32>(e + CT_WPREV, CT_NONE);
  store<u32>(e + CT_WNEXT, first);
  if (first != CT_NONE) store<u32>(ent(first) + CT_WPREV, i);
  store<u32>(head, i);
  store<u32>(e + CT_WSLOT, t);
}

// After a state change shortened the timeout, an entry filed later than its new expiry is
// refiled (a longer timeout needs nothing: the lazy refile catches it).
export function wheelReschedule(i: u32): void {
  const e = ent(i);
  if (<i32>((load<u32>(e + CT_EXPIRE) >> WHEEL_SHIFT) - load<u32>(e + CT_WSLOT)) < 0) {
    wheelUnfile(i);
    wheelFile(i);
  }
}

function wheelUnfile(i: u32): void {
  const e = ent(i), prev = load<u32>(e + CT_WPREV), next = load<u32>(e + CT_WNEXT);
  if (prev == CT_NONE) store<u32>(wheelHead(load<u32>(e + CT_WSLOT) & (WHEEL_SLOTS - 1)), next);
  else store<u32>(ent(prev) + CT_WNEXT, next);
  if (next != CT_NONE) store<u32>(ent(next) + CT_WPREV, prev);
}

// Writes a dest's active count into its server-table slot, where lc, wlc, sed and nq read it.
@inline export function syncActive(d: u32): void {
  const slot = load<i32>(d + D_SLOT);
  if (slot >= 0) sset(S_ACTIVE, slot, load<i32>(d + D_ACTIVE));
}

// A state change, with the dest's active (ESTABLISHED) and inactive counts kept in step.
export function setState(i: u32, ns: u32): void {
  const e = ent(i);
  store<u8>(e + CT_STATE, <u8>ns);
  const flags = <u32>load<u8>(e + CT_FLAGS);
  const was = (flags & CTF_ACTIVE) != 0, now = ns == CT_S_ESTABLISHED;
  if (was == now) return;
  const d = destAt(<u32>load<u16>(e + CT_DEST));
  if (now) {
    store<i32>(d + D_ACTIVE, load<i32>(d + D_ACTIVE) + 1);
    store<i32>(d + D_INACTIVE, load<i32>(d + D_INACTIVE) - 1);
    store<u8>(e + CT_FLAGS, <u8>(flags | CTF_ACTIVE));
  } else {
    store<i32>(d + D_ACTIVE, load<i32>(d + D_ACTIVE) - 1);
    store<i32>(d + D_INACTIVE, load<i32>(d + D_INACTIVE) + 1);
    store<u8>(e + CT_FLAGS, <u8>(flags & ~CTF_ACTIVE));
  }
  syncActive(d);
}

@inline export function timeoutOf(state: u32): u32 {
  return load<u32>(DIR_OFF + DG_TIMEOUTS + (<u32>state << 2));
}

// TCP state after a packet with these flags; dir 0 from the client (nat, fullnat), 1 from the
// server, 2 from the client where the server answers directly (dr, tun: only one side is seen).
@inline export function tcpNext(state: u32, dir: u32, flags: u32): u32 {
  if (flags & TCP_RST) return CT_S_CLOSE;
  if (flags & TCP_SYN) {
    if (dir == 1) return state == CT_S_NONE ? CT_S_SYN_SENT : state;
    return state == CT_S_ESTABLISHED ? state : CT_S_SYN_RECV;
  }
  if (flags & TCP_FIN) {
    if (dir == 1) {
      if (state == CT_S_ESTABLISHED || state == CT_S_SYN_RECV) return CT_S_FIN_WAIT;
      if (state == CT_S_CLOSE_WAIT) return CT_S_LAST_ACK;
      return state;
    }
    if (state == CT_S_ESTABLISHED || state == CT_S_SYN_RECV) return dir == 0 ? CT_S_CLOSE_WAIT : CT_S_FIN_WAIT;
    if (state == CT_S_FIN_WAIT) return CT_S_TIME_WAIT;
    return state;
  }
  if (flags & TCP_ACK) {
    if (dir == 1) return state;
    if (state == CT_S_SYN_RECV) return CT_S_ESTABLISHED;
    if (dir == 0 && state == CT_S_LAST_ACK) return CT_S_TIME_WAIT;
    if (dir == 2 && state == CT_S_FIN_WAIT) return CT_S_TIME_WAIT;
  }
  return state;
}

// A fresh entry: a free one, one never used, or the least recently used one evicted. CT_NONE
// when every entry looked at is a template still holding connections.
export function ctAlloc(): u32 {
  let i = gget(DG_FREE);
  if (i != CT_NONE) {
    gset(DG_FREE, load<u32>(ent(i) + CT_WNEXT));
  } else if (gget(DG_HWM) < gget(DG_CAP)) {
    i = gget(DG_HWM);
    gset(DG_HWM, i + 1);
  } else {
    i = evict();
    if (i == CT_NONE) return CT_NONE;
    gset(DG_FREE, load<u32>(ent(i) + CT_WNEXT));
  }
  gset(DG_USED, gget(DG_USED) + 1);
  return i;
}

// The victim is the first entry found, from the next wheel slot on, whose expiry really falls
// in its slot: the least recently used to a slot's precision, its state's timeout counted (a
// TIME_WAIT connection goes before an ESTABLISHED one seen at the same time). Entries refreshed
// since they were filed are refiled on the way. Frees the victim and returns it.
function evict(): u32 {
  const cur = gget(DG_TICK);
  let steps = 0;
  for (let k: u32 = 1; k < <u32>WHEEL_SLOTS && steps < EVICT_STEPS; k++) {
    const t = cur + k, slot = t & (WHEEL_SLOTS - 1);
    let i = load<u32>(wheelHead(slot));
    while (i != CT_NONE && steps < EVICT_STEPS) {
      steps++;
      const e = ent(i), next = load<u32>(e + CT_WNEXT);
      const isTmpl = (<u32>load<u8>(e + CT_PROTO) & CT_PROTO_TMPL) != 0;
      if (isTmpl && load<u32>(e + CT_TMPL) > 0) { i = next; continue; }
      const et = load<u32>(e + CT_EXPIRE) >> WHEEL_SHIFT;
      if (<i32>(et - t) > 0 && k < <u32>WHEEL_SLOTS - 1) {
        wheelUnfile(i); wheelFile(i); count(C_REFILED);
        i = next; continue;
      }
      ctRemove(i);
      count(C_EVICTED);
      return i;
    }
  }
  return CT_NONE;
}

// Unhashes, unfiles and frees entry i, releasing its counts, local port and template hold.
export function ctRemove(i: u32): void {
  const e = ent(i);
  const flags = <u32>load<u8>(e + CT_FLAGS);
  if ((flags & CTF_USED) == 0) return;
  ctHashOut(i, CT_IN);
  if (flags & CTF_OUTKEY) ctHashOut(i, CT_OUT);
  wheelUnfile(i);
  if ((<u32>load<u8>(e + CT_PROTO) & CT_PROTO_TMPL) == 0) {
    const d = destAt(<u32>load<u16>(e + CT_DEST));
    if (flags & CTF_ACTIVE) store<i32>(d + D_ACTIVE, load<i32>(d + D_ACTIVE) - 1);
    else store<i32>(d + D_INACTIVE, load<i32>(d + D_INACTIVE) - 1);
    syncActive(d);
    const lidx = <u32>load<u8>(e + CT_LIDX);
    if (lidx != 255) freeLport(lidx, <u32>load<u16>(e + CT_LPORT));
    const tm = load<u32>(e + CT_TMPL);
    if (tm != 0) {
      const te = ent(tm - 1);
      store<u32>(te + CT_TMPL, load<u32>(te + CT_TMPL) - 1);
    }
  }
  ctFree(i);
}

// Returns an entry that holds no keys and no wheel place to the free list.
export function ctFree(i: u32): void {
  const e = ent(i);
  store<u8>(e + CT_FLAGS, 0);
  store<u32>(e + CT_WNEXT, gget(DG_FREE));
  gset(DG_FREE, i);
  gset(DG_USED, gget(DG_USED) - 1);
}

// Expires what the clock has passed. Slot t is emptied when the clock enters tick t + 1, so an
// entry goes at most one slot (1024 ms) after its expiry. A jump past the horizon visits every
// slot once. A template still holding connections is kept for another persistence timeout.
export function ctAdvance(now: u32): void {
  const nowT = now >> WHEEL_SHIFT;
  let steps: u32 = 0;
  while (<i32>(nowT - gget(DG_TICK)) > 0 && steps < <u32>WHEEL_SLOTS) {
    const t = gget(DG_TICK) + 1;
    gset(DG_TICK, t);
    steps++;
    const head = wheelHead(t & (WHEEL_SLOTS - 1));
    let i = load<u32>(head);
    store<u32>(head, CT_NONE);
    while (i != CT_NONE) {
      const e = ent(i), next = load<u32>(e + CT_WNEXT);
      if (next != CT_NONE) store<u32>(ent(next) + CT_WPREV, CT_NONE);
      store<u32>(e + CT_WPREV, CT_NONE);
      if (<i32>(load<u32>(e + CT_EXPIRE) - now) > 0) {
        wheelFile(i); count(C_REFILED);
      } else if ((<u32>load<u8>(e + CT_PROTO) & CT_PROTO_TMPL) != 0 && load<u32>(e + CT_TMPL) > 0) {
        const vs = DIR_VS_OFF + <u32>load<u16>(e + CT_VS) * VS_SIZE;
        store<u32>(e + CT_EXPIRE, now + load<u32>(vs + VS_PERSIST));
        wheelFile(i);
      } else {
        // Detached from the list already: file it alone so ctRemove's unfile is a no-op.
        store<u32>(e + CT_WNEXT, CT_NONE);
        store<u32>(e + CT_WSLOT, t);
        store<u32>(head, i);
        ctRemove(i);
        count(C_EXPIRED);
      }
      i = next;
    }
  }
  if (<i32>(nowT - gget(DG_TICK)) > 0) gset(DG_TICK, nowT);
}
