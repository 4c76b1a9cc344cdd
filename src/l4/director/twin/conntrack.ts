// TS twin of wasm/assembly/conntrack.ts and director-lports.ts.
import {
  DIR_OFF, DIR_COUNTERS_OFF, DIR_WHEEL_OFF, DIR_DEST_OFF, DG_NOW, DG_CAP, DG_BMASK, DG_FREE, DG_USED,
  DG_TICK, DG_HWM, DG_BUCKETS, DG_ENTRIES, DG_READY, DG_TIMEOUTS, GLOBALS_OFF, G_HASH_K0, G_HASH_K1,
  CONN_OFF, CT_SIZE, CT_NONE, CT_IN, CT_CADDR, CT_VADDR, CT_LADDR, CT_DADDR, CT_CPORT, CT_VPORT,
  CT_LPORT, CT_DPORT, CT_PROTO, CT_STATE, CT_FLAGS, CT_DEST, CT_EXPIRE, CT_NEXT_IN, CT_NEXT_OUT,
  CT_WPREV, CT_WNEXT, CT_TMPL, CT_WSLOT, CT_PROTO_TMPL, CTF_USED, CTF_V6, CTF_OUTKEY, CTF_ACTIVE,
  CT_S_NONE, CT_S_ESTABLISHED, CT_S_SYN_SENT, CT_S_SYN_RECV, CT_S_FIN_WAIT, CT_S_TIME_WAIT,
  CT_S_CLOSE, CT_S_CLOSE_WAIT, CT_S_LAST_ACK, WHEEL_SLOTS, WHEEL_SHIFT, EVICT_STEPS, DEST_SIZE,
  D_SLOT, D_ACTIVE, D_INACTIVE, C_EXPIRED, C_EVICTED, C_REFILED, S_ACTIVE, CT_LIDX, CT_VS, VS_PERSIST,
  DIR_VS_OFF, VS_SIZE, SERVERS_OFF, MAX_SERVERS, DIR_LADDR_OFF, LADDR_SIZE, L_TOP, L_HEAD, LPORTS, DIR_PORTS_OFF,
  PORTS_STRIDE,
} from "../../../core/layout.ts";
import { fmix32 } from "../../../core/hash.ts";
import { ld8, ld16, ld32, ldi32, st8, st16, st32, sti32, fill, eq16, add64, memBytes } from "./mem.ts";
import { TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK } from "./state.ts";

export const gget = (off: number): number => ld32(DIR_OFF + off);
export const gset = (off: number, v: number): void => st32(DIR_OFF + off, v);
export const ent = (i: number): number => gget(DG_ENTRIES) + i * CT_SIZE;
export const count = (c: number): void => add64(DIR_COUNTERS_OFF + c * 8, 1);
export const destAt = (d: number): number => DIR_DEST_OFF + d * DEST_SIZE;
const wheelHead = (slot: number): number => DIR_WHEEL_OFF + slot * 4;
export const laddrAt = (i: number): number => DIR_LADDR_OFF + i * LADDR_SIZE;

export function allocLport(i: number): number {
  const l = laddrAt(i), free = ld32(l + L_TOP);
  if (free === 0) return 0;
  const head = ld32(l + L_HEAD);
  st32(l + L_TOP, free - 1);
  st32(l + L_HEAD, head + 1 === LPORTS ? 0 : head + 1);
  return ld16(DIR_PORTS_OFF + i * PORTS_STRIDE + head * 2);
}

export function freeLport(i: number, port: number): void {
  const l = laddrAt(i), free = ld32(l + L_TOP);
  const tail = (ld32(l + L_HEAD) + free) % LPORTS;
  st16(DIR_PORTS_OFF + i * PORTS_STRIDE + tail * 2, port);
  st32(l + L_TOP, free + 1);
}

