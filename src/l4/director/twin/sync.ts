// TS twin of wasm/assembly/director-sync.ts: the export walk and the import, over the same memory.
import {
  DG_CAP, DG_ENTRIES, DG_HWM, DG_NOW, DG_READY, CT_SIZE, CT_NONE, CT_IN, CT_OUT, CT_CADDR, CT_VADDR, CT_LADDR,
  CT_DADDR, CT_CPORT, CT_VPORT, CT_LPORT, CT_DPORT, CT_PROTO, CT_STATE, CT_FLAGS, CT_LIDX, CT_DEST,
  CT_VS, CT_EXPIRE, CT_TMPL, CT_PROTO_TMPL, CTF_USED, CTF_V6, CTF_OUTKEY, CTF_TOA, CT_S_NONE,
  CT_S_SYN_RECV, CT_S_SYNACK, CT_S_UDP, DIR_VS_OFF, VS_SIZE, VS_KIND, VS_POOL, VS_LCOUNT, VS_LFIRST,
  KIND_NAT, KIND_DR, KIND_TUN, KIND_FULLNAT, D_ADDR, D_PORT, D_INACTIVE, DIR_SLOT2DEST_OFF, P_BASE,
  P_COUNT, L_ADDR, L_TOP, L_HEAD, LPORTS, DIR_PORTS_OFF, PORTS_STRIDE, POOLS_OFF, MAX_POOLS,
} from "../../../core/layout.ts";
import {
  SYNC_STATS_OFF, ST_CURSOR, ST_EXPORTED, ST_IMPORTED, ST_READY, SYNC_BUF_OFF, SYNC_BUF_SIZE, SYNC_SHADOW_OFF,
  SYNC_SHADOW_STRIDE, SHADOW_UNIT_SHIFT, SHADOW_ID_MASK, REC_SIZE, REC_PROTO, REC_STATE, REC_FLAGS, REC_RESERVED, REC_TIMEOUT, REC_CADDR,
  REC_VADDR, REC_LADDR, REC_DADDR, REC_CPORT, REC_VPORT, REC_LPORT, REC_DPORT, RECF_V6, RECF_KNOWN,
  SR_IMPORTED, SR_UPDATED, SR_MALFORMED, SR_NO_SERVICE, SR_NO_SERVER, SR_NO_LADDR, SR_TABLE_FULL, SR_CONFLICT,
} from "../../../../wasm/assembly/sync-layout.ts";
import { fmix32 } from "../../../core/hash.ts";
import { bind, memBytes, ld8, ld16, ld32, ldi32, st8, st16, st32, sti32, copy, fill, eq16 } from "./mem.ts";
import {
  gget, ent, destAt, laddrAt, ctLookup, ctAlloc, ctRemove, ctHashIn, wheelFile, wheelReschedule, setState,
  timeoutOf, protoKey, syncActive,
} from "./conntrack.ts";
import { vsLookup } from "./director.ts";

const base = (): number => gget(DG_ENTRIES) + gget(DG_CAP) * CT_SIZE;
const stat = (off: number): number => base() + SYNC_STATS_OFF + off;
const bump = (off: number): void => st32(stat(off), ld32(stat(off)) + 1);
const pget = (f: number, p: number): number => ldi32(POOLS_OFF + (f * MAX_POOLS + p) * 4);
const bswap32 = (v: number): number => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

const sized = (): boolean =>
  gget(DG_READY) !== 0 && base() + SYNC_SHADOW_OFF + gget(DG_CAP) * SYNC_SHADOW_STRIDE <= memBytes();

function syncInit(): number {
  if (!sized()) return -1;
  if (ld32(stat(ST_READY)) === 1) return 0;
  fill(base(), 0, SYNC_SHADOW_OFF);
  fill(base() + SYNC_SHADOW_OFF, 0, gget(DG_CAP) * SYNC_SHADOW_STRIDE);
  st32(stat(ST_READY), 1);
  return 0;
}

