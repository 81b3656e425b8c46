// AssemblyScript SDK for Lambgate filter plugins, ABI v1 (sdk/ABI.md).
//
// A plugin's entry file re-exports lambgate_abi_version_1 and exports a
// function per phase it handles, returning an Action:
//
//   export { lambgate_abi_version_1 } from "<sdk>/lambgate";
//   export function lambgate_on_connect(): Action { ... }
//
// The host calls only exported phases listed in the manifest. Keep no
// transaction data in globals: any pooled instance may serve the next
// phase.
import * as host from "./host";

// Marks the module as built for ABI v1.
export function lambgate_abi_version_1(): void {}

// A phase's verdict; the values are fixed by the ABI.
export enum Action {
  Continue = 0,
  Accept = 1,
  Reject = 2,
  Tempfail = 3,
  Quarantine = 4,
  Discard = 5,
  Bounce = 6,
}

// Status codes that host calls return.
export namespace Status {
  export const OK: i32 = 0;
  export const NotFound: i32 = -1;
  export const BadArgument: i32 = -2;
  export const WrongPhase: i32 = -3;
  export const Limit: i32 = -4;
  export const TempFailure: i32 = -5;
  export const NotSupported: i32 = -6;
}

let status: i32 = 0;

// lastStatus returns the status of the last call that returns a value
// rather than a status: Status.OK, or why it returned an empty value.
export function lastStatus(): i32 {
  return status;
}

// scratch is the buffer host calls fill; it grows to the largest value
// read and is reused.
let scratch = new ArrayBuffer(512);

function sp(): usize {
  return changetype<usize>(scratch);
}

function cap(): i32 {
  return scratch.byteLength;
}

// grown reports whether n did not fit, growing scratch for a retry.
function grown(n: i32): bool {
  if (n <= scratch.byteLength) return false;
  scratch = new ArrayBuffer(n);
  return true;
}

