// HPACK (RFC 7541): the header compression of HTTP/2. A Decoder per connection reads the peer's
// header blocks into fields, keeping its dynamic table within the size our SETTINGS allow and
// refusing (COMPRESSION_ERROR) anything malformed; an Encoder writes ours. Field names and values
// are Latin-1 strings (each byte one char), as the HTTP/1 codec keeps them.
import { latin1 } from "../http1/bytes.ts";
import { huffmanEncodeString, huffmanStringLength } from "./huffman.ts";
import { huffmanDecoder } from "./huffman-kernel.ts";

/** RFC 7541 Appendix A, index 1..61. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""], ["etag", ""],
  ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""], ["if-modified-since", ""],
  ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""], ["last-modified", ""], ["link", ""],
  ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""], ["proxy-authorization", ""], ["range", ""],
  ["referer", ""], ["refresh", ""], ["retry-after", ""], ["server", ""], ["set-cookie", ""],
  ["strict-transport-security", ""], ["transfer-encoding", ""], ["user-agent", ""], ["vary", ""], ["via", ""],
  ["www-authenticate", ""],
];

/** Each entry's size in the dynamic table: name + value + 32 octets (RFC 7541 §4.1). */
export const ENTRY_OVERHEAD = 32;

export class HpackError extends Error {}

/** A FIFO of (name, value) entries bounded by size in octets (RFC 7541 §2.3.2, §4). */
class DynamicTable {
  private names: string[] = [];
  private values: string[] = [];
  /** Entries live at [head, names.length); index 1 of the dynamic part is the newest. */
  private head = 0;
  size = 0;

  constructor(public maxSize: number) {}

  get length(): number { return this.names.length - this.head; }

  /** Entry i (0: newest). */
  name(i: number): string { return this.names[this.names.length - 1 - i]; }
  value(i: number): string { return this.values[this.values.length - 1 - i]; }

  add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.evictTo(this.maxSize - size);
    if (size > this.maxSize) return; // larger than the table: it empties, nothing is added (§4.4)
    this.names.push(name);
    this.values.push(value);
    this.size += size;
  }

  resize(maxSize: number): void {
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  private evictTo(target: number): void {
    while (this.size > target && this.length > 0) {
      this.size -= this.names[this.head].length + this.values[this.head].length + ENTRY_OVERHEAD;
      this.head++;
    }
    // Compact now and then so the arrays do not grow forever.
    if (this.head > 64 && this.head * 2 > this.names.length) {
      this.names = this.names.slice(this.head);
      this.values = this.values.slice(this.head);
      this.head = 0;
    }
  }
}

export interface DecodedBlock {
  /** Fields in order (names as sent; HTTP/2 requires them lowercase, checked by the caller). */
  fields: [string, string][];
  /** The list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (name + value + 32 each), all of it. */
  listSize: number;
  /** The list was larger than maxListSize: fields stop there, but the block was decoded to the
   * end, so the dynamic table stays in step with the peer's. */
  truncated: boolean;
}

/** Reads an integer with an N-bit prefix at buf[pos.at]; advances pos.at. Bounded to 2^31 - 1. */
export function decodeInteger(buf: Uint8Array, pos: { at: number }, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (pos.at >= buf.length) throw new HpackError("header block ends inside an integer");
  let n = buf[pos.at++] & max;
  if (n < max) return n;
  for (let shift = 0; ; shift += 7) {
    if (pos.at >= buf.length) throw new HpackError("header block ends inside an integer");
    const b = buf[pos.at++];
    n += (b & 0x7f) * 2 ** shift;
    if (n > 0x7fffffff) throw new HpackError("integer larger than 2^31 - 1");
    if ((b & 0x80) === 0) return n;
  }
}

/** Writes n with an N-bit prefix into out at `at`, OR-ing `first` (the pattern bits) into the
 * first byte; returns the end offset. */
export function encodeInteger(out: Uint8Array, at: number, n: number, prefixBits: number, first: number): number {
  const max = (1 << prefixBits) - 1;
  if (n < max) { out[at++] = first | n; return at; }
  out[at++] = first | max;
  n -= max;
  while (n >= 128) { out[at++] = (n % 128) | 0x80; n = Math.floor(n / 128); }
  out[at++] = n;
  return at;
}

