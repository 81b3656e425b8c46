// spf is the bundled SPF plugin (RFC 7208). At MAIL FROM it checks the
// envelope sender's domain (the HELO name for the null sender) for the
// client address, or takes the gateway's own result when the gateway
// checked already. It acts on the result as the settings specify, and in
// the headers phase it adds a Received-SPF header. Results are cached in
// the key-value store, so the second phase costs no lookups. A fail
// reply quotes the sender domain's exp= explanation when it has one.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Action } from "../../sdk/assemblyscript/lambgate";
import { Evaluation, parseAddr, FAIL, NONE, PERMERROR, SOFTFAIL, TEMPERROR } from "./check";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

// Settings are read at an instance's first call: they are configuration,
// fixed for the instance's lifetime (a changed manifest loads a new plugin).
let actions: Map<string, string> | null = null;
let cacheSeconds: i32 = 600;
let receiver = "";

// The explanation is cut to this many characters before it is cached; the
// host cuts reply texts to 400 bytes anyway.
const MAX_EXPLANATION = 300;

// Returns the configured action for a result: reject, tempfail,
// quarantine, tag or continue.
function actionFor(result: string): string {
  if (actions == null) {
    const m = new Map<string, string>();
    const results = ["pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"];
    for (let i = 0; i < results.length; i++) {
      const a = lg.setting(results[i] + "_action");
      if (a != null) m.set(results[i], a);
    }
    if (!m.has(FAIL)) m.set(FAIL, "reject");
    if (!m.has(TEMPERROR)) m.set(TEMPERROR, "tempfail");
    if (!m.has(SOFTFAIL)) m.set(SOFTFAIL, "tag");
    cacheSeconds = lg.settingInt("cache_seconds", 600);
    const r = lg.setting("receiver");
    if (r != null) receiver = r;
    actions = m;
  }
  const m = actions!;
  return m.has(result) ? m.get(result) : "continue";
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
  const addr = lg.clientAddr();
  const key = "spf:" + addr + ":" + identity.toLowerCase();
  const cached = lg.kvGet(key);
  if (cached != null) return parseOutcome(cached);

  const ip = parseAddr(addr);
  if (ip == null) return new Outcome();
  actionFor(NONE); // reads cache_seconds and receiver with the other settings
  const e = new Evaluation(ip, addr, identity, lg.helo(), receiver);
  const o = new Outcome();
  o.result = e.checkHost(domain);
  if (o.result == FAIL) o.explanation = e.explanation.substring(0, MAX_EXPLANATION);
  // A temperror is retried soon: the sender's DNS may recover.
  const value = o.explanation.length > 0 ? o.result + " " + o.explanation : o.result;
  lg.kvSet(key, value, o.result == TEMPERROR ? 60 : cacheSeconds);
  return o;
}

export function lambgate_on_mail(): Action {
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