// text decodes a filled scratch buffer, or records a negative status.
function text(n: i32): string {
  if (n < 0) {
    status = n;
    return "";
  }
  status = Status.OK;
  return String.UTF8.decodeUnsafe(sp(), <usize>n);
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

function ptr(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}

function property(id: i32): string {
  let n = host.get_property(id, sp(), cap());
  if (grown(n)) n = host.get_property(id, sp(), cap());
  return text(n);
}

// The client's IP address, from the connect phase on.
export function clientAddr(): string { return property(1); }
export function clientPort(): i32 { return I32.parseInt(property(2)); }
// The HELO or EHLO name, from the helo phase on.
export function helo(): string { return property(3); }
// The envelope sender ("" for the null sender), from the mail phase on.
export function mailFrom(): string { return property(4); }
// The recipient of the current rcpt phase.
export function rcpt(): string { return property(5); }
export function queueId(): string { return property(6); }
export function tls(): bool { return property(7) == "1"; }
// The gateway's SPF result for the envelope sender, "" when not checked.
export function spf(): string { return property(8); }
export function pluginName(): string { return property(10); }
// The current phase's name ("connect" ... "done"), or "init".
export function phase(): string { return property(9); }

// The recipients accepted so far, from the mail phase on.
export function recipients(): string[] {
  const out = new Array<string>();
  const count = host.rcpt_count();
  for (let i = 0; i < count; i++) {
    let n = host.get_rcpt(i, sp(), cap());
    if (grown(n)) n = host.get_rcpt(i, sp(), cap());
    out.push(text(n));
  }
  return out;
}

// A manifest setting as text (lists have one element per line), or null.
export function setting(name: string): string | null {
  const k = utf8(name);
  let n = host.get_setting(ptr(k), k.byteLength, sp(), cap());
  if (grown(n)) n = host.get_setting(ptr(k), k.byteLength, sp(), cap());
  const v = text(n);
  return n < 0 ? null : v;
}

// A list setting's non-empty elements.
export function settingList(name: string): string[] {
  const s = setting(name);
  const out = new Array<string>();
  if (s == null) return out;
  const items = s.split("\n");
  for (let i = 0; i < items.length; i++) {
    if (items[i].length > 0) out.push(items[i]);
  }
  return out;
}

// An integer setting, or def when missing.
export function settingInt(name: string, def: i32): i32 {
  const s = setting(name);
  if (s == null || s.length == 0) return def;
  return I32.parseInt(s);
}

// Returns the index-th value of a header field (unfolded, RFC 2047
// decoded), or null with the reason in lastStatus.
export function header(name: string, index: i32 = 0): string | null {
  const k = utf8(name);
  let n = host.get_header(ptr(k), k.byteLength, index, sp(), cap());
  if (grown(n)) n = host.get_header(ptr(k), k.byteLength, index, sp(), cap());
  const v = text(n);
  return n < 0 ? null : v;
}

export function headerCount(name: string): i32 {
  const k = utf8(name);
  return host.header_count(ptr(k), k.byteLength);
}

// The raw header block, CRLF line ends.
export function headerBlock(): string {
  let n = host.get_headers(sp(), cap());
  if (grown(n)) n = host.get_headers(sp(), cap());
  return text(n);
}

// The body size in bytes, or a negative status outside body and done.
export function bodySize(): i64 { return host.body_size(); }

// Copies body bytes from offset into buf; returns the count, 0 at the end.
export function readBody(buf: Uint8Array, offset: i64): i32 {
  return host.get_body(offset, buf.dataStart, buf.byteLength);
}

// One MIME entity, found depth first through nested multiparts and
// attached messages.
export class Part {
  path: string = "";
  contentType: string = "";
  fileName: string = "";
  disposition: string = "";
  size: i64 = 0;
}

function partField(i: i32, field: i32): string {
  let n = host.get_part(i, field, sp(), cap());
  if (grown(n)) n = host.get_part(i, field, sp(), cap());
  return text(n);
}

// Why the host stopped walking the MIME tree early, or "" when it walked
// the whole tree; parts() then lists only the entities before the error.
export function mimeError(): string { return property(11); }

// The message's MIME entities, in the body and done phases.
export function parts(): Part[] {
  const out = new Array<Part>();
  const count = host.part_count();
  if (count < 0) {
    status = count;
    return out;
  }
  status = Status.OK;
  for (let i = 0; i < count; i++) {
    const p = new Part();
    p.contentType = partField(i, 1);
    p.fileName = partField(i, 2);
    p.disposition = partField(i, 3);
    p.path = partField(i, 4);
    p.size = host.part_size(i);
    out.push(p);
  }
  return out;
}

// Records the reply for Reject or Tempfail: code 400-599, enhanced code
// of the same class or "". The host cleans CR/LF out of text.
export function setReply(code: i32, enhanced: string, msg: string): i32 {
  const e = utf8(enhanced);
  const t = utf8(msg);
  return host.set_reply(code, ptr(e), e.byteLength, ptr(t), t.byteLength);
}

export function rejectWith(code: i32, enhanced: string, msg: string): Action {
  setReply(code, enhanced, msg);
  return Action.Reject;
}

export function tempfailWith(code: i32, enhanced: string, msg: string): Action {
  setReply(code, enhanced, msg);
  return Action.Tempfail;
}

// Asks for a header field to be added once the verdict is final and the
// message is kept (headers, body and done phases).
export function addHeader(name: string, value: string): i32 {
  const k = utf8(name);
  const v = utf8(value);
  return host.add_header(ptr(k), k.byteLength, ptr(v), v.byteLength);
}

export function addTag(tag: string): i32 {
  const t = utf8(tag);
  return host.add_tag(ptr(t), t.byteLength);
}

export namespace Level {
  export const Debug: i32 = -4;
  export const Info: i32 = 0;
  export const Warn: i32 = 4;
  export const Error: i32 = 8;
}

export function log(level: i32, msg: string): void {
  const m = utf8(msg);
  host.log(level, ptr(m), m.byteLength);
}

// Offset of s in the raw header block or body, or -1; fold ignores ASCII
// case.
export function searchHeaders(s: string, fold: bool): i64 { return searchIn(1, s, fold); }
export function searchBody(s: string, fold: bool): i64 { return searchIn(2, s, fold); }

function searchIn(target: i32, s: string, fold: bool): i64 {
  const p = utf8(s);
  const n = host.search(target, ptr(p), p.byteLength, fold ? 1 : 0);
  return n < 0 ? -1 : n;
}

// Compiles an RE2 pattern (Go regexp syntax) once per plugin and returns
// its handle, or a negative status.
export function regexCompile(pattern: string): i32 {
  const p = utf8(pattern);
  return host.regex_compile(ptr(p), p.byteLength);
}

export function regexMatchString(handle: i32, s: string): bool {
  const b = utf8(s);
  return host.regex_match(handle, 0, ptr(b), b.byteLength) == 1;
}

// Whether any value of the named header field matches.
export function regexMatchHeader(handle: i32, name: string): bool {
  const b = utf8(name);
  return host.regex_match(handle, 3, ptr(b), b.byteLength) == 1;
}

export function regexMatchHeaders(handle: i32): bool { return host.regex_match(handle, 1, 0, 0) == 1; }
export function regexMatchBody(handle: i32): bool { return host.regex_match(handle, 2, 0, 0) == 1; }

export namespace Hash {
  export const SHA256: i32 = 1;
  export const SHA1: i32 = 2;
  export const MD5: i32 = 3;
}

function digest(alg: i32, target: i32, data: usize, len: i32): Uint8Array {
  const out = new Uint8Array(32);
  const n = host.hash(alg, target, data, len, out.dataStart, 32);
  if (n < 0) {
    status = n;
    return new Uint8Array(0);
  }
  status = Status.OK;
  return out.subarray(0, n);
}

export function hashBytes(alg: i32, data: Uint8Array): Uint8Array {
  return digest(alg, 0, data.dataStart, data.byteLength);
}

export function hashBody(alg: i32): Uint8Array { return digest(alg, 2, 0, 0); }

export namespace DNS {
  export const A: i32 = 1;
  export const MX: i32 = 15;
  export const TXT: i32 = 16;
  export const AAAA: i32 = 28;
}

// Resolves name through the appliance's resolver (the manifest must grant
// "dns") and returns one record per element. On failure it returns an
// empty array with lastStatus set.
export function lookup(rtype: i32, name: string): string[] {
  const k = utf8(name);
  let n = host.dns_lookup(rtype, ptr(k), k.byteLength, sp(), cap());
  if (grown(n)) n = host.dns_lookup(rtype, ptr(k), k.byteLength, sp(), cap());
  const v = text(n);
  if (n < 0) return new Array<string>();
  return v.split("\n");
}

// The real time in Unix milliseconds (the manifest must grant "clock").
export function nowMs(): i64 { return host.now_ms(); }

// The value under key, or null (the manifest must grant "kv").
export function kvGet(key: string): string | null {
  const k = utf8(key);
  let n = host.kv_get(ptr(k), k.byteLength, sp(), cap());
  if (grown(n)) n = host.kv_get(ptr(k), k.byteLength, sp(), cap());
  const v = text(n);
  return n < 0 ? null : v;
}

// Stores value under key for ttl seconds (0: no expiry).
export function kvSet(key: string, value: string, ttl: i32): i32 {
  const k = utf8(key);
  const v = utf8(value);
  return host.kv_set(ptr(k), k.byteLength, ptr(v), v.byteLength, ttl);
}

const incrOut = new ArrayBuffer(8);

// Adds delta to a counter and returns its new value. A new counter starts
// at zero and expires ttl seconds after its creation, so it counts a fixed
// window. On failure it returns 0 with lastStatus set.
export function kvIncr(key: string, delta: i64, ttl: i32): i64 {
  const k = utf8(key);
  const st = host.kv_incr(ptr(k), k.byteLength, delta, ttl, ptr(incrOut));
  status = st;
  if (st < 0) return 0;
  return load<i64>(ptr(incrOut));
}