export class Decoder {
  private readonly table: DynamicTable;
  private huffOut = new Uint8Array(256);

  /** maxTableSize: our SETTINGS_HEADER_TABLE_SIZE (the most a size update may ask for). */
  constructor(private readonly maxTableSize = 4096) {
    this.table = new DynamicTable(maxTableSize);
  }

  get tableSize(): number { return this.table.size; }

  /** Decodes one complete header block; throws HpackError (a COMPRESSION_ERROR). */
  decode(block: Uint8Array, maxListSize: number): DecodedBlock {
    const fields: [string, string][] = [];
    const pos = { at: 0 };
    let listSize = 0, truncated = false, fieldSeen = false;
    while (pos.at < block.length) {
      const b = block[pos.at];
      let name: string, value: string;
      if (b & 0x80) { // indexed field (§6.1)
        const index = decodeInteger(block, pos, 7);
        if (index === 0) throw new HpackError("index 0");
        name = this.nameAt(index);
        value = this.valueAt(index);
      } else if ((b & 0xe0) === 0x20) { // dynamic table size update (§6.3)
        if (fieldSeen) throw new HpackError("table size update after a field");
        const size = decodeInteger(block, pos, 5);
        if (size > this.maxTableSize) throw new HpackError(`table size update to ${size}, above the ${this.maxTableSize} allowed`);
        this.table.resize(size);
        continue;
      } else {
        const indexing = (b & 0xc0) === 0x40; // literal with incremental indexing (§6.2.1)
        const index = decodeInteger(block, pos, indexing ? 6 : 4); // without / never indexed: 4-bit prefix
        name = index === 0 ? this.readString(block, pos) : this.nameAt(index);
        value = this.readString(block, pos);
        if (indexing) this.table.add(name, value);
      }
      fieldSeen = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > maxListSize) truncated = true;
      if (!truncated) fields.push([name, value]);
    }
    return { fields, listSize, truncated };
  }

  private nameAt(index: number): string {
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1][0];
    const i = index - STATIC_TABLE.length - 1;
    if (i >= this.table.length) throw new HpackError(`index ${index} beyond the dynamic table`);
    return this.table.name(i);
  }

  private valueAt(index: number): string {
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1][1];
    return this.table.value(index - STATIC_TABLE.length - 1);
  }

  private readString(block: Uint8Array, pos: { at: number }): string {
    if (pos.at >= block.length) throw new HpackError("header block ends before a string");
    const huffman = (block[pos.at] & 0x80) !== 0;
    const len = decodeInteger(block, pos, 7);
    const start = pos.at, end = start + len;
    if (end > block.length) throw new HpackError("string longer than the header block");
    pos.at = end;
    if (!huffman) return latin1(block, start, end);
    const need = Math.ceil(len * 8 / 5);
    if (this.huffOut.length < need) this.huffOut = new Uint8Array(Math.max(need, this.huffOut.length * 2));
    const n = huffmanDecoder.decode(block, start, end, this.huffOut);
    if (n < 0) throw new HpackError("invalid Huffman string");
    return latin1(this.huffOut, 0, n);
  }
}

/** Fields an encoder never puts in the dynamic table (RFC 7541 §7.1.3: secrets, and values that
 * change per response so indexing them only evicts useful entries). */
const NEVER_INDEX = new Set(["authorization", "proxy-authorization", "set-cookie", "cookie"]);
const NOT_INDEXED = new Set([":path", "content-length", "date", "etag", "last-modified", "expires", "age", "x-request-id", "location"]);

const STATIC_EXACT = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([n, v], i) => {
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
  if (v !== "") STATIC_EXACT.set(`${n}\0${v}`, i + 1);
});

/** Writes header blocks. Its dynamic table mirrors the peer decoder's: entries are numbered by
 * insertion so an index is (newest - number) + 62. */