function shadowId(e: number): number {
  let h = fmix32(ld32(e + CT_CADDR) ^ ((ld16(e + CT_CPORT) << 16) | ld16(e + CT_VPORT)));
  h = fmix32(h ^ ld32(e + CT_CADDR + 12) ^ ld32(e + CT_DADDR));
  h = fmix32(h ^ ld32(e + CT_LADDR) ^ ((ld16(e + CT_LPORT) << 16) | ld16(e + CT_DPORT)));
  return (((h >>> 25) << 5) | 16 | (ld8(e + CT_STATE) & 15)) >>> 0;
}

function writeRecord(r: number, e: number, now: number): void {
  st8(r + REC_PROTO, ld8(e + CT_PROTO) & 63);
  st8(r + REC_STATE, ld8(e + CT_STATE));
  st8(r + REC_FLAGS, (ld8(e + CT_FLAGS) & CTF_V6) !== 0 ? RECF_V6 : 0);
  st8(r + REC_RESERVED, 0);
  const left = (ld32(e + CT_EXPIRE) - now) | 0;
  st32(r + REC_TIMEOUT, bswap32(left > 0 ? left : 0));
  copy(r + REC_CADDR, e + CT_CADDR, 16);
  copy(r + REC_VADDR, e + CT_VADDR, 16);
  copy(r + REC_LADDR, e + CT_LADDR, 16);
  copy(r + REC_DADDR, e + CT_DADDR, 16);
  st16(r + REC_CPORT, ld16(e + CT_CPORT));
  st16(r + REC_VPORT, ld16(e + CT_VPORT));
  st16(r + REC_LPORT, ld16(e + CT_LPORT));
  st16(r + REC_DPORT, ld16(e + CT_DPORT));
}

function syncExport(maxRecords: number, maxSteps: number, refreshMs: number): number {
  if (!sized()) return -1;
  maxRecords = Math.min(maxRecords, Math.floor(SYNC_BUF_SIZE / REC_SIZE));
  const hwm = gget(DG_HWM), now = gget(DG_NOW), shadow = base() + SYNC_SHADOW_OFF, buf = base() + SYNC_BUF_OFF;
  const refreshUnits = Math.max(1, refreshMs >>> SHADOW_UNIT_SHIFT);
  let i = ld32(stat(ST_CURSOR)), n = 0, steps = 0, wrapped = false;
  while (n < maxRecords) {
    if (i >= hwm) { i = 0; wrapped = true; break; }
    if (steps >= maxSteps) break;
    steps++;
    const e = ent(i), sh = shadow + i * SYNC_SHADOW_STRIDE;
    i++;
    if ((ld8(e + CT_FLAGS) & CTF_USED) === 0 || (ld8(e + CT_PROTO) & CT_PROTO_TMPL) !== 0) continue;
    if (ld8(e + CT_STATE) === CT_S_NONE) continue;
    const id = shadowId(e), units = ld32(e + CT_EXPIRE) >>> SHADOW_UNIT_SHIFT, was = ld32(sh);
    const moved = ((units - (was >>> 12)) << 12) >> 12;
    if ((was & SHADOW_ID_MASK) === id && moved < refreshUnits) continue;
    writeRecord(buf + n * REC_SIZE, e, now);
    st32(sh, (id | (units << 12)) >>> 0);
    n++;
  }
  st32(stat(ST_CURSOR), i);
  st32(stat(ST_EXPORTED), ld32(stat(ST_EXPORTED)) + n);
  return n + (wrapped ? 65536 : 0);
}

const addrOk = (a: number, v6: boolean): boolean => v6 || (ld32(a + 4) === 0 && ld32(a + 8) === 0 && ld32(a + 12) === 0);

