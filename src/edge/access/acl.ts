// allow / deny by CIDR (nginx's access module, with its order-dependence replaced by longest
// prefix): the longest prefix holding the client address decides; an address no prefix holds is
// denied when the rules have an allow list, allowed otherwise. Read per listener (HTTP, tcp, udp)
// and per route; looked up in the data plane's LPM tables (src/core/lpm.ts), one per family.
import { readFileSync } from "node:fs";
import { type Checker, type Mapping, oneOrMany, type PathSegment, type Read, string, valueOf } from "../../config/checker.ts";
import { formatIP, parseIPv4, parseIPv6 } from "../../vrrp/ip.ts";
import type { DataPlane } from "../../core/dataplane.ts";
import { flatten, type LpmImpl, type LpmPrefix, LpmTable } from "../../core/lpm.ts";

export const ACCESS_KEYS = ["allow", "deny", "allow_file", "deny_file"] as const;

const ALLOW = 1, DENY = 2;
/** Verdicts an access list remembers (a few hundred KB at most). */
const RECENT_ADDRESSES = 4096;
/** Errors reported from one prefix file before the rest is summed up in one line. */
const FILE_ERRORS_SHOWN = 5;

export interface Cidr {
  bytes: Uint8Array; // 4 or 16
  length: number;
}

/** A listener's or a route's rules as the config gives them. */
export interface AccessRules {
  allow: Cidr[];
  deny: Cidr[];
}

/** "10.0.0.0/8", "2001:db8::/32", a bare address (/32, /128), or "all" (both families' /0). */
export function parseCidr(text: string): Cidr[] | string {
  if (text === "all") return [{ bytes: new Uint8Array(4), length: 0 }, { bytes: new Uint8Array(16), length: 0 }];
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIPv4(addr) ?? parseIPv6(addr);
  if (bytes === null) return "expected an IPv4 or IPv6 prefix like 10.0.0.0/8 or 2001:db8::/32, or all";
  const bits = bytes.length * 8;
  const lengthText = slash < 0 ? String(bits) : text.slice(slash + 1);
  const length = /^\d{1,3}$/.test(lengthText) ? Number(lengthText) : -1;
  if (length < 0 || length > bits) return `expected a prefix length 0..${bits} after "/"`;
  const masked = bytes.slice();
  for (let bit = length; bit < bits; bit++) masked[bit >> 3] &= ~(0x80 >> (bit & 7));
  if (masked.some((b, i) => b !== bytes[i])) return `expected no address bits set past the prefix length (${formatIP(masked)}/${length}?)`;
  return [{ bytes, length }];
}

const cidrs: Read<Cidr[]> = (c, value, path) => {
  const parsed = typeof value === "string" ? parseCidr(value.trim()) : "expected an IPv4 or IPv6 prefix string";
  if (typeof parsed === "string") return c.fail(path, `${parsed}, got ${JSON.stringify(value)}`);
  return parsed;
};