export class Encoder {
  private readonly exact = new Map<string, number>();
  private readonly byName = new Map<string, number>();
  private readonly entries: { key: string; name: string; size: number; seq: number }[] = [];
  private first = 0;
  private inserted = 0;
  private size = 0;
  private maxSize = 4096;
  /** A size update to announce at the start of the next block (the peer's SETTINGS changed). */
  private pendingResize = -1;
  private out = new Uint8Array(1024);

  /** The peer's SETTINGS_HEADER_TABLE_SIZE; we use at most 4096 of it. */
  setPeerTableSize(size: number): void {
    const next = Math.min(size, 4096);
    if (next === this.maxSize) return;
    this.maxSize = next;
    this.pendingResize = this.pendingResize < 0 ? next : Math.min(this.pendingResize, next);
    this.evictTo(next);
  }

  /** One header block for the fields (names lowercase). */
  encode(fields: readonly (readonly [string, string])[]): Uint8Array {
    let at = 0;
    let need = 16;
    for (const [n, v] of fields) need += n.length + v.length + 12;
    if (this.out.length < need) this.out = new Uint8Array(need * 2);
    const out = this.out;
    if (this.pendingResize >= 0) {
      if (this.pendingResize !== this.maxSize) at = encodeInteger(out, at, this.pendingResize, 5, 0x20);
      at = encodeInteger(out, at, this.maxSize, 5, 0x20);
      this.pendingResize = -1;
    }
    for (const [name, value] of fields) {
      const key = `${name}\0${value}`;
      const stat = STATIC_EXACT.get(key);
      if (stat !== undefined) { at = encodeInteger(out, at, stat, 7, 0x80); continue; }
      const seq = this.exact.get(key);
      if (seq !== undefined && seq >= this.firstSeq()) { at = encodeInteger(out, at, this.indexOf(seq), 7, 0x80); continue; }
      const nameSeq = this.byName.get(name);
      const nameIndex = STATIC_NAME.get(name) ?? (nameSeq !== undefined && nameSeq >= this.firstSeq() ? this.indexOf(nameSeq) : 0);
      if (NEVER_INDEX.has(name)) at = encodeInteger(out, at, nameIndex, 4, 0x10);
      else if (NOT_INDEXED.has(name) || name.length + value.length + ENTRY_OVERHEAD > this.maxSize / 2) at = encodeInteger(out, at, nameIndex, 4, 0x00);
      else {
        at = encodeInteger(out, at, nameIndex, 6, 0x40);
        if (nameIndex === 0) at = writeString(out, at, name);
        at = writeString(out, at, value);
        this.insert(key, name, value);
        continue;
      }
      if (nameIndex === 0) at = writeString(out, at, name);
      at = writeString(out, at, value);
    }
    return out.slice(0, at);
  }

  private firstSeq(): number { return this.inserted - (this.entries.length - this.first); }
  private indexOf(seq: number): number { return this.inserted - seq + STATIC_TABLE.length + 1; }

  private insert(key: string, name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.evictTo(this.maxSize - size);
    if (size > this.maxSize) return;
    this.inserted++;
    this.entries.push({ key, name, size, seq: this.inserted });
    this.exact.set(key, this.inserted);
    this.byName.set(name, this.inserted);
    this.size += size;
  }

  private evictTo(target: number): void {
    while (this.size > target && this.first < this.entries.length) {
      const e = this.entries[this.first++];
      this.size -= e.size;
      if (this.exact.get(e.key) === e.seq) this.exact.delete(e.key);
      if (this.byName.get(e.name) === e.seq) this.byName.delete(e.name);
    }
    if (this.first > 64 && this.first * 2 > this.entries.length) { this.entries.splice(0, this.first); this.first = 0; }
  }
}

/** A string literal (§5.2), Huffman-coded when that is shorter. */
function writeString(out: Uint8Array, at: number, s: string): number {
  const hlen = huffmanStringLength(s);
  if (hlen < s.length) {
    at = encodeInteger(out, at, hlen, 7, 0x80);
    return huffmanEncodeString(s, out, at);
  }
  at = encodeInteger(out, at, s.length, 7, 0x00);
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i) & 0xff;
  return at;
}
