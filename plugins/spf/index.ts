// spf is the bundled SPF plugin (RFC 7208). At MAIL FROM it checks the
// envelope sender's domain (the HELO name for the null sender) for the
// client address, or takes the gateway's own result when the gateway
// checked already. It acts on the result as the settings specify, and in
// the headers phase it adds a Received-SPF header. Results are cached in
// the key-value store, so the second phase costs no lookups.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Action } from "../../sdk/assemblyscript/lambgate";
import { Evaluation, parseAddr, FAIL, NONE, PERMERROR, SOFTFAIL, TEMPERROR } from "./check";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

// Settings are read at an instance's first call: they are configuration,
// fixed for the instance's lifetime (a changed manifest loads a new plugin).
let actions: Map<string, string> | null = null;
let cacheSeconds: i32 = 600;

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

// The SPF result for this client and sender, from the gateway, the cache,
// or a fresh check.
function result(): string {
  const gateway = lg.spf();
  if (gateway.length > 0) return gateway;
  const identity = sender();
  const domain = domainOf(identity);
  if (domain.length == 0) return NONE;
  const addr = lg.clientAddr();
  const key = "spf:" + addr + ":" + identity.toLowerCase();
  const cached = lg.kvGet(key);
  if (cached != null) return cached;

  const ip = parseAddr(addr);
  if (ip == null) return NONE;
  actionFor(NONE); // reads cache_seconds with the other settings
  const e = new Evaluation(ip, addr, identity, lg.helo());
  const r = e.checkHost(domain);
  // A temperror is retried soon: the sender's DNS may recover.
  lg.kvSet(key, r, r == TEMPERROR ? 60 : cacheSeconds);
  return r;
}

export function lambgate_on_mail(): Action {
  const r = result();
  const what = actionFor(r);
  if (what == "reject") {
    // RFC 7372: 5.7.23 SPF validation failed, 5.7.24 SPF validation error.
    const code = r == PERMERROR ? "5.7.24" : "5.7.23";
    return lg.rejectWith(550, code, "SPF check " + r + " for " + domainOf(sender()) + " from " + lg.clientAddr());
  }
  if (what == "tempfail") {
    return lg.tempfailWith(451, "4.7.24", "SPF check " + r + " for " + domainOf(sender()) + ", try again later");
  }
  return Action.Continue;
}

export function lambgate_on_headers(): Action {
  const r = result();
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