export function ctInit(cap: number): number {
  if (cap === 0) return -1;
  let buckets = 1;
  while (buckets < cap * 2 && buckets < 0x40000000) buckets *= 2;
  const entriesOff = CONN_OFF + buckets * 4;
  if (entriesOff + cap * CT_SIZE > memBytes()) return -1;
  fill(CONN_OFF, 0xff, buckets * 4);
  fill(DIR_WHEEL_OFF, 0xff, WHEEL_SLOTS * 4);
  gset(DG_CAP, cap); gset(DG_BMASK, buckets - 1); gset(DG_FREE, CT_NONE); gset(DG_USED, 0);
  gset(DG_HWM, 0); gset(DG_BUCKETS, CONN_OFF); gset(DG_ENTRIES, entriesOff);
  gset(DG_TICK, gget(DG_NOW) >>> WHEEL_SHIFT);
  gset(DG_READY, 1);
  return 0;
}

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
function mix(h: number, w: number): number {
  w = Math.imul(w, 0xcc9e2d51); w = rotl(w, 15); w = Math.imul(w, 0x1b873593);
  h ^= w; h = rotl(h, 13);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

export function hashTuple(src: number, dst: number, ports: number, proto: number, v6: boolean): number {
  let h = ld32(GLOBALS_OFF + G_HASH_K0) ^ proto;
  h = mix(h, ld32(src));
  h = mix(h, ld32(dst));
  if (v6) for (let k = 4; k < 16; k += 4) { h = mix(h, ld32(src + k)); h = mix(h, ld32(dst + k)); }
  h = mix(h, ports);
  return fmix32(h ^ ld32(GLOBALS_OFF + G_HASH_K1));
}

export const protoKey = (proto: number, v6: boolean, tmpl: boolean): number =>
  proto | (v6 ? 64 : 0) | (tmpl ? CT_PROTO_TMPL : 0);

const bucketOf = (h: number): number => gget(DG_BUCKETS) + ((h & gget(DG_BMASK)) >>> 0) * 4;

export function ctLookup(src: number, dst: number, sport: number, dport: number, pk: number, v6: boolean): number {
  let link = ld32(bucketOf(hashTuple(src, dst, (sport | (dport << 16)) >>> 0, pk, v6)));
  while (link !== CT_NONE) {
    const e = ent(link >>> 1);
    if ((link & 1) === CT_IN) {
      if (ld8(e + CT_PROTO) === pk && ld16(e + CT_CPORT) === sport && ld16(e + CT_VPORT) === dport
        && eq16(e + CT_CADDR, src) && eq16(e + CT_VADDR, dst)) return link;
      link = ld32(e + CT_NEXT_IN);
    } else {
      if (ld8(e + CT_PROTO) === pk && ld16(e + CT_DPORT) === sport && ld16(e + CT_LPORT) === dport
        && eq16(e + CT_DADDR, src) && eq16(e + CT_LADDR, dst)) return link;
      link = ld32(e + CT_NEXT_OUT);
    }
  }
  return CT_NONE;
}

function keyHash(i: number, dir: number): number {
  const e = ent(i), pk = ld8(e + CT_PROTO), v6 = (ld8(e + CT_FLAGS) & CTF_V6) !== 0;
  if (dir === CT_IN) return hashTuple(e + CT_CADDR, e + CT_VADDR, (ld16(e + CT_CPORT) | (ld16(e + CT_VPORT) << 16)) >>> 0, pk, v6);
  return hashTuple(e + CT_DADDR, e + CT_LADDR, (ld16(e + CT_DPORT) | (ld16(e + CT_LPORT) << 16)) >>> 0, pk, v6);
}

const nextField = (link: number): number => ent(link >>> 1) + ((link & 1) === CT_IN ? CT_NEXT_IN : CT_NEXT_OUT);

export function ctHashIn(i: number, dir: number): void {
  const b = bucketOf(keyHash(i, dir)), link = i * 2 + dir;
  st32(nextField(link), ld32(b));
  st32(b, link);
}

function ctHashOut(i: number, dir: number): void {
  const link = i * 2 + dir;
  let p = bucketOf(keyHash(i, dir));
  for (let l = ld32(p); l !== CT_NONE; l = ld32(p)) {
    if (l === link) { st32(p, ld32(nextField(link))); return; }
    p = nextField(l);
  }
}

export function wheelFile(i: number): void {
  const e = ent(i), cur = gget(DG_TICK);
  let t = ld32(e + CT_EXPIRE) >>> WHEEL_SHIFT;
  if (((t - cur) | 0) <= 0) t = (cur + 1) >>> 0;
  if (((t - cur) >>> 0) >= WHEEL_SLOTS) t = (cur + WHEEL_SLOTS - 1) >>> 0;
  const slot = t & (WHEEL_SLOTS - 1), head = wheelHead(slot), first = ld32(head);
  st32(e + CT_WPREV, CT_NONE);
  st32(e + CT_WNEXT, first);
  if (first !== CT_NONE) st32(ent(first) + CT_WPREV, i);
  st32(head, i);
  st32(e + CT_WSLOT, t);
}

export function wheelReschedule(i: number): void {
  const e = ent(i);
  if ((((ld32(e + CT_EXPIRE) >>> WHEEL_SHIFT) - ld32(e + CT_WSLOT)) | 0) < 0) {
    wheelUnfile(i);
    wheelFile(i);
  }
}

function wheelUnfile(i: number): void {
  const e = ent(i), prev = ld32(e + CT_WPREV), next = ld32(e + CT_WNEXT);
  if (prev === CT_NONE) st32(wheelHead(ld32(e + CT_WSLOT) & (WHEEL_SLOTS - 1)), next);
  else st32(ent(prev) + CT_WNEXT, next);
  if (next !== CT_NONE) st32(ent(next) + CT_WPREV, prev);
}

export function syncActive(d: number): void {
  const slot = ldi32(d + D_SLOT);
  if (slot >= 0) sti32(SERVERS_OFF + (S_ACTIVE * MAX_SERVERS + slot) * 4, ldi32(d + D_ACTIVE));
}

export function setState(i: number, ns: number): void {
  const e = ent(i);
  st8(e + CT_STATE, ns);
  const flags = ld8(e + CT_FLAGS);
  const was = (flags & CTF_ACTIVE) !== 0, now = ns === CT_S_ESTABLISHED;
  if (was === now) return;
  const d = destAt(ld16(e + CT_DEST));
  sti32(d + D_ACTIVE, ldi32(d + D_ACTIVE) + (now ? 1 : -1));
  sti32(d + D_INACTIVE, ldi32(d + D_INACTIVE) + (now ? -1 : 1));
  st8(e + CT_FLAGS, now ? flags | CTF_ACTIVE : flags & ~CTF_ACTIVE);
  syncActive(d);
}

export const timeoutOf = (state: number): number => ld32(DIR_OFF + DG_TIMEOUTS + state * 4);

export function tcpNext(state: number, dir: number, flags: number): number {
  if (flags & TCP_RST) return CT_S_CLOSE;
  if (flags & TCP_SYN) {
    if (dir === 1) return state === CT_S_NONE ? CT_S_SYN_SENT : state;
    return state === CT_S_ESTABLISHED ? state : CT_S_SYN_RECV;
  }
  if (flags & TCP_FIN) {
    if (dir === 1) {
      if (state === CT_S_ESTABLISHED || state === CT_S_SYN_RECV) return CT_S_FIN_WAIT;
      if (state === CT_S_CLOSE_WAIT) return CT_S_LAST_ACK;
      return state;
    }
    if (state === CT_S_ESTABLISHED || state === CT_S_SYN_RECV) return dir === 0 ? CT_S_CLOSE_WAIT : CT_S_FIN_WAIT;
    if (state === CT_S_FIN_WAIT) return CT_S_TIME_WAIT;
    return state;
  }
  if (flags & TCP_ACK) {
    if (dir === 1) return state;
    if (state === CT_S_SYN_RECV) return CT_S_ESTABLISHED;
    if (dir === 0 && state === CT_S_LAST_ACK) return CT_S_TIME_WAIT;
    if (dir === 2 && state === CT_S_FIN_WAIT) return CT_S_TIME_WAIT;
  }
  return state;
}

export function ctAlloc(): number {
  let i = gget(DG_FREE);
  if (i !== CT_NONE) {
    gset(DG_FREE, ld32(ent(i) + CT_WNEXT));
  } else if (gget(DG_HWM) < gget(DG_CAP)) {
    i = gget(DG_HWM);
    gset(DG_HWM, i + 1);
  } else {
    i = evict();
    if (i === CT_NONE) return CT_NONE;
    gset(DG_FREE, ld32(ent(i) + CT_WNEXT));
  }
  gset(DG_USED, gget(DG_USED) + 1);
  return i;
}

function evict(): number {
  const cur = gget(DG_TICK);
  let steps = 0;
  for (let k = 1; k < WHEEL_SLOTS && steps < EVICT_STEPS; k++) {
    const t = (cur + k) >>> 0, slot = t & (WHEEL_SLOTS - 1);
    let i = ld32(wheelHead(slot));
    while (i !== CT_NONE && steps < EVICT_STEPS) {
      steps++;
      const e = ent(i), next = ld32(e + CT_WNEXT);
      const isTmpl = (ld8(e + CT_PROTO) & CT_PROTO_TMPL) !== 0;
      if (isTmpl && ld32(e + CT_TMPL) > 0) { i = next; continue; }
      const et = ld32(e + CT_EXPIRE) >>> WHEEL_SHIFT;
      if (((et - t) | 0) > 0 && k < WHEEL_SLOTS - 1) {
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

export function ctRemove(i: number): void {
  const e = ent(i), flags = ld8(e + CT_FLAGS);
  if ((flags & CTF_USED) === 0) return;
  ctHashOut(i, CT_IN);
  if (flags & CTF_OUTKEY) ctHashOut(i, 1);
  wheelUnfile(i);
  if ((ld8(e + CT_PROTO) & CT_PROTO_TMPL) === 0) {
    const d = destAt(ld16(e + CT_DEST));
    if (flags & CTF_ACTIVE) sti32(d + D_ACTIVE, ldi32(d + D_ACTIVE) - 1);
    else sti32(d + D_INACTIVE, ldi32(d + D_INACTIVE) - 1);
    syncActive(d);
    const lidx = ld8(e + CT_LIDX);
    if (lidx !== 255) freeLport(lidx, ld16(e + CT_LPORT));
    const tm = ld32(e + CT_TMPL);
    if (tm !== 0) {
      const te = ent(tm - 1);
      st32(te + CT_TMPL, ld32(te + CT_TMPL) - 1);
    }
  }
  ctFree(i);
}

export function ctFree(i: number): void {
  const e = ent(i);
  st8(e + CT_FLAGS, 0);
  st32(e + CT_WNEXT, gget(DG_FREE));
  gset(DG_FREE, i);
  gset(DG_USED, gget(DG_USED) - 1);
}

export function ctAdvance(now: number): void {
  const nowT = now >>> WHEEL_SHIFT;
  let steps = 0;
  while (((nowT - gget(DG_TICK)) | 0) > 0 && steps < WHEEL_SLOTS) {
    const t = (gget(DG_TICK) + 1) >>> 0;
    gset(DG_TICK, t);
    steps++;
    const head = wheelHead(t & (WHEEL_SLOTS - 1));
    let i = ld32(head);
    st32(head, CT_NONE);
    while (i !== CT_NONE) {
      const e = ent(i), next = ld32(e + CT_WNEXT);
      if (next !== CT_NONE) st32(ent(next) + CT_WPREV, CT_NONE);
      st32(e + CT_WPREV, CT_NONE);
      if (((ld32(e + CT_EXPIRE) - now) | 0) > 0) {
        wheelFile(i); count(C_REFILED);
      } else if ((ld8(e + CT_PROTO) & CT_PROTO_TMPL) !== 0 && ld32(e + CT_TMPL) > 0) {
        const vs = DIR_VS_OFF + ld16(e + CT_VS) * VS_SIZE;
        st32(e + CT_EXPIRE, now + ld32(vs + VS_PERSIST));
        wheelFile(i);
      } else {
        st32(e + CT_WNEXT, CT_NONE);
        st32(e + CT_WSLOT, t);
        st32(head, i);
        ctRemove(i);
        count(C_EXPIRED);
      }
      i = next;
    }
  }
  if (((nowT - gget(DG_TICK)) | 0) > 0) gset(DG_TICK, nowT);
}
