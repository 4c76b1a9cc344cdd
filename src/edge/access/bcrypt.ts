// bcrypt (Provos and Mazières, "A Future-Adaptable Password Scheme", 1999): EksBlowfish's costly
// key setup, then "OrpheanBeholderScryDoubt" encrypted 64 times. Written from the paper and
// Blowfish's description (Schneier, 1993). Blowfish's initial P-array and S-boxes are the
// fractional hex digits of pi, computed here once (Machin's formula in BigInt) rather than pasted.
// The cost loop yields to the event loop every few rounds (bcryptVerify), so checking a password
// never holds other connections up for long.
import { setImmediate } from "node:timers";

const BLOWFISH_WORDS = 18 + 4 * 256;
/** Rounds of the cost loop between yields: at cost 5 a check is 32 rounds, about 1-2 ms. */
const ROUNDS_PER_SLICE = 8;
const ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const MAGIC = "OrpheanBeholderScryDoubt";

let piWords: Uint32Array | null = null;

/** The first 1042 32-bit words of pi's fractional part: P[0..17] then S0..S3 (P[0] = 0x243f6a88). */
export function blowfishInitialState(): Uint32Array {
  if (piWords) return piWords;
  const guard = 64n;
  const bits = BigInt(BLOWFISH_WORDS * 32) + guard;
  const one = 1n << bits;
  // atan(1/x) = 1/x - 1/(3x^3) + 1/(5x^5) - ...
  const atanInverse = (x: bigint): bigint => {
    let sum = 0n, power = one / x, n = 1n, positive = true;
    const x2 = x * x;
    while (power > 0n) {
      sum += positive ? power / n : -(power / n);
      power /= x2;
      n += 2n;
      positive = !positive;
    }
    return sum;
  };
  const pi = 16n * atanInverse(5n) - 4n * atanInverse(239n); // Machin: pi/4 = 4 atan(1/5) - atan(1/239)
  const fraction = (pi - 3n * one) >> guard;
  const words = new Uint32Array(BLOWFISH_WORDS);
  for (let i = 0; i < BLOWFISH_WORDS; i++) {
    words[i] = Number((fraction >> BigInt((BLOWFISH_WORDS - 1 - i) * 32)) & 0xffffffffn);
  }
  piWords = words;
  return words;
}

/** Blowfish state: P at 0..17, S-box k at 18 + 256k. */
class Blowfish {
  readonly s: Uint32Array;
  l = 0;
  r = 0;

  constructor() {
    this.s = blowfishInitialState().slice();
  }

  /** Encrypts the block (l, r) in place. */
  encrypt(): void {
    const s = this.s;
    let l = this.l, r = this.r;
    for (let i = 0; i < 16; i += 2) {
      l ^= s[i];
      r ^= ((((s[18 + (l >>> 24)] + s[274 + ((l >>> 16) & 255)]) ^ s[530 + ((l >>> 8) & 255)]) + s[786 + (l & 255)]) | 0);
      r ^= s[i + 1];
      l ^= ((((s[18 + (r >>> 24)] + s[274 + ((r >>> 16) & 255)]) ^ s[530 + ((r >>> 8) & 255)]) + s[786 + (r & 255)]) | 0);
    }
    l ^= s[16];
    r ^= s[17];
    this.l = r >>> 0;
    this.r = l >>> 0;
  }

  /** EksBlowfish's ExpandKey: P xor the key's 18 words, then the whole state re-encrypted with
   * (salt words, cycling) xored into the chained block; no salt is Blowfish's own key schedule. */
  expand(keyWords: Uint32Array, salt: Uint32Array | null): void {
    const s = this.s;
    for (let i = 0; i < 18; i++) s[i] ^= keyWords[i];
    this.l = 0;
    this.r = 0;
    let k = 0;
    for (let i = 0; i < BLOWFISH_WORDS; i += 2) {
      if (salt) { this.l ^= salt[k & 3]; this.r ^= salt[(k + 1) & 3]; k += 2; }
      this.encrypt();
      s[i] = this.l;
      s[i + 1] = this.r;
    }
  }
}

/** 18 big-endian words of `bytes` repeated (Blowfish's key stream). */
function streamWords(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(18);
  let j = 0;
  for (let i = 0; i < 18; i++) {
    let w = 0;
    for (let b = 0; b < 4; b++) { w = (w << 8) | bytes[j]; j = (j + 1) % bytes.length; }
    out[i] = w >>> 0;
  }
  return out;
}