function destFor(vs: number, r: number): number {
  const pool = ldi32(vs + VS_POOL), first = pget(P_BASE, pool), n = pget(P_COUNT, pool);
  const kind = ld8(vs + VS_KIND), keepsPort = kind === KIND_DR || kind === KIND_TUN;
  for (let k = 0; k < n; k++) {
    const d = ldi32(DIR_SLOT2DEST_OFF + (first + k) * 4);
    if (d < 0) continue;
    const dp = destAt(d);
    if (!eq16(dp + D_ADDR, r + REC_DADDR)) continue;
    if (keepsPort || ld16(dp + D_PORT) === ld16(r + REC_DPORT)) return d;
  }
  return -1;
}

function laddrFor(vs: number, r: number): number {
  const first = ld8(vs + VS_LFIRST), n = ld8(vs + VS_LCOUNT);
  for (let k = 0; k < n; k++) if (eq16(laddrAt(first + k) + L_ADDR, r + REC_LADDR)) return first + k;
  return 255;
}

// The kernel's takeLport (wasm/assembly/director-sync.ts): out of the ring of free ports, from its head.
function takeLport(li: number, port: number): boolean {
  const l = laddrAt(li), free = ld32(l + L_TOP), head = ld32(l + L_HEAD), ring = DIR_PORTS_OFF + li * PORTS_STRIDE;
  let at = head;
  for (let k = 0; k < free; k++) {
    if (ld16(ring + at * 2) === port) {
      st16(ring + at * 2, ld16(ring + head * 2));
      st32(l + L_TOP, free - 1);
      st32(l + L_HEAD, head + 1 === LPORTS ? 0 : head + 1);
      return true;
    }
    at = at + 1 === LPORTS ? 0 : at + 1;
  }
  return false;
}

const sameMapping = (e: number, r: number, dest: number): boolean =>
  ld16(e + CT_DEST) === dest && eq16(e + CT_DADDR, r + REC_DADDR) && eq16(e + CT_LADDR, r + REC_LADDR)
  && ld16(e + CT_DPORT) === ld16(r + REC_DPORT) && ld16(e + CT_LPORT) === ld16(r + REC_LPORT);

