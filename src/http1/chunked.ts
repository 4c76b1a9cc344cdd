// An incremental reader of chunked message bodies (RFC 9112 §7.1). It finds where the body
// ends, so a keep-alive or pipelined connection knows where the next message starts, and it
// rejects anything malformed at the first byte that breaks the grammar, so a caller that
// forwards what it has read never passes on a byte of a bad line; the bytes themselves pass
// through unchanged.
//
// Chunk extensions are read to the grammar of §7.1.1 (`;name`, `;name=token`,
// `;name="quoted"`, BWS around `;` and `=`) and passed on. Trailer fields are read by the rules
// the head scan applies to header fields (token name, colon right after it, field-value bytes,
// CRLF only, no obs-fold), bounded in size and count. Valid trailers are forwarded, not dropped:
// they are then exactly what was validated, and keeping them needs no rewriting of a body that
// streams through in the pieces it arrived in.
import { fieldValueByte, TCHAR } from "./head-scan.ts";

const enum S {
  Size, ExtSemi, ExtNameStart, ExtName, ExtAfterName, ExtValueStart, ExtToken, ExtQuoted, ExtQuotedPair,
  ExtAfterQuoted, SizeLf, Data, DataCr, DataLf, TrailerLine, TrailerName, TrailerValue, TrailerLf, LastLf, Done,
}

export interface ChunkedLimits {
  /** Bytes of extensions on one chunk line (after the size, up to its CR). */
  maxExtensionBytes?: number;
  /** Bytes of the trailer section, through its final CRLF. */
  maxTrailerBytes?: number;
  /** Fields in the trailer section. */
  maxTrailerFields?: number;
  /** Keep the trailer section's bytes so `trailers()` can give its fields (a reader that turns
   * the body into another framing, as HTTP/2 does, needs them; a pass-through reader does not). */
  keepTrailers?: boolean;
}

export const CHUNKED_DEFAULTS: Required<ChunkedLimits> = { maxExtensionBytes: 4096, maxTrailerBytes: 64 * 1024, maxTrailerFields: 100, keepTrailers: false };

/** Receives the chunk data (without framing) as it is read: buf[start, end). */
export type ChunkData = (buf: Uint8Array, start: number, end: number) => void;

// A chunk size stays below 2^52 so that the number is exact (16 digits allow leading zeros).
const MAX_SIZE_DIGITS = 16;
const SIZE_SHIFT_LIMIT = 2 ** 48;

export class ChunkedReader {
  private state = S.Size;
  private size = 0;
  private sizeDigits = 0;
  private remaining = 0;
  private extensionBytes = 0;
  private trailerBytes = 0;
  private trailerFields = 0;
  private readonly maxExtensionBytes: number;
  private readonly maxTrailerBytes: number;
  private readonly maxTrailerFields: number;
  /** The trailer section as read (bounded by maxTrailerBytes), when kept. */
  private readonly kept: number[] | null;
  /** Total chunk-data bytes seen (for body size limits). */
  dataBytes = 0;
  error: string | null = null;

  constructor(limits: ChunkedLimits = {}, private readonly onData: ChunkData | null = null) {
    this.maxExtensionBytes = limits.maxExtensionBytes ?? CHUNKED_DEFAULTS.maxExtensionBytes;
    this.maxTrailerBytes = limits.maxTrailerBytes ?? CHUNKED_DEFAULTS.maxTrailerBytes;
    this.maxTrailerFields = limits.maxTrailerFields ?? CHUNKED_DEFAULTS.maxTrailerFields;
    this.kept = limits.keepTrailers ? [] : null;
  }

