// Finds where MIME entities' content lies in the raw body. The host lists
// the entities (type, name, size) but not their offsets, so this walks
// the same tree the host walked. It reads only header blocks and
// boundary lines, and it jumps over each leaf entity's content by the
// size the host measured. Every jump must land on the next boundary, so a
// walk that disagrees with the host's fails instead of reading the wrong
// bytes.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { bodyRange } from "./source";

// Bounds of the walk, matching the host's MIME limits and keeping guest
// loops short.
const MAX_DEPTH = 16;
const MAX_HEADER_BYTES = 16384;
const MAX_SCAN_BYTES = 65536; // a preamble or epilogue longer than this fails the walk
const CHUNK = 4096;
// findDelimiter's result when there is none; -2 is a valid offset there.
const NOT_FOUND: i64 = i64.MIN_VALUE;

// The content of one entity: body offsets [start, end) and its
// Content-Transfer-Encoding, lower case.
export class Located {
  start: i64 = 0;
  end: i64 = 0;
  encoding: string = "";
}

// A parsed entity header: media type (lower case, "" when absent), the
// boundary parameter and the transfer encoding.
class EntityHeader {
  mediaType: string = "";
  boundary: string = "";
  encoding: string = "";
}

export class Locator {
  parts: lg.Part[];
  wanted: Set<i32>;
  last: i32; // the highest wanted index; the walk stops after it
  next: i32 = 0; // the host index of the next entity found
  found: Map<i32, Located> = new Map<i32, Located>();
  bodyEnd: i64;
  lastWasLeaf: bool = false;

  constructor(parts: lg.Part[], wanted: i32[]) {
    this.parts = parts;
    this.wanted = new Set<i32>();
    let last = -1;
    for (let i = 0; i < wanted.length; i++) {
      this.wanted.add(wanted[i]);
      last = max(last, wanted[i]);
    }
    this.last = last;
    this.bodyEnd = lg.bodySize();
  }

  // Walks the message from its top-level header. Returns false when the
  // walk failed before every wanted entity was found.
  run(): bool {
    const h = new EntityHeader();
    const ct = lg.header("Content-Type");
    const cte = lg.header("Content-Transfer-Encoding");
    parseContentType(ct != null ? ct : "", h);
    if (cte != null) h.encoding = cte.trim().toLowerCase();
    this.walk(h, 0, this.bodyEnd, 0);
    return this.found.size == this.wanted.size;
  }

  // Walks one entity whose content starts at start and lies before end.
  // Returns the offset just after what it consumed, or -1 on failure.
  walk(h: EntityHeader, start: i64, end: i64, depth: i32): i64 {
    if (depth > MAX_DEPTH || this.next > this.last) return -1;
    if (h.mediaType.startsWith("multipart/") && h.boundary.length > 0) {
      const r = this.walkMultipart(h.boundary, start, end, depth);
      this.lastWasLeaf = false;
      return r;
    }

    const k = this.next++;
    if (k >= this.parts.length) return -1;
    const mediaType = h.mediaType.length > 0 ? h.mediaType : "text/plain";
    if (this.parts[k].contentType != mediaType) return -1;

    if (mediaType == "message/rfc822" || mediaType == "message/global") {
      // The host's size of an attached message is not always its full
      // extent, so its end is found by walking its own body.
      const inner = new EntityHeader();
      const bodyStart = this.readHeader(start, end, inner);
      if (bodyStart < 0) return -1;
      const r = this.walk(inner, bodyStart, end, depth + 1);
      this.lastWasLeaf = false;
      return r;
    }

    const contentEnd = start + this.parts[k].size;
    if (contentEnd > end) return -1;
    if (this.wanted.has(k)) {
      const l = new Located();
      l.start = start;
      l.end = contentEnd;
      l.encoding = h.encoding;
      this.found.set(k, l);
    }
    this.lastWasLeaf = true;
    return contentEnd;
  }

  walkMultipart(boundary: string, start: i64, end: i64, depth: i32): i64 {
    const delimiter = Uint8Array.wrap(String.UTF8.encode("\r\n--" + boundary));
    // The first delimiter may start the content without a line break.
    let at = this.findDelimiter(delimiter, start - 2, end, true);
    while (at != NOT_FOUND) {
      const after = at + delimiter.length;
      const tail = bodyRange(after, 2);
      if (tail.length == 2 && tail[0] == 0x2d && tail[1] == 0x2d) return after + 2;
      const partStart = this.lineEnd(after, end);
      if (partStart < 0) return -1;

      const h = new EntityHeader();
      const contentStart = this.readHeader(partStart, end, h);
      if (contentStart < 0) return -1;
      const childEnd = this.walk(h, contentStart, end, depth + 1);
      if (childEnd < 0 || this.next > this.last) return childEnd;
      // A leaf's content ends exactly at the next delimiter, while a
      // container may be followed by an epilogue.
      if (this.lastWasLeaf) {
        if (!this.matchAt(delimiter, childEnd, 0, end)) return -1;
        at = childEnd;
      } else {
        at = this.findDelimiter(delimiter, childEnd, end, false);
      }
    }
    return -1;
  }

