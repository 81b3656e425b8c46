// Looks inside archives: lists a ZIP archive's file names from its central
// directory (no decompression), opens ZIP archives stored inside it, and
// recognises 7z and RAR archives by their magic numbers.
import { Source, MemorySource } from "./source";
import { blockedName, lastExtensionIn } from "./names";

export const CLEAN = 0;
export const BLOCKED = 1; // a file inside has a blocked name
export const UNREADABLE = 2; // encrypted, malformed, truncated, over a limit
export const UNINSPECTABLE = 3; // 7z, RAR, or a compressed nested archive

// The outcome of inspecting one archive.
export class Finding {
  kind: i32 = CLEAN;
  reason: string = "";

  constructor(kind: i32, reason: string) {
    this.kind = kind;
    this.reason = reason;
  }
}

const NESTED_ZIP = ["zip"];
const NESTED_OTHER = ["7z", "rar"];

// ZIP record signatures (APPNOTE.TXT 4.3), little-endian.
const SIG_LOCAL: i64 = 0x04034b50;
const SIG_CENTRAL: i64 = 0x02014b50;
const SIG_END: i64 = 0x06054b50;
const END_LEN = 22;
const MAX_COMMENT = 65535;
const FIRST_TAIL = 4096;

// Returns "zip", "7z", "rar" or "" for the first bytes of a file.
export function sniff(b: Uint8Array): string {
  if (b.length >= 4 && b[0] == 0x50 && b[1] == 0x4b) {
    // Local file header, empty archive, or spanned archive marker.
    if ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6) || (b[2] == 7 && b[3] == 8)) return "zip";
  }
  if (b.length >= 6 && b[0] == 0x37 && b[1] == 0x7a && b[2] == 0xbc && b[3] == 0xaf && b[4] == 0x27 &&
    b[5] == 0x1c) return "7z";
  // "Rar!\x1a\x07" starts both RAR 4 and RAR 5 archives.
  if (b.length >= 6 && b[0] == 0x52 && b[1] == 0x61 && b[2] == 0x72 && b[3] == 0x21 && b[4] == 0x1a &&
    b[5] == 0x07) return "rar";
  return "";
}

function le16(b: Uint8Array, at: i32): i32 {
  return <i32>b[at] | (<i32>b[at + 1] << 8);
}

function le32(b: Uint8Array, at: i32): i64 {
  return <i64>(<u32>b[at] | (<u32>b[at + 1] << 8) | (<u32>b[at + 2] << 16) | (<u32>b[at + 3] << 24));
}

// A stored ZIP archive inside another, to be opened after the directory
// walk.
class Nested {
  name: string;
  localOffset: i64;
  size: i64;

  constructor(name: string, localOffset: i64, size: i64) {
    this.name = name;
    this.localOffset = localOffset;
    this.size = size;
  }
}

// Inspects the archives of one message under shared limits.
export class Inspector {
  extensions: Set<string>;
  anyExtension: bool;
  maxDepth: i32;
  maxEntries: i32;
  maxBytes: i64;
  entries: i32 = 0; // entries examined so far in this message
  bytes: i64 = 0; // archive bytes read so far in this message

  constructor(extensions: Set<string>, anyExtension: bool, maxDepth: i32, maxEntries: i32, maxBytes: i64) {
    this.extensions = extensions;
    this.anyExtension = anyExtension;
    this.maxDepth = maxDepth;
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
  }

  // Inspects src, an archive named name at nesting depth (1 for an
  // attachment). claimed is set when the name or type declares an archive, so
  // that content of no known format is unreadable rather than ignored.
  inspect(src: Source, name: string, depth: i32, claimed: bool): Finding {
    const head = src.prefix(8);
    if (head == null) return new Finding(UNREADABLE, "undecodable archive " + name);
    const kind = sniff(head);
    if (kind == "zip") return this.inspectZip(src, name, depth);
    if (kind.length > 0) return new Finding(UNINSPECTABLE, kind + " archive " + name + " cannot be inspected");
    if (claimed) return new Finding(UNREADABLE, name + " is not a ZIP, 7z or RAR archive");
    return new Finding(CLEAN, "");
  }

  // Reads the last n bytes of src within the byte limit, or returns null.
  tail(src: Source, n: i32): Uint8Array | null {
    if (this.bytes + n > this.maxBytes) return null;
    const b = src.suffix(n);
    if (b != null) this.bytes += b.length;
    return b;
  }