  /** The trailer fields, names lowercased and values without surrounding whitespace (empty unless
   * `keepTrailers`; complete once `done`). They passed the grammar checks as they were read. */
  trailers(): [string, string][] {
    const fields: [string, string][] = [];
    if (this.kept === null) return fields;
    let line = "";
    for (const b of this.kept) {
      if (b === 0x0a) {
        const colon = line.indexOf(":");
        if (colon > 0) fields.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).replace(/^[ \t]+|[ \t\r]+$/g, "")]);
        line = "";
      } else line += String.fromCharCode(b);
    }
    return fields;
  }

  get done(): boolean {
    return this.state === S.Done;
  }

  /** Reads buf[start, end); returns how many bytes belong to this body (all of them unless it
   * ended inside), or -1 on a framing error (see `error`). */
  feed(buf: Uint8Array, start: number, end: number): number {
    // The bytes of a plain chunk line and of the CRLF after its data are taken here; the rest
    // (extensions, trailers, every error) go through step() a byte at a time with their bounds.
    let i = start, state = this.state;
    while (i < end) {
      if (state === S.Data) {
        const take = Math.min(this.remaining, end - i);
        if (this.onData !== null) this.onData(buf, i, i + take);
        this.remaining -= take;
        this.dataBytes += take;
        i += take;
        if (this.remaining === 0) state = S.DataCr;
        continue;
      }
      if (state === S.Done) break;
      const b = buf[i];
      if (state === S.Size) {
        const d = hexValue(b);
        if (d >= 0 && this.sizeDigits < MAX_SIZE_DIGITS && this.size < SIZE_SHIFT_LIMIT) {
          this.size = this.size * 16 + d;
          this.sizeDigits++;
          i++;
          continue;
        }
        if (b === 0x0d && this.sizeDigits > 0) { state = S.SizeLf; i++; continue; }
      } else if (state === S.SizeLf) {
        if (b === 0x0a) {
          if (this.size === 0) state = S.TrailerLine;
          else { state = S.Data; this.remaining = this.size; }
          i++;
          continue;
        }
      } else if (state === S.DataCr) {
        if (b === 0x0d) { state = S.DataLf; i++; continue; }
      } else if (state === S.DataLf && b === 0x0a) {
        state = S.Size;
        this.size = this.sizeDigits = 0;
        i++;
        continue;
      }
      if (state >= S.ExtSemi && state <= S.ExtAfterQuoted && b !== 0x0d && ++this.extensionBytes > this.maxExtensionBytes) {
        return this.fail(`chunk extensions longer than ${this.maxExtensionBytes} bytes`);
      }
      if ((state === S.ExtName || state === S.ExtToken) && TCHAR[b] === 1) { i++; continue; } // the bulk of a name or value
      if (state >= S.TrailerLine && ++this.trailerBytes > this.maxTrailerBytes) {
        return this.fail(`trailer section larger than ${this.maxTrailerBytes} bytes`);
      }
      if (state >= S.TrailerLine && this.kept !== null) this.kept.push(b);
      this.state = state;
      const why = this.step(state, b);
      if (why !== null) return this.fail(why);
      state = this.state;
      i++;
    }
    this.state = state;
    return i - start;
  }

  /** One byte that feed() did not take: moves the state on, or says what is wrong. */
  private step(state: S, b: number): string | null {
    switch (state) {
      // A plain chunk line and the CRLF after data are feed()'s: here only what else may come.
      case S.Size:
        if (hexValue(b) >= 0) return "chunk size too large";
        if (this.sizeDigits === 0) return "chunk size is not hexadecimal";
        if (b === 0x3b || b === 0x20 || b === 0x09) { // ; or BWS: extensions follow
          this.state = b === 0x3b ? S.ExtNameStart : S.ExtSemi;
          this.extensionBytes = 1;
          return null;
        }
        return "invalid character after the chunk size";
      case S.SizeLf:
        return "bare CR in a chunk line";
      case S.DataCr:
        return "chunk data longer than its size";
      case S.DataLf:
        return "bare CR after chunk data";
      case S.ExtSemi: // BWS that only a ";" may follow
        if (b === 0x3b) this.state = S.ExtNameStart;
        else if (b !== 0x20 && b !== 0x09) return b === 0x0d ? "whitespace at the end of a chunk line" : "invalid character in a chunk extension";
        return null;
      case S.ExtNameStart:
        if (TCHAR[b] === 1) this.state = S.ExtName;
        else if (b !== 0x20 && b !== 0x09) return "chunk extension without a name";
        return null;
      case S.ExtName: // (its token characters are feed()'s)
        if (b === 0x3d) this.state = S.ExtValueStart; // =
        else if (b === 0x20 || b === 0x09) this.state = S.ExtAfterName;
        else return this.afterExtension(b);
        return null;
      case S.ExtAfterName:
        if (b === 0x3d) this.state = S.ExtValueStart;
        else if (b === 0x3b) this.state = S.ExtNameStart;
        else if (b !== 0x20 && b !== 0x09) return "invalid character in a chunk extension";
        return null;
      case S.ExtValueStart:
        if (TCHAR[b] === 1) this.state = S.ExtToken;
        else if (b === 0x22) this.state = S.ExtQuoted; // "
        else if (b !== 0x20 && b !== 0x09) return "chunk extension without a value after =";
        return null;
      case S.ExtToken: // likewise
      case S.ExtAfterQuoted:
        return this.afterExtension(b);
      case S.ExtQuoted:
        if (b === 0x22) this.state = S.ExtAfterQuoted;
        else if (b === 0x5c) this.state = S.ExtQuotedPair; // backslash
        else if (!fieldValueByte(b)) return b === 0x0d ? "unterminated quoted string in a chunk extension" : "invalid character in a chunk extension";
        return null;
      case S.ExtQuotedPair:
        if (!fieldValueByte(b)) return "invalid character in a chunk extension";
        this.state = S.ExtQuoted;
        return null;
      // The trailer section: field lines until an empty one, as the head scan reads them.
      case S.TrailerLine:
        if (b === 0x0d) this.state = S.LastLf;
        else if (TCHAR[b] === 1) this.state = S.TrailerName;
        else if (b === 0x20 || b === 0x09) return "obsolete line folding in the trailers";
        else if (b === 0x0a) return "bare LF in the trailers";
        else return "invalid character in a trailer field name";
        return null;
      case S.TrailerName:
        if (TCHAR[b] === 1) return null;
        if (b === 0x3a) { this.state = S.TrailerValue; return null; } // :
        if (b === 0x20 || b === 0x09) return "whitespace before the colon in a trailer field";
        if (b === 0x0d) return "trailer line without a colon";
        if (b === 0x0a) return "bare LF in the trailers";
        return "invalid character in a trailer field name";
      case S.TrailerValue:
        if (b === 0x0d) this.state = S.TrailerLf;
        else if (!fieldValueByte(b)) return b === 0x0a ? "bare LF in the trailers" : "invalid character in a trailer field value";
        return null;
      case S.TrailerLf:
        if (b !== 0x0a) return "bare CR in the trailers";
        if (++this.trailerFields > this.maxTrailerFields) return `more than ${this.maxTrailerFields} trailer fields`;
        this.state = S.TrailerLine;
        return null;
      case S.LastLf:
        if (b !== 0x0a) return "bare CR at the end of the trailers";
        this.state = S.Done;
        return null;
    }
    return null;
  }

  /** After an extension's name or value: another extension, the line's end, or BWS before ";". */
  private afterExtension(b: number): string | null {
    if (b === 0x3b) this.state = S.ExtNameStart;
    else if (b === 0x0d) this.state = S.SizeLf;
    else if (b === 0x20 || b === 0x09) this.state = S.ExtSemi;
    else return "invalid character in a chunk extension";
    return null;
  }

  private fail(reason: string): number {
    this.error = reason;
    return -1;
  }
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -1;
}
