// Connection sync between directors (wasm/assembly/director-sync.ts, src/l4/director/sync/):
// a region past the connection table's entries, sized by the control plane only when sync is
// configured, and the wire record one connection travels in. Valid AssemblyScript and
// TypeScript, as layout.ts. Byte offsets from the region's base (DG_ENTRIES + DG_CAP * CT_SIZE).
export const SYNC_STATS_OFF = 0; // u32 each, below
export const ST_CURSOR = 0; // next entry the export walk looks at
export const ST_EXPORTED = 4; // records written for the peer
export const ST_IMPORTED = 8; // records that made a new entry
export const ST_UPDATED = 12; // records that refreshed an entry (state, expiry)
export const ST_REJ_MALFORMED = 16; // a field out of range (protocol, state, flags, address, port)
export const ST_REJ_NO_SERVICE = 20; // no virtual server here for its VIP:port
export const ST_REJ_NO_SERVER = 24; // its real server is not in this node's pool
export const ST_REJ_NO_LADDR = 28; // fullnat: its local address is not one of this node's
export const ST_REJ_TABLE_FULL = 32; // no entry could be freed
export const ST_REJ_CONFLICT = 36; // its client key is another connection's server-side key
export const ST_READY = 60; // 1 once syncInit cleared the region (a reload's next daemon keeps it)
export const SYNC_STATS_SIZE = 64;
// Records in (import) or out (export) of one call.
export const SYNC_BUF_OFF = 64;
export const SYNC_BUF_SIZE = 65536;
// Per entry: what was last sent for it, one u32: bits 0-3 its state, bit 4 always set (a
// cleared shadow never matches), bits 5-11 a fingerprint of its tuple (a reused entry differs),
// bits 12-31 its expiry then in SHADOW_UNIT_SHIFT units (read modulo 2^20: about 3 days).
export const SYNC_SHADOW_OFF = SYNC_BUF_OFF + SYNC_BUF_SIZE;
export const SYNC_SHADOW_STRIDE = 4;
export const SHADOW_UNIT_SHIFT = 8; // 256 ms
export const SHADOW_ID_MASK = 0xfff;
// One connection on the wire (every multi-byte field in network order).
export const REC_SIZE = 80;
export const REC_PROTO = 0; // u8: 6 or 17
export const REC_STATE = 1; // u8: CT_S_* (TCP: ESTABLISHED..SYNACK; UDP: CT_S_UDP)
export const REC_FLAGS = 2; // u8: RECF_*
export const REC_RESERVED = 3; // u8: 0
export const REC_TIMEOUT = 4; // u32 ms until it expires on the sender
export const REC_CADDR = 8; // 16 each: client, virtual, local (fullnat; the client's otherwise), server
export const REC_VADDR = 24;
export const REC_LADDR = 40;
export const REC_DADDR = 56;
export const REC_CPORT = 72; // u16 each
export const REC_VPORT = 74;
export const REC_LPORT = 76;
export const REC_DPORT = 78;
export const RECF_V6 = 1;
export const RECF_KNOWN = 1; // every flag bit a record may carry
// Import results, one per record, each counted at ST_IMPORTED + result * 4.
export const SR_IMPORTED = 0;
export const SR_UPDATED = 1;
export const SR_MALFORMED = 2;
export const SR_NO_SERVICE = 3;
export const SR_NO_SERVER = 4;
export const SR_NO_LADDR = 5;
export const SR_TABLE_FULL = 6;
export const SR_CONFLICT = 7;