function importOne(r: number): number {
  const proto = ld8(r + REC_PROTO), state = ld8(r + REC_STATE), flags = ld8(r + REC_FLAGS);
  if (proto !== 6 && proto !== 17) return SR_MALFORMED;
  if (proto === 6 ? state === CT_S_NONE || state > CT_S_SYNACK : state !== CT_S_UDP) return SR_MALFORMED;
  if ((flags & ~RECF_KNOWN) !== 0 || ld8(r + REC_RESERVED) !== 0) return SR_MALFORMED;
  const v6 = (flags & RECF_V6) !== 0;
  if (!addrOk(r + REC_CADDR, v6) || !addrOk(r + REC_VADDR, v6) || !addrOk(r + REC_LADDR, v6) || !addrOk(r + REC_DADDR, v6)) return SR_MALFORMED;
  if (ld16(r + REC_CPORT) === 0 || ld16(r + REC_VPORT) === 0 || ld16(r + REC_LPORT) === 0 || ld16(r + REC_DPORT) === 0) return SR_MALFORMED;
  const v = vsLookup(r + REC_VADDR, ld16(r + REC_VPORT), proto, v6);
  if (v < 0) return SR_NO_SERVICE;
  const vs = DIR_VS_OFF + v * VS_SIZE, kind = ld8(vs + VS_KIND);
  let lidx = 255;
  if (kind === KIND_FULLNAT) {
    lidx = laddrFor(vs, r);
    if (lidx === 255) return SR_NO_LADDR;
  } else if (!eq16(r + REC_LADDR, r + REC_CADDR) || ld16(r + REC_LPORT) !== ld16(r + REC_CPORT)) {
    return SR_MALFORMED;
  }
  if ((kind === KIND_DR || kind === KIND_TUN) && ld16(r + REC_DPORT) !== ld16(r + REC_VPORT)) return SR_MALFORMED;
  const dest = destFor(vs, r);
  if (dest < 0) return SR_NO_SERVER;
  const now = gget(DG_NOW);
  const timeout = Math.min(bswap32(ld32(r + REC_TIMEOUT)), timeoutOf(state));
  const pk = protoKey(proto, v6, false);
  const link = ctLookup(r + REC_CADDR, r + REC_VADDR, ld16(r + REC_CPORT), ld16(r + REC_VPORT), pk, v6);
  if (link !== CT_NONE) {
    if ((link & 1) !== CT_IN) return SR_CONFLICT;
    const i = link >>> 1, e = ent(i);
    if (sameMapping(e, r, dest)) {
      if (ld8(e + CT_STATE) !== state) setState(i, state);
      st32(e + CT_EXPIRE, now + timeout);
      wheelReschedule(i);
      return SR_UPDATED;
    }
    ctRemove(i);
  }
  const outKey = kind === KIND_NAT || kind === KIND_FULLNAT;
  if (outKey) {
    const out = ctLookup(r + REC_DADDR, r + REC_LADDR, ld16(r + REC_DPORT), ld16(r + REC_LPORT), pk, v6);
    if (out !== CT_NONE) ctRemove(out >>> 1);
  }
  const i = ctAlloc();
  if (i === CT_NONE) return SR_TABLE_FULL;
  if (lidx !== 255 && !takeLport(lidx, ld16(r + REC_LPORT))) lidx = 255;
  const e = ent(i), d = destAt(dest);
  copy(e + CT_CADDR, r + REC_CADDR, 16);
  copy(e + CT_VADDR, r + REC_VADDR, 16);
  copy(e + CT_LADDR, r + REC_LADDR, 16);
  copy(e + CT_DADDR, r + REC_DADDR, 16);
  st16(e + CT_CPORT, ld16(r + REC_CPORT));
  st16(e + CT_VPORT, ld16(r + REC_VPORT));
  st16(e + CT_LPORT, ld16(r + REC_LPORT));
  st16(e + CT_DPORT, ld16(r + REC_DPORT));
  st8(e + CT_PROTO, pk);
  st8(e + CT_STATE, proto === 6 ? CT_S_NONE : CT_S_UDP);
  const toa = kind === KIND_FULLNAT && state !== CT_S_SYN_RECV ? CTF_TOA : 0;
  st8(e + CT_FLAGS, CTF_USED | (v6 ? CTF_V6 : 0) | (outKey ? CTF_OUTKEY : 0) | toa);
  st8(e + CT_LIDX, lidx);
  st16(e + CT_DEST, dest);
  st16(e + CT_VS, v);
  st32(e + CT_EXPIRE, now + timeout);
  st32(e + CT_TMPL, 0);
  ctHashIn(i, CT_IN);
  if (outKey) ctHashIn(i, CT_OUT);
  wheelFile(i);
  sti32(d + D_INACTIVE, ldi32(d + D_INACTIVE) + 1);
  syncActive(d);
  if (proto === 6) setState(i, state);
  return SR_IMPORTED;
}

function syncImport(n: number): number {
  if (!sized()) return -1;
  n = Math.min(n, Math.floor(SYNC_BUF_SIZE / REC_SIZE));
  const buf = base() + SYNC_BUF_OFF;
  let applied = 0;
  for (let k = 0; k < n; k++) {
    const res = importOne(buf + k * REC_SIZE);
    bump(ST_IMPORTED + res * 4);
    if (res === SR_IMPORTED || res === SR_UPDATED) applied++;
  }
  return applied;
}

/** The sync kernels' exports, as the WASM module has them. */
export interface SyncKernels {
  syncInit(): number;
  syncExport(maxRecords: number, maxSteps: number, refreshMs: number): number;
  syncImport(n: number): number;
}

export function syncTwin(memory: ArrayBuffer): SyncKernels {
  return {
    syncInit: () => { bind(memory); return syncInit(); },
    syncExport: (maxRecords, maxSteps, refreshMs) => { bind(memory); return syncExport(maxRecords, maxSteps, refreshMs); },
    syncImport: (n) => { bind(memory); return syncImport(n); },
  };
}