  inspectZip(src: Source, name: string, depth: i32): Finding {
    const overLimit = new Finding(UNREADABLE, "archive " + name + " exceeds archive_max_bytes");
    let tail = this.tail(src, FIRST_TAIL);
    if (tail == null) return overLimit;
    let end = findEnd(tail);
    if (end < 0 && !src.whole) {
      // The end record may follow a comment of up to 65,535 bytes.
      tail = this.tail(src, END_LEN + MAX_COMMENT);
      if (tail == null) return overLimit;
      end = findEnd(tail);
    }
    const broken = new Finding(UNREADABLE, "truncated or malformed ZIP archive " + name);
    if (end < 0) return broken;

    const count = le16(tail, end + 10);
    const dirSize = le32(tail, end + 12);
    const dirOffset = le32(tail, end + 16);
    // NOTE: ZIP64 archives (more than 65,535 entries or 4 GiB) are
    // reported as unreadable rather than parsed.
    if (count == 0xffff || dirSize == 0xffffffff || dirOffset == 0xffffffff) {
      return new Finding(UNREADABLE, "ZIP64 archive " + name + " is not inspected");
    }
    if (<i64>end < dirSize) {
      if (src.whole) return broken;
      const grown = this.tail(src, <i32>(dirSize + <i64>(tail.length - end)));
      if (grown == null) return overLimit;
      end += grown.length - tail.length;
      tail = grown;
      if (<i64>end < dirSize) return broken;
    }
    const dirStart = end - <i32>dirSize;
    // The archive offset of tail[0]; data prepended to the archive (a
    // self-extractor) shifts both sides alike.
    let base = dirOffset - <i64>dirStart;

    const nested = new Array<Nested>();
    let uninspectable: Finding | null = null;
    let p = dirStart;
    for (let i = 0; i < count; i++) {
      if (++this.entries > this.maxEntries) {
        return new Finding(UNREADABLE, "more than " + this.maxEntries.toString() + " archive entries");
      }
      if (p + 46 > end || le32(tail, p) != SIG_CENTRAL) return broken;
      const flags = le16(tail, p + 8);
      const method = le16(tail, p + 10);
      const size = le32(tail, p + 20);
      const nameLen = le16(tail, p + 28);
      const extraLen = le16(tail, p + 30);
      const commentLen = le16(tail, p + 32);
      const localOffset = le32(tail, p + 42);
      if (p + 46 + nameLen > end) return broken;
      const entry = String.UTF8.decodeUnsafe(tail.dataStart + p + 46, nameLen);
      p += 46 + nameLen + extraLen + commentLen;

      const blocked = blockedName(entry, this.extensions, this.anyExtension);
      if (blocked.length > 0) return new Finding(BLOCKED, blocked + " inside " + name + " (" + entry + ")");
      if (lastExtensionIn(entry, NESTED_OTHER)) {
        if (uninspectable == null) {
          uninspectable = new Finding(UNINSPECTABLE, "archive " + entry + " inside " + name + " cannot be inspected");
        }
      } else if (lastExtensionIn(entry, NESTED_ZIP)) {
        if (depth >= this.maxDepth) {
          return new Finding(UNREADABLE, "archives nested deeper than " + this.maxDepth.toString() + " in " + name);
        }
        if ((flags & 1) != 0) return new Finding(UNREADABLE, "encrypted archive " + entry + " inside " + name);
        if (method != 0) {
          // NOTE: opening a compressed nested archive needs inflate, which
          // this plugin does not have.
          if (uninspectable == null) {
            uninspectable = new Finding(UNINSPECTABLE, "compressed archive " + entry + " inside " + name);
          }
        } else {
          nested.push(new Nested(entry, localOffset, size));
        }
      }
    }

    for (let i = 0; i < nested.length; i++) {
      const n = nested[i];
      let at = n.localOffset - base;
      if (at < 0) {
        const grown = this.tail(src, <i32>(<i64>tail.length - at));
        if (grown == null) return overLimit;
        base -= grown.length - tail.length;
        tail = grown;
        at = n.localOffset - base;
        if (at < 0) return broken;
      }
      const q = <i32>at;
      if (q + 30 > tail.length || le32(tail, q) != SIG_LOCAL) return broken;
      const dataStart = <i64>q + 30 + le16(tail, q + 26) + le16(tail, q + 28);
      if (dataStart + n.size > <i64>tail.length) return broken;
      const inner = new MemorySource(tail.subarray(<i32>dataStart, <i32>(dataStart + n.size)));
      const f = this.inspect(inner, n.name, depth + 1, true);
      if (f.kind == BLOCKED || f.kind == UNREADABLE) return f;
      if (f.kind == UNINSPECTABLE && uninspectable == null) uninspectable = f;
    }
    if (uninspectable != null) return uninspectable;
    return new Finding(CLEAN, "");
  }
}

// Returns the offset of the last end-of-central-directory record in b,
// or -1.
function findEnd(b: Uint8Array): i32 {
  for (let i = b.length - END_LEN; i >= 0 && i >= b.length - END_LEN - MAX_COMMENT; i--) {
    if (b[i] == 0x50 && le32(b, i) == SIG_END) return i;
  }
  return -1;
}
