// A screen that clears most messages without the policy's string checks.
// Those checks decode every part's type and file name to strings and
// split names in guest loops, which the host's time limit makes costly.
// Each part is therefore first matched in the host against two regular
// expressions, which match every type and name that the checks could act
// on (and more). Only a message with a matching part goes through the
// full checks.
import * as lg from "../../sdk/assemblyscript/lambgate";
import * as host from "../../sdk/assemblyscript/lambgate/host";
import { ARCHIVE_EXTENSIONS, ARCHIVE_TYPES, GENERIC_TYPE } from "./archives";
import { Policy } from "./policy";

const PROP_MIME_ERROR = 11;
const PART_TYPE = 1;
const PART_FILE_NAME = 2;
const TARGET_GUEST = 0;
const TARGET_HEADER_FIELD = 3;
const CONTENT_TYPE = String.UTF8.encode("Content-Type");
const CONTENT_DISPOSITION = String.UTF8.encode("Content-Disposition");
const FIELD_CAP = 1024; // a longer type or name is left to the full checks
const field = memory.data(FIELD_CAP);

// The screen's compiled expressions, each handle -1 when it has nothing
// to match.
export class Screen {
  // Cleared when an expression could not be compiled (more than 4,096
  // bytes of settings): every message then goes through the full checks.
  usable: bool = true;
  types: i32 = -1;
  names: i32 = -1;
  // Matches a top-level Content-Type that makes the message one
  // text/plain entity without a file name; -1 when text/plain is blocked.
  plainType: i32 = -1;
}

// Compiles the screen for a policy. The type expression matches exactly
// the blocked types and, when archives are inspected, the types that
// declare or may hold one. The name expression matches any name with a
// character outside printable ASCII, because the checks drop hidden
// characters and lower-case by Unicode rules. It also matches a dot,
// spaces, a listed or archive extension in any case, spaces, then a dot
// or the end. Every extension that the checks find in a printable ASCII
// name, after dropping a path and trailing dots and spaces, is such a
// run.
export function compileScreen(pol: Policy): Screen {
  const types = pol.types.values();
  const exts = pol.extensions.values();
  if (pol.inspectArchives) {
    for (let i = 0; i < ARCHIVE_TYPES.length; i++) types.push(ARCHIVE_TYPES[i]);
    types.push(GENERIC_TYPE);
    for (let i = 0; i < ARCHIVE_EXTENSIONS.length; i++) exts.push(ARCHIVE_EXTENSIONS[i]);
  }
  const s = new Screen();
  if (types.length > 0) s.types = lg.regexCompile("^(?:" + alternatives(types) + ")$");
  if (exts.length > 0) {
    s.names = lg.regexCompile("(?i)[^\\x20-\\x7e]|\\. *(?:" + alternatives(exts) + ") *(?:\\.|$)");
  }
  s.usable = (types.length == 0 || s.types >= 0) && (exts.length == 0 || s.names >= 0);
  if (s.usable && !(s.types >= 0 && matchesText(s.types, "text/plain"))) {
    s.plainType = lg.regexCompile("(?i)^text/plain(?:\\s*;\\s*charset=\"?[a-z0-9._:+-]+\"?)?\\s*$");
  }
  return s;
}

// Reports whether no part of the message can be blocked or be an
// archive, and the host walked the whole MIME tree. The policy's checks
// would then continue.
export function screenClears(s: Screen): bool {
  if (!s.usable) return false;
  if (s.plainType >= 0 && plainText(s.plainType)) return true;
  const count = host.part_count();
  if (count < 0) return false;
  for (let i = 0; i < count; i++) {
    if (s.types >= 0 && matches(s.types, i, PART_TYPE)) return false;
    if (s.names >= 0 && matches(s.names, i, PART_FILE_NAME)) return false;
  }
  return host.get_property(PROP_MIME_ERROR, field, FIELD_CAP) == 0;
}

// Reports whether the top-level header makes the message one text/plain
// entity without a file name: no Content-Disposition, and no Content-Type
// or one that plainType matches (sdk/ABI.md gives the type and name from
// those fields). Such a message has no part to check and no MIME
// structure to get wrong, so the host need not walk it.
function plainText(plainType: i32): bool {
  if (host.header_count(changetype<usize>(CONTENT_DISPOSITION), CONTENT_DISPOSITION.byteLength) != 0) return false;
  const types = host.header_count(changetype<usize>(CONTENT_TYPE), CONTENT_TYPE.byteLength);
  if (types == 0) return true;
  if (types != 1) return false;
  return host.regex_match(plainType, TARGET_HEADER_FIELD, changetype<usize>(CONTENT_TYPE), CONTENT_TYPE.byteLength) == 1;
}

function matchesText(handle: i32, text: string): bool {
  const b = String.UTF8.encode(text);
  return host.regex_match(handle, TARGET_GUEST, changetype<usize>(b), b.byteLength) != 0;
}

// Reports whether a field of part i matches the expression, or is too
// long to tell.
function matches(handle: i32, i: i32, partField: i32): bool {
  const n = host.get_part(i, partField, field, FIELD_CAP);
  if (n < 0 || n > FIELD_CAP) return true;
  if (n == 0 && partField == PART_FILE_NAME) return false;
  return host.regex_match(handle, TARGET_GUEST, field, n) != 0;
}

// Joins the non-empty items as a regular expression alternation of
// literals.
function alternatives(items: string[]): string {
  let out = "";
  for (let i = 0; i < items.length; i++) {
    if (items[i].length == 0) continue;
    if (out.length > 0) out += "|";
    out += quoteMeta(items[i]);
  }
  return out;
}

// Escapes the characters that RE2 syntax gives a meaning.
function quoteMeta(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if ("\\.+*?()|[]{}^$".indexOf(c) >= 0) out += "\\";
    out += c;
  }
  return out;
}
