// IPv4/IPv6 addresses as text and as the bytes that go on the wire and into netlink messages.
// Pure: used by the codec, the config section and the address manager alike.

export type Family = 4 | 6;

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The 4 bytes of a dotted-quad IPv4 address, or null. */
export function parseIPv4(text: string): Uint8Array | null {
  const m = IPV4.exec(text);
  if (m === null) return null;
  const bytes = m.slice(1).map(Number);
  if (bytes.some((b, i) => b > 255 || (m[i + 1].length > 1 && m[i + 1].startsWith("0")))) return null;
  return Uint8Array.from(bytes);
}

/** The 16 bytes of an IPv6 address (with at most one "::", optionally ending in a dotted quad), or null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (const [i, piece] of pieces.entries()) {
      if (piece.includes(".")) {
        const v4 = i === pieces.length - 1 ? parseIPv4(piece) : null;
        if (v4 === null) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(piece)) return null;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1 && head.length !== 8) return null;
  if (halves.length === 2 && head.length + tail.length > 7) return null;
  const groups = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => { bytes[2 * i] = g >> 8; bytes[2 * i + 1] = g & 0xff; });
  return bytes;
}

export function parseIP(text: string): { family: Family; bytes: Uint8Array } | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { family: 4, bytes: v4 };
  const v6 = parseIPv6(text);
  return v6 === null ? null : { family: 6, bytes: v6 };
}

/** Text for 4 or 16 address bytes; IPv6 in the RFC 5952 form (lowercase, longest zero run as "::"). */
export function formatIP(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1, bestLength = 1; // a single zero group is not shortened
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** Compares addresses as unsigned big-endian numbers (the VRRP tie-break on equal priority). */
export function compareAddresses(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareAddresses(a, b) === 0;
}

export function isIPv6LinkLocal(bytes: Uint8Array): boolean {
  return bytes.length === 16 && bytes[0] === 0xfe && (bytes[1] & 0xc0) === 0x80;
}
