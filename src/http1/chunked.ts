// An incremental reader of chunked message bodies (RFC 9112 §7.1). It finds where the body
// ends, so a keep-alive or pipelined connection knows where the next message starts, and it
// rejects anything malformed; the bytes themselves pass through unchanged.

const enum S { Size, Ext, SizeLf, Data, DataCr, DataLf, Trailer, TrailerLf, LastLf, Done }

// tchar, plus what chunk extensions may hold: ";", "=", quoted strings, whitespace.
function extByte(b: number): boolean {
  return b === 0x09 || (b >= 0x20 && b !== 0x7f);
}

export class ChunkedReader {
  private state = S.Size;
  private size = 0;
  private sizeDigits = 0;
  private remaining = 0;
  private trailerLineLength = 0;
  /** Total chunk-data bytes seen (for body size limits). */
  dataBytes = 0;
  error: string | null = null;

  get done(): boolean {
    return this.state === S.Done;
  }

  /** Reads buf[start, end); returns how many bytes belong to this body (all of them unless it
   * ended inside), or -1 on a framing error (see `error`). */
  feed(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    while (i < end && this.state !== S.Done) {
      const b = buf[i];
      switch (this.state) {
        case S.Size: {
          const d = hexValue(b);
          if (d >= 0) {
            if (++this.sizeDigits > 15) return this.fail("chunk size too large");
            this.size = this.size * 16 + d;
          } else if (this.sizeDigits === 0) return this.fail("chunk size is not hexadecimal");
          else if (b === 0x3b) this.state = S.Ext; // ;
          else if (b === 0x0d) this.state = S.SizeLf;
          else return this.fail("invalid character after the chunk size");
          i++;
          break;
        }
        case S.Ext:
          if (b === 0x0d) this.state = S.SizeLf;
          else if (!extByte(b)) return this.fail("invalid character in a chunk extension");
          i++;
          break;
        case S.SizeLf:
          if (b !== 0x0a) return this.fail("bare CR in a chunk header");
          i++;
          if (this.size === 0) { this.state = S.Trailer; this.trailerLineLength = 0; }
          else { this.state = S.Data; this.remaining = this.size; }
          break;
        case S.Data: {
          const take = Math.min(this.remaining, end - i);
          this.remaining -= take;
          this.dataBytes += take;
          i += take;
          if (this.remaining === 0) this.state = S.DataCr;
          break;
        }
        case S.DataCr:
          if (b !== 0x0d) return this.fail("chunk data longer than its size");
          this.state = S.DataLf;
          i++;
          break;
        case S.DataLf:
          if (b !== 0x0a) return this.fail("bare CR after chunk data");
          this.state = S.Size;
          this.size = this.sizeDigits = 0;
          i++;
          break;
        case S.Trailer:
          // Trailer fields until an empty line.
          if (b === 0x0d) this.state = this.trailerLineLength === 0 ? S.LastLf : S.TrailerLf;
          else if (b === 0x0a || (b < 0x20 && b !== 0x09) || b === 0x7f) return this.fail("invalid character in a trailer");
          else this.trailerLineLength++;
          i++;
          break;
        case S.TrailerLf:
          if (b !== 0x0a) return this.fail("bare CR in a trailer");
          this.state = S.Trailer;
          this.trailerLineLength = 0;
          i++;
          break;
        case S.LastLf:
          if (b !== 0x0a) return this.fail("bare CR at the end of the body");
          this.state = S.Done;
          i++;
          break;
      }
    }
    return i - start;
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