/** One prefix per line; blank lines and "#" comments are skipped. Errors name the file's line. */
function readPrefixFile(c: Checker, path: PathSegment[], file: string): Cidr[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    c.fail(path, `cannot read prefix file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return [];
  }
  const out: Cidr[] = [];
  let errors = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const parsed = parseCidr(line);
    if (typeof parsed !== "string") { out.push(...parsed); return; }
    if (++errors <= FILE_ERRORS_SHOWN) c.fail(path, `${file} line ${i + 1}: ${parsed}, got ${JSON.stringify(line)}`);
  });
  if (errors > FILE_ERRORS_SHOWN) c.fail(path, `${file}: ${errors - FILE_ERRORS_SHOWN} more bad lines`);
  return out;
}

function key(p: Cidr): string {
  return `${formatIP(p.bytes)}/${p.length}`;
}

/** The rules in mapping m (a listener or a route), or null when it has none. */
export function readAccessRules(c: Checker, m: Mapping, p: PathSegment[]): AccessRules | null {
  if (ACCESS_KEYS.every((k) => valueOf(m, k) === undefined)) return null;
  const list = (k: "allow" | "deny") => c.optional(m, p, k, oneOrMany("prefixes", cidrs), [] as Cidr[][]).flat();
  const file = (k: "allow_file" | "deny_file") => {
    const name = c.optional(m, p, k, string("a file path"), null);
    return name === null ? [] : readPrefixFile(c, [...p, k], name);
  };
  const allow = [...list("allow"), ...file("allow_file")];
  const deny = [...list("deny"), ...file("deny_file")];
  // With the longest prefix deciding, one prefix both allowed and denied has no meaning.
  const allowed = new Set(allow.map(key));
  const both = deny.filter((d) => allowed.has(key(d))).map(key);
  if (both.length > 0) {
    const shown = both.slice(0, 3).join(", ") + (both.length > 3 ? ` and ${both.length - 3} more` : "");
    c.fail([...p, valueOf(m, "deny") !== undefined ? "deny" : "deny_file"], `expected each prefix in allow or deny, not both: ${shown}`);
  }
  return { allow, deny };
}

/** Which lookup kernel access lists use: WASM, faster in bench/lpm.bench.ts ("Access rules" in
 * bench/RESULTS.md). */
export const ACCESS_LPM_IMPL: LpmImpl = "wasm";

/** The rules compiled into the data plane's LPM tables. */
export class AccessList {
  private readonly v4: LpmTable | null;
  private readonly v6: LpmTable | null;
  /** What an address no prefix holds gets. */
  private readonly fallback: boolean;

  constructor(dp: DataPlane, rules: AccessRules, impl: LpmImpl = ACCESS_LPM_IMPL) {
    const prefixes = (size: number): LpmPrefix[] => [
      ...rules.allow.filter((r) => r.bytes.length === size).map((r) => ({ ...r, value: ALLOW })),
      ...rules.deny.filter((r) => r.bytes.length === size).map((r) => ({ ...r, value: DENY })),
    ];
    const p4 = prefixes(4), p6 = prefixes(16);
    this.v4 = p4.length > 0 ? new LpmTable(dp, flatten(p4, 1), impl) : null;
    this.v6 = p6.length > 0 ? new LpmTable(dp, flatten(p6, 4), impl) : null;
    this.fallback = rules.allow.length === 0;
  }

  /** Verdicts of addresses seen lately: a client's next requests skip parsing its address
   * (IPv6 text costs microseconds to parse). Bounded: emptied when full. */
  private readonly recent = new Map<string, boolean>();
  private readonly words = new Uint32Array(4);

  /** Whether the client at `address` (as the socket or a PROXY header gives it) may come in. An
   * address that does not parse is refused. */
  permits(address: string): boolean {
    const known = this.recent.get(address);
    if (known !== undefined) return known;
    const verdict = this.decide(address);
    if (this.recent.size >= RECENT_ADDRESSES) this.recent.clear();
    this.recent.set(address, verdict);
    return verdict;
  }

  /** The verdict from the tables, without the cache. */
  decide(address: string): boolean {
    const v4 = ipv4Word(address);
    let value: number;
    if (v4 >= 0) value = this.v4 ? this.v4.lookup4(v4) : 0;
    else {
      const w = this.words;
      if (!ipv6Words(address, w)) return false;
      // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d: its IPv4 rules apply.
      if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) value = this.v4 ? this.v4.lookup4(w[3]) : 0;
      else value = this.v6 ? this.v6.lookup6(w[0], w[1], w[2], w[3]) : 0;
    }
    return value === 0 ? this.fallback : value === ALLOW;
  }

  release(): void {
    this.v4?.release();
    this.v6?.release();
  }
}

// The client address parsers of the request path: one pass, no allocation (src/vrrp/ip.ts's
// parsers, which the config uses, build arrays and cost microseconds an address). The unit test
// holds them to the same answers.

/** The 32 bits of a dotted-quad IPv4 address (unsigned), or -1: a plain loop, no allocation. */
export function ipv4Word(s: string): number {
  let word = 0, part = 0, digits = 0, dots = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch === 46) {
      if (digits === 0 || dots === 3) return -1;
      word = word * 256 + part;
      part = 0; digits = 0; dots++;
    } else if (ch >= 48 && ch <= 57 && digits < 3 && !(digits === 1 && part === 0)) {
      part = part * 10 + ch - 48;
      if (part > 255) return -1;
      digits++;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return word * 256 + part;
}

function hexValue(ch: number): number {
  if (ch >= 48 && ch <= 57) return ch - 48;
  if (ch >= 97 && ch <= 102) return ch - 87;
  if (ch >= 65 && ch <= 70) return ch - 55;
  return -1;
}

const scratchGroups = new Uint16Array(8);

/** An IPv6 address's four 32-bit words (most significant first) into `out`; false when the text
 * is no IPv6 address. A zone ("%eth0") is ignored; a dotted-quad tail is read. */
export function ipv6Words(s: string, out: Uint32Array): boolean {
  const g = scratchGroups;
  let len = s.indexOf("%");
  if (len < 0) len = s.length;
  let n = 0, gap = -1, i = 0;
  if (len >= 2 && s.charCodeAt(0) === 58 && s.charCodeAt(1) === 58) { gap = 0; i = 2; }
  else if (len === 0 || s.charCodeAt(0) === 58) return false;
  while (i < len) {
    const start = i;
    let v = 0, digits = 0;
    for (; i < len; i++) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      v = v * 16 + h;
      digits++;
    }
    if (i < len && s.charCodeAt(i) === 46) { // a dotted-quad tail: the last 32 bits
      const v4 = n <= 6 ? ipv4Word(s.slice(start, len)) : -1; // rare: a copy is fine
      if (v4 < 0) return false;
      g[n++] = v4 >>> 16;
      g[n++] = v4 & 0xffff;
      i = len;
      break;
    }
    if (digits === 0 || digits > 4 || n === 8) return false;
    g[n++] = v;
    if (i === len) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < len && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === len) return false; // a lone trailing ":"
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  if (gap >= 0) { // "::" stands for the zero groups that make eight
    const tail = n - gap;
    for (let k = 0; k < tail; k++) g[7 - k] = g[n - 1 - k];
    for (let k = gap; k < 8 - tail; k++) g[k] = 0;
  }
  for (let k = 0; k < 4; k++) out[k] = ((g[2 * k] << 16) | g[2 * k + 1]) >>> 0;
  return true;
}