  // Returns the offset after the CRLF that ends a delimiter line, which
  // may carry trailing white space, or -1.
  lineEnd(from: i64, end: i64): i64 {
    const line = bodyRange(from, <i32>min(<i64>256, end - from));
    for (let i = 0; i + 1 < line.length; i++) {
      const c = line[i];
      if (c == 0x0d && line[i + 1] == 0x0a) return from + i + 2;
      if (c != 0x20 && c != 0x09) return -1;
    }
    return -1;
  }

  // Finds the next delimiter line ("\r\n--boundary" then "--", white
  // space or CRLF) at or after from. When first is set, from may point
  // two bytes before the content, standing for a line break before it.
  findDelimiter(delimiter: Uint8Array, from: i64, end: i64, first: bool): i64 {
    if (first && this.matchAt(delimiter, from + 2, 2, end)) return from;
    let pos = first ? from + 2 : from;
    const limit = min(end, pos + MAX_SCAN_BYTES);
    while (pos < limit) {
      const chunk = bodyRange(pos, <i32>min(<i64>(CHUNK + delimiter.length + 2), end - pos));
      const stop = min(chunk.length - delimiter.length - 2, CHUNK);
      for (let i = 0; i <= stop; i++) {
        if (chunk[i] != 0x0d || !startsWith(chunk, i, delimiter)) continue;
        const c = chunk[i + delimiter.length];
        if (c == 0x2d || c == 0x0d || c == 0x20 || c == 0x09) return pos + i;
      }
      if (stop < CHUNK) return NOT_FOUND;
      pos += CHUNK;
    }
    return NOT_FOUND;
  }

  // Reports whether the delimiter, without its first skip bytes, is at
  // offset at and followed by "--", white space or CRLF.
  matchAt(delimiter: Uint8Array, at: i64, skip: i32, end: i64): bool {
    const n = delimiter.length - skip;
    const b = bodyRange(at, <i32>min(<i64>(n + 1), end - at));
    if (b.length < n + 1) return false;
    for (let i = 0; i < n; i++) {
      if (b[i] != delimiter[i + skip]) return false;
    }
    const c = b[n];
    return c == 0x2d || c == 0x0d || c == 0x20 || c == 0x09;
  }

  // Parses the header block at start into h and returns the offset of the
  // content after its blank line, or -1.
  readHeader(start: i64, end: i64, h: EntityHeader): i64 {
    const block = bodyRange(start, <i32>min(<i64>MAX_HEADER_BYTES, end - start));
    if (block.length >= 2 && block[0] == 0x0d && block[1] == 0x0a) return start + 2;
    let blank = -1;
    for (let i = 0; i + 3 < block.length; i++) {
      if (block[i] == 0x0d && block[i + 1] == 0x0a && block[i + 2] == 0x0d && block[i + 3] == 0x0a) {
        blank = i;
        break;
      }
    }
    if (blank < 0) return -1;
    const text = String.UTF8.decodeUnsafe(block.dataStart, blank);
    const lines = text.replaceAll("\r\n ", " ").replaceAll("\r\n\t", " ").split("\r\n");
    let seenType = false;
    let seenEncoding = false;
    for (let i = 0; i < lines.length; i++) {
      const colon = lines[i].indexOf(":");
      if (colon <= 0) continue;
      const name = lines[i].substring(0, colon).trim().toLowerCase();
      const value = lines[i].substring(colon + 1);
      // Go's textproto, which the host uses, keeps the first of repeated
      // fields.
      if (name == "content-type" && !seenType) {
        parseContentType(value, h);
        seenType = true;
      } else if (name == "content-transfer-encoding" && !seenEncoding) {
        h.encoding = value.trim().toLowerCase();
        seenEncoding = true;
      }
    }
    return start + blank + 4;
  }
}

function startsWith(b: Uint8Array, at: i32, prefix: Uint8Array): bool {
  for (let i = 0; i < prefix.length; i++) {
    if (b[at + i] != prefix[i]) return false;
  }
  return true;
}

// Parses a Content-Type value into h's media type and boundary.
function parseContentType(value: string, h: EntityHeader): void {
  const semi = value.indexOf(";");
  h.mediaType = (semi < 0 ? value : value.substring(0, semi)).trim().toLowerCase();
  if (semi < 0) return;
  let i = semi + 1;
  while (i < value.length) {
    while (i < value.length && (value.charAt(i) == " " || value.charAt(i) == "\t" || value.charAt(i) == ";")) i++;
    const eq = value.indexOf("=", i);
    if (eq < 0) return;
    const key = value.substring(i, eq).trim().toLowerCase();
    i = eq + 1;
    let v = "";
    if (i < value.length && value.charAt(i) == "\"") {
      i++;
      while (i < value.length && value.charAt(i) != "\"") {
        if (value.charAt(i) == "\\" && i + 1 < value.length) i++;
        v += value.charAt(i);
        i++;
      }
      i++;
    } else {
      const start = i;
      while (i < value.length && value.charAt(i) != ";" && value.charAt(i) != " ") i++;
      v = value.substring(start, i);
    }
    if (key == "boundary") {
      h.boundary = v;
      return;
    }
  }
}