export function encodeBase64(bytes: Uint8Array, chars: number): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const b0 = bytes[i], b1 = bytes[i + 1] ?? 0, b2 = bytes[i + 2] ?? 0;
    out += ALPHABET[b0 >> 2] + ALPHABET[((b0 & 3) << 4) | (b1 >> 4)] + ALPHABET[((b1 & 15) << 2) | (b2 >> 6)] + ALPHABET[b2 & 63];
  }
  return out.slice(0, chars);
}

/** bcrypt's base64 (its own alphabet, no padding) into `n` bytes, or null. */
export function decodeBase64(text: string, n: number): Uint8Array | null {
  const out = new Uint8Array(n);
  let acc = 0, bits = 0, k = 0;
  for (const ch of text) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) { bits -= 8; if (k < n) out[k++] = (acc >> bits) & 255; }
  }
  return k === n ? out : null;
}

export interface BcryptHash {
  /** "2a", "2b" or "2y": the same computation for passwords of at most 72 bytes. */
  version: string;
  cost: number;
  salt: Uint8Array;
  /** The 31 characters after the salt. */
  digest: string;
}

const BCRYPT_FORM = /^\$(2[aby])\$(\d\d)\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/;

/** Reads "$2y$05$<22 salt><31 digest>", or says what is wrong with it. */
export function parseBcrypt(text: string): BcryptHash | string {
  const m = BCRYPT_FORM.exec(text);
  if (m === null) return "expected a bcrypt hash of the form $2y$NN$ followed by 53 characters";
  const cost = Number(m[2]);
  if (cost < 4 || cost > 31) return `expected a bcrypt cost 04..31, got ${m[2]}`;
  const salt = decodeBase64(m[3], 16);
  if (salt === null) return "expected a bcrypt salt of 22 characters";
  return { version: m[1], cost, salt, digest: m[4] };
}

/** The cost loop as steps: each yields after ROUNDS_PER_SLICE rounds; returns the 31-char digest. */
function* eksBlowfish(password: string, cost: number, salt: Uint8Array): Generator<void, string> {
  const utf8 = new TextEncoder().encode(password);
  // The key is the password with its NUL terminator, 72 bytes at most (more are ignored).
  const key = new Uint8Array(Math.min(utf8.length + 1, 72));
  key.set(utf8.subarray(0, key.length - (utf8.length + 1 > 72 ? 0 : 1)));
  const keyWords = streamWords(key);
  const saltWords = streamWords(salt);
  const bf = new Blowfish();
  bf.expand(keyWords, saltWords.subarray(0, 4));
  const rounds = 2 ** cost;
  for (let i = 0; i < rounds; i++) {
    bf.expand(keyWords, null);
    bf.expand(saltWords, null);
    if ((i + 1) % ROUNDS_PER_SLICE === 0 && i + 1 < rounds) yield;
  }
  const text = streamWords(new TextEncoder().encode(MAGIC)).subarray(0, 6).slice();
  for (let i = 0; i < 64; i++) {
    for (let b = 0; b < 6; b += 2) {
      bf.l = text[b];
      bf.r = text[b + 1];
      bf.encrypt();
      text[b] = bf.l;
      text[b + 1] = bf.r;
    }
  }
  const bytes = new Uint8Array(24);
  for (let i = 0; i < 6; i++) new DataView(bytes.buffer).setUint32(i * 4, text[i]);
  return encodeBase64(bytes.subarray(0, 23), 31);
}

/** The full hash string, computed at once (tests, and tools that make hashes). */
export function bcryptHash(password: string, cost: number, salt: Uint8Array, version = "2y"): string {
  const steps = eksBlowfish(password, cost, salt);
  let step = steps.next();
  while (!step.done) step = steps.next();
  return `$${version}$${String(cost).padStart(2, "0")}$${encodeBase64(salt, 22)}${step.value}`;
}

/** Whether `password` is the one `hash` was made from; the work is cut into slices between which
 * other callbacks run. */
export async function bcryptVerify(password: string, hash: BcryptHash): Promise<boolean> {
  const steps = eksBlowfish(password, hash.cost, hash.salt);
  let step = steps.next();
  while (!step.done) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    step = steps.next();
  }
  return constantTimeEqual(step.value, hash.digest);
}

export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
