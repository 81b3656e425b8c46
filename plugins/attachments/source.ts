// Decoded bytes of one MIME entity, read from the raw message body. Only
// the start (for the magic number) and the end (for a ZIP's central
// directory) are read, so a large attachment costs little. Guest loops are
// slow under the host's time limit, so nothing here walks the whole part.
import * as lg from "../../sdk/assemblyscript/lambgate";

// Copies body bytes [offset, offset+len) into a new array, shorter when
// the body ends first.
export function bodyRange(offset: i64, len: i32): Uint8Array {
  const out = new Uint8Array(len);
  let got = 0;
  while (got < len) {
    const n = lg.readBody(out.subarray(got), offset + got);
    if (n <= 0) break;
    got += n;
  }
  return got == len ? out : out.subarray(0, got);
}

// Archive bytes that can be read from the start or the end.
export abstract class Source {
  // The first n bytes (fewer when the source is shorter), or null when
  // they cannot be decoded.
  abstract prefix(n: i32): Uint8Array | null;
  // The last n bytes (fewer when the source is shorter), or null when
  // they cannot be decoded.
  abstract suffix(n: i32): Uint8Array | null;
  // Reports whether the last suffix() returned the whole source.
  whole: bool = false;
}

// A source held in guest memory: a nested archive.
export class MemorySource extends Source {
  data: Uint8Array;

  constructor(data: Uint8Array) {
    super();
    this.data = data;
  }

  prefix(n: i32): Uint8Array | null {
    return this.data.subarray(0, min(n, this.data.length));
  }

  suffix(n: i32): Uint8Array | null {
    this.whole = n >= this.data.length;
    return this.whole ? this.data : this.data.subarray(this.data.length - n);
  }
}

// An entity without transfer encoding (7bit, 8bit, binary).
export class RawSource extends Source {
  start: i64;
  end: i64;

  constructor(start: i64, end: i64) {
    super();
    this.start = start;
    this.end = end;
  }

  prefix(n: i32): Uint8Array | null {
    return bodyRange(this.start, <i32>min(<i64>n, this.end - this.start));
  }

  suffix(n: i32): Uint8Array | null {
    const from = max(this.start, this.end - n);
    this.whole = from == this.start;
    return bodyRange(from, <i32>(this.end - from));
  }
}

// Returns a base64 character's value, 64 for "=", or -1 for a character
// outside the alphabet (line breaks and white space are skipped by the
// callers).
function b64(c: i32): i32 {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  if (c == 0x2b) return 62;
  if (c == 0x2f) return 63;
  if (c == 0x3d) return 64;
  return -1;
}

function isSpace(c: i32): bool {
  return c == 0x0d || c == 0x0a || c == 0x20 || c == 0x09;
}

// A base64 entity. MIME base64 is padded to whole 4-character groups, so
// the last k*4 characters of the content decode on their own: the end is
// read without decoding what comes before it.
export class Base64Source extends Source {
  start: i64;
  end: i64;

  constructor(start: i64, end: i64) {
    super();
    this.start = start;
    this.end = end;
  }

  prefix(n: i32): Uint8Array | null {
    // 4 characters give 3 bytes; lines are at most 998 bytes long.
    const raw = bodyRange(this.start, <i32>min(<i64>((n + 2) / 3 * 4 + 1000), this.end - this.start));
    const chars = base64Chars(raw);
    if (chars == null) return null;
    const bytes = decodeGroups(chars, 0, chars.length & ~3);
    if (bytes == null) return null;
    return bytes.subarray(0, min(n, bytes.length));
  }

  suffix(n: i32): Uint8Array | null {
    const want = (n + 2) / 3 * 4 + 4;
    // A first guess at the raw length: 76-character lines and CRLF.
    let rawLen = <i64>want * 78 / 76 + 8;
    while (true) {
      const from = max(this.start, this.end - rawLen);
      const chars = base64Chars(bodyRange(from, <i32>(this.end - from)));
      if (chars == null) return null;
      const whole = from == this.start;
      if (chars.length >= want || whole) {
        if (whole && (chars.length & 3) != 0) return null;
        const usable = min(chars.length & ~3, want & ~3);
        const bytes = decodeGroups(chars, chars.length - usable, usable);
        if (bytes == null) return null;
        this.whole = whole && usable == chars.length && n >= bytes.length;
        return bytes.length > n ? bytes.subarray(bytes.length - n) : bytes;
      }
      rawLen *= 2;
    }
  }
}

// Returns the base64 characters of raw without white space, or null when
// raw contains anything else.
function base64Chars(raw: Uint8Array): Uint8Array | null {
  const out = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = <i32>raw[i];
    if (isSpace(c)) continue;
    if (b64(c) < 0) return null;
    out[n++] = <u8>c;
  }
  return out.subarray(0, n);
}

// Decodes count characters (a multiple of 4) from chars[from]. Padding
// may only end the last group. Returns null on misplaced padding.
function decodeGroups(chars: Uint8Array, from: i32, count: i32): Uint8Array | null {
  const out = new Uint8Array(count / 4 * 3);
  let n = 0;
  for (let i = from; i < from + count; i += 4) {
    const a = b64(chars[i]);
    const b = b64(chars[i + 1]);
    const c = b64(chars[i + 2]);
    const d = b64(chars[i + 3]);
    const last = i + 4 == from + count;
    if (a == 64 || b == 64 || (c == 64 && d != 64) || ((c == 64 || d == 64) && !last)) return null;
    out[n++] = <u8>((a << 2) | (b >> 4));
    if (c == 64) break;
    out[n++] = <u8>(((b & 15) << 4) | (c >> 2));
    if (d == 64) break;
    out[n++] = <u8>(((c & 3) << 6) | d);
  }
  return out.subarray(0, n);
}
