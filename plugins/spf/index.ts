// spf is the bundled SPF plugin (RFC 7208). At MAIL FROM it checks the
// envelope sender's domain (the HELO name for the null sender) for the
// client address, or takes the gateway's own result when the gateway
// checked already. It acts on the result as the settings specify, and in
// the headers phase it adds a Received-SPF header. Results are cached in
// the key-value store, so the second phase costs no lookups. A fail
// reply quotes the sender domain's exp= explanation when it has one.
import * as lg from "../../sdk/assemblyscript/lambgate";
import * as host from "../../sdk/assemblyscript/lambgate/host";
import { Action } from "../../sdk/assemblyscript/lambgate";
import { Evaluation, parseAddr, FAIL, NONE, PERMERROR, SOFTFAIL, TEMPERROR } from "./check";
import { RESULTS, resultBytes, resultCode } from "./result";
import { Writer } from "./writer";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

const PROP_CLIENT_ADDR = 1;
const PROP_HELO = 3;
const PROP_MAIL_FROM = 4;
const PROP_SPF = 8;

// The explanation is cut to this many characters before it is cached; the
// host cuts reply texts to 400 bytes anyway.
const MAX_EXPLANATION = 300;

// Settings are configuration, fixed for the instance's lifetime (a changed
// manifest loads a new plugin), so they are read once when the instance
// starts.
const actions = readActions();
const cacheSeconds = lg.settingInt("cache_seconds", 600);
const receiverSetting = lg.setting("receiver");
const receiver = receiverSetting != null ? receiverSetting! : "";

function readActions(): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < RESULTS.length; i++) {
    const a = lg.setting(RESULTS[i] + "_action");
    if (a != null) m.set(RESULTS[i], a);
  }
  if (!m.has(FAIL)) m.set(FAIL, "reject");
  if (!m.has(TEMPERROR)) m.set(TEMPERROR, "tempfail");
  if (!m.has(SOFTFAIL)) m.set(SOFTFAIL, "tag");
  return m;
}

// Returns the configured action for a result: reject, tempfail,
// quarantine, tag or continue.
function actionFor(result: string): string {
  return actions.has(result) ? actions.get(result) : "continue";
}

// Each result's action and tag by result code, so that the common case
// compares no string.
const REJECT = 1;
const TEMPFAIL = 2;
const QUARANTINE = 3;
const TAG = 4;
const kinds = new StaticArray<i32>(RESULTS.length);
const tags = new StaticArray<ArrayBuffer>(RESULTS.length);
for (let i = 0; i < RESULTS.length; i++) {
  kinds[i] = kindOf(actionFor(RESULTS[i]));
  tags[i] = String.UTF8.encode("spf-" + RESULTS[i]);
}

function kindOf(action: string): i32 {
  if (action == "reject") return REJECT;
  if (action == "tempfail") return TEMPFAIL;
  if (action == "quarantine") return QUARANTINE;
  if (action == "tag") return TAG;
  return 0; // continue, and any other word
}

// The checked identity (RFC 7208 section 2.4): the envelope sender, or
// postmaster@ the HELO name for the null sender.
function sender(): string {
  const from = lg.mailFrom();
  return from.length > 0 ? from : "postmaster@" + lg.helo();
}

// The identity's domain, lower case, or "" when there is none.
function domainOf(identity: string): string {
  const at = identity.lastIndexOf("@");
  if (at < 0 || at == identity.length - 1) return "";
  let d = identity.substring(at + 1).toLowerCase();
  if (d.endsWith(".")) d = d.substring(0, d.length - 1);
  return d;
}

// Static buffers of the common case: the gateway's result or a cached
// value, the cache key "spf:ADDR:IDENTITY", and the Received-SPF value.
// They fit any address, SMTP path (at most 256 bytes) and HELO name. The
// store takes keys of at most 256 bytes, so a longer one is never cached.
const VALUE_CAP = 64;
const value = memory.data(VALUE_CAP);
const key = new Writer(600);
const received = new Writer(1100);
const KEY_PREFIX = String.UTF8.encode("spf:");
const COLON = String.UTF8.encode(":");
const POSTMASTER_AT = String.UTF8.encode("postmaster@");
const RECEIVED_SPF = String.UTF8.encode("Received-SPF");
const CLIENT_IP = String.UTF8.encode(" client-ip=");
const ENVELOPE_FROM = String.UTF8.encode("; envelope-from=\"");
const HELO = String.UTF8.encode("\"; helo=");
const SEMICOLON = String.UTF8.encode(";");

// Appends the checked identity, as sender() returns it, to w.
function writeSender(w: Writer): void {
  if (w.property(PROP_MAIL_FROM) != 0) return;
  w.bytes(POSTMASTER_AT);
  w.property(PROP_HELO);
}

// Builds the cache key in key and reports whether it fits.
function writeKey(): bool {
  key.reset();
  key.bytes(KEY_PREFIX);
  key.property(PROP_CLIENT_ADDR);
  key.bytes(COLON);
  writeSender(key);
  return key.ok;
}

// Returns the code of the gateway's or the cached result, or -1 when
// only outcome() can tell: a cache miss, or a result of another name.
// It runs no loop and allocates nothing.
function knownResult(): i32 {
  const g = host.get_property(PROP_SPF, value, VALUE_CAP);
  if (g > 0) return resultCode(value, min(g, VALUE_CAP));
  if (!writeKey()) return -1;
  const v = host.kv_get(key.start, key.len, value, VALUE_CAP);
  if (v < 0) return -1;
  return resultCode(value, min(v, VALUE_CAP));
}

// Returns the cached value under key, or null.
function cachedValue(): string | null {
  const v = host.kv_get(key.start, key.len, value, VALUE_CAP);
  if (v < 0) return null;
  if (v <= VALUE_CAP) return String.UTF8.decodeUnsafe(value, v);
  const whole = new ArrayBuffer(v);
  const n = host.kv_get(key.start, key.len, changetype<usize>(whole), v);
  return n == v ? String.UTF8.decode(whole) : null;
}

// An SPF result and, for a fail, the domain's explanation or "".
class Outcome {
  result: string = NONE;
  explanation: string = "";
}

// Parses a cached outcome: the result, then a space and the explanation.
function parseOutcome(s: string): Outcome {
  const o = new Outcome();
  const sp = s.indexOf(" ");
  o.result = sp < 0 ? s : s.substring(0, sp);
  if (sp >= 0) o.explanation = s.substring(sp + 1);
  return o;
}

// The SPF outcome for this client and sender, from the gateway, the
// cache, or a fresh check.
function outcome(): Outcome {
  const gateway = lg.spf();
  if (gateway.length > 0) return parseOutcome(gateway);
  const identity = sender();
  const domain = domainOf(identity);
  if (domain.length == 0) return new Outcome();
  // The key keeps the identity's case, so that knownResult builds it
  // without a loop; a sender spelt in two cases is checked twice.
  const keyed = writeKey();
  if (keyed) {
    const cached = cachedValue();
    if (cached != null) return parseOutcome(cached);
  }

  const addr = lg.clientAddr();
  const ip = parseAddr(addr);
  if (ip == null) return new Outcome();
  const e = new Evaluation(ip, addr, identity, lg.helo(), receiver);
  const o = new Outcome();
  o.result = e.checkHost(domain);
  if (o.result == FAIL) o.explanation = e.explanation.substring(0, MAX_EXPLANATION);
  if (keyed) {
    // A temperror is retried soon: the sender's DNS may recover.
    const v = String.UTF8.encode(o.explanation.length > 0 ? o.result + " " + o.explanation : o.result);
    host.kv_set(key.start, key.len, changetype<usize>(v), v.byteLength, o.result == TEMPERROR ? 60 : cacheSeconds);
  }
  return o;
}

export function lambgate_on_mail(): Action {
  const known = knownResult();
  if (known >= 0 && kinds[known] != REJECT && kinds[known] != TEMPFAIL) return Action.Continue;

  const o = outcome();
  const r = o.result;
  const what = actionFor(r);
  if (what == "reject") {
    // RFC 7372: 5.7.23 SPF validation failed, 5.7.24 SPF validation error.
    const code = r == PERMERROR ? "5.7.24" : "5.7.23";
    const domain = domainOf(sender());
    let text = "SPF check " + r + " for " + domain + " from " + lg.clientAddr();
    // RFC 7208 section 6.2: make clear that the text comes from the domain.
    if (o.explanation.length > 0) text += "; " + domain + " explains: " + o.explanation;
    return lg.rejectWith(550, code, text);
  }
  if (what == "tempfail") {
    return lg.tempfailWith(451, "4.7.24", "SPF check " + r + " for " + domainOf(sender()) + ", try again later");
  }
  return Action.Continue;
}

export function lambgate_on_headers(): Action {
  const code = knownResult();
  if (code >= 0 && writeReceivedSPF(code)) {
    host.add_header(changetype<usize>(RECEIVED_SPF), RECEIVED_SPF.byteLength, received.start, received.len);
    const kind = kinds[code];
    if (kind == TAG || kind == QUARANTINE) host.add_tag(changetype<usize>(tags[code]), tags[code].byteLength);
    return kind == QUARANTINE ? Action.Quarantine : Action.Continue;
  }

  const r = outcome().result;
  lg.addHeader("Received-SPF", r + " client-ip=" + lg.clientAddr() + "; envelope-from=\"" + sender() +
    "\"; helo=" + lg.helo() + ";");
  const what = actionFor(r);
  if (what == "tag") {
    lg.addTag("spf-" + r);
  } else if (what == "quarantine") {
    lg.addTag("spf-" + r);
    return Action.Quarantine;
  }
  return Action.Continue;
}

// Builds the Received-SPF value for a result in received, as the string
// path in lambgate_on_headers does, and reports whether it fits.
function writeReceivedSPF(code: i32): bool {
  received.reset();
  received.bytes(resultBytes[code]);
  received.bytes(CLIENT_IP);
  received.property(PROP_CLIENT_ADDR);
  received.bytes(ENVELOPE_FROM);
  writeSender(received);
  received.bytes(HELO);
  received.property(PROP_HELO);
  received.bytes(SEMICOLON);
  return received.ok;
}
