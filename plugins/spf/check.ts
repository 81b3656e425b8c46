// RFC 7208 check_host for the spf plugin: mechanisms all, include, a, mx,
// ip4, ip6, exists and ptr (never matches), the redirect and exp
// modifiers, the DNS lookup limits of section 4.6.4, and the macros of
// section 7 (macro.ts).
import * as lg from "../../sdk/assemblyscript/lambgate";
import { ipv6Groups } from "../../sdk/assemblyscript/lambgate/ip";
import { MacroValues, expandDomainSpec, expandMacros } from "./macro";

export const NONE = "none";
export const NEUTRAL = "neutral";
export const PASS = "pass";
export const FAIL = "fail";
export const SOFTFAIL = "softfail";
export const TEMPERROR = "temperror";
export const PERMERROR = "permerror";

const MAX_DNS_MECHANISMS = 10;
const MAX_VOID_LOOKUPS = 2;
const MAX_MX_HOSTS = 10;

// Mechanism outcomes.
const MATCH = 1;
const NO_MATCH = 0;
const PERM = -1;
const TEMP = -2;

// An IP address as 16 bytes; IPv4 uses the first 4.
export class Addr {
  v6: bool = false;
  bytes: Uint8Array = new Uint8Array(16);
}

// Parses dotted IPv4 or IPv6 text, or returns null.
export function parseAddr(s: string): Addr | null {
  const a = new Addr();
  if (s.indexOf(":") >= 0) {
    const groups = ipv6Groups(s);
    if (groups.length != 8) return null;
    a.v6 = true;
    for (let i = 0; i < 8; i++) {
      a.bytes[2 * i] = <u8>(groups[i] >> 8);
      a.bytes[2 * i + 1] = <u8>(groups[i] & 0xff);
    }
    return a;
  }
  const octets = s.split(".");
  if (octets.length != 4) return null;
  for (let i = 0; i < 4; i++) {
    const o = octets[i];
    if (o.length == 0 || o.length > 3) return null;
    for (let j = 0; j < o.length; j++) {
      const c = o.charCodeAt(j);
      if (c < 0x30 || c > 0x39) return null;
    }
    const n = I32.parseInt(o);
    if (n > 255) return null;
    a.bytes[i] = <u8>n;
  }
  return a;
}

// Reports whether a and b agree in their first bits bits (same family).
function samePrefix(a: Addr, b: Addr, bits: i32): bool {
  if (a.v6 != b.v6) return false;
  const full = bits >> 3;
  for (let i = 0; i < full; i++) {
    if (a.bytes[i] != b.bytes[i]) return false;
  }
  const rest = bits & 7;
  if (rest == 0) return true;
  const mask = <u8>(<i32>0xff << (8 - rest));
  return (a.bytes[full] & mask) == (b.bytes[full] & mask);
}

// Parses a dual CIDR suffix ("", "/24", "//64", "/24//64") into
// [ipv4 bits, ipv6 bits], or returns an empty array when it is invalid.
function dualCIDR(s: string): i32[] {
  const out: i32[] = [32, 128];
  if (s.length == 0) return out;
  const dbl = s.indexOf("//");
  const v4 = dbl < 0 ? s : s.substring(0, dbl);
  if (v4.length > 0) {
    const n = digits(v4.substring(1));
    if (n < 0 || n > 32) return [];
    out[0] = n;
  }
  if (dbl >= 0) {
    const n = digits(s.substring(dbl + 2));
    if (n < 0 || n > 128) return [];
    out[1] = n;
  }
  return out;
}

// Parses a decimal number of 1-3 digits, or returns -1.
function digits(s: string): i32 {
  if (s.length == 0 || s.length > 3) return -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  return I32.parseInt(s);
}

// One check_host run with its lookup budget, shared by include and
// redirect.
export class Evaluation {
  ip: Addr;
  macros: MacroValues = new MacroValues();
  dnsTerms: i32 = 0;
  voids: i32 = 0;
  lookupStatus: i32 = 0; // MATCH (ok), PERM or TEMP after lookup()
  includeDepth: i32 = 0;
  // The expanded exp= text of the record that failed, "" when it has none
  // or it could not be fetched.
  explanation: string = "";

  // receiver is the %{r} value of explanations: this gateway's name.
  constructor(ip: Addr, ipText: string, sender: string, helo: string, receiver: string) {
    this.ip = ip;
    const at = sender.lastIndexOf("@");
    const m = this.macros;
    m.sender = sender;
    m.local = at > 0 ? sender.substring(0, at) : "postmaster";
    m.senderDomain = sender.substring(at + 1);
    m.ipDotted = macroIP(ip, ipText);
    m.ipText = ipText;
    m.v6 = ip.v6;
    m.helo = helo;
    if (receiver.length > 0) m.receiver = receiver;
  }

  checkHost(domain: string): string {
    const txts = lg.lookup(lg.DNS.TXT, domain);
    const st = lg.lastStatus();
    if (st == lg.Status.NotFound) return NONE;
    if (st != lg.Status.OK) return TEMPERROR;
    let record = "";
    let found = 0;
    for (let i = 0; i < txts.length; i++) {
      const lower = txts[i].toLowerCase();
      if (lower == "v=spf1" || lower.startsWith("v=spf1 ")) {
        record = txts[i];
        found++;
      }
    }
    if (found == 0) return NONE;
    if (found > 1) return PERMERROR;

    // Modifiers may stand anywhere in the record (exp= usually follows
    // -all), so they are collected before any mechanism runs.
    let redirect = "";
    let exp = "";
    let modifiers = 0; // bit 1: redirect seen, bit 2: exp seen
    const mechanisms = new Array<string>();
    const terms = record.split(" ");
    for (let i = 1; i < terms.length; i++) {
      const term = terms[i];
      if (term.length == 0) continue;
      const lower = term.toLowerCase();
      const eq = lower.indexOf("=");
      const name = eq > 0 ? lower.substring(0, eq) : "";
      if (eq <= 0 || name.indexOf(":") >= 0 || name.indexOf("/") >= 0) {
        mechanisms.push(term);
        continue;
      }
      // Unknown modifiers are ignored, and redirect and exp may each
      // appear once (section 6).
      let bit = 0;
      if (name == "redirect") bit = 1;
      if (name == "exp") bit = 2;
      if ((modifiers & bit) != 0) return PERMERROR;
      modifiers |= bit;
      if (bit == 1) redirect = term.substring(eq + 1);
      if (bit == 2) exp = term.substring(eq + 1);
    }

    for (let i = 0; i < mechanisms.length; i++) {
      let term = mechanisms[i];
      let qualifier = PASS;
      const q = term.charAt(0);
      if (q == "+") {
        term = term.substring(1);
      } else if (q == "-") {
        qualifier = FAIL;
        term = term.substring(1);
      } else if (q == "~") {
        qualifier = SOFTFAIL;
        term = term.substring(1);
      } else if (q == "?") {
        qualifier = NEUTRAL;
        term = term.substring(1);
      }
      const m = this.mechanism(term, domain);
      if (m == PERM) return PERMERROR;
      if (m == TEMP) return TEMPERROR;
      if (m != MATCH) continue;
      // An included record's exp= is never used (section 5.2).
      if (qualifier == FAIL && exp.length > 0 && this.includeDepth == 0) {
        this.explanation = this.explain(exp, domain);
      }
      return qualifier;
    }

    if (redirect.length == 0) return NEUTRAL;
    if (++this.dnsTerms > MAX_DNS_MECHANISMS) return PERMERROR;
    const target = this.expand(redirect, domain);
    if (target == null) return PERMERROR;
    const r = this.checkHost(target);
    return r == NONE ? PERMERROR : r;
  }

  mechanism(term: string, domain: string): i32 {
    const colon = term.indexOf(":");
    let name = (colon < 0 ? term : term.substring(0, colon)).toLowerCase();
    let arg = colon < 0 ? "" : term.substring(colon + 1);
    let cidr = "";
    const slash = name.indexOf("/");
    if (slash >= 0) {
      cidr = name.substring(slash); // "a/24", "mx//64"
      name = name.substring(0, slash);
    }
    if ((name == "a" || name == "mx") && arg.length > 0) {
      const s = arg.indexOf("/");
      if (s >= 0) {
        cidr = arg.substring(s);
        arg = arg.substring(0, s);
      }
    }

    if (name == "all") return MATCH;
    if (name == "ip4" || name == "ip6") return this.ipMatch(arg);

    if (++this.dnsTerms > MAX_DNS_MECHANISMS) return PERM;
    let target = domain;
    if (arg.length > 0) {
      const t = this.expand(arg, domain);
      if (t == null) return PERM;
      target = t;
    }
    if (name == "include") {
      if (arg.length == 0) return PERM;
      this.includeDepth++;
      const r = this.checkHost(target);
      this.includeDepth--;
      if (r == PASS) return MATCH;
      if (r == TEMPERROR) return TEMP;
      if (r == PERMERROR || r == NONE) return PERM;
      return NO_MATCH;
    }
    if (name == "a") return this.addressMatch(target, cidr);
    if (name == "mx") {
      const hosts = this.lookup(lg.DNS.MX, target);
      if (this.lookupStatus != MATCH) return this.lookupStatus;
      if (hosts.length > MAX_MX_HOSTS) return PERM;
      for (let i = 0; i < hosts.length; i++) {
        let host = hosts[i].substring(hosts[i].indexOf(" ") + 1);
        if (host.endsWith(".")) host = host.substring(0, host.length - 1);
        const m = this.addressMatch(host, cidr);
        if (m != NO_MATCH) return m;
      }
      return NO_MATCH;
    }
    if (name == "exists") {
      const addrs = this.lookup(lg.DNS.A, target);
      if (this.lookupStatus != MATCH) return this.lookupStatus;
      return addrs.length > 0 ? MATCH : NO_MATCH;
    }
    // RFC 7208 section 5.5 tells senders not to use ptr, so it never
    // matches here.
    if (name == "ptr") return NO_MATCH;
    return PERM;
  }

  ipMatch(arg: string): i32 {
    const slash = arg.indexOf("/");
    const net = parseAddr(slash < 0 ? arg : arg.substring(0, slash));
    if (net == null) return PERM;
    let bits = net.v6 ? 128 : 32;
    if (slash >= 0) {
      bits = digits(arg.substring(slash + 1));
      if (bits < 0 || bits > (net.v6 ? 128 : 32)) return PERM;
    }
    return samePrefix(this.ip, net, bits) ? MATCH : NO_MATCH;
  }

  // Whether the client is among host's addresses of its own family,
  // widened to the dual CIDR length.
  addressMatch(host: string, cidr: string): i32 {
    const bits = dualCIDR(cidr);
    if (bits.length == 0) return PERM;
    const addrs = this.lookup(this.ip.v6 ? lg.DNS.AAAA : lg.DNS.A, host);
    if (this.lookupStatus != MATCH) return this.lookupStatus;
    for (let i = 0; i < addrs.length; i++) {
      const a = parseAddr(addrs[i]);
      if (a != null && samePrefix(this.ip, a, this.ip.v6 ? bits[1] : bits[0])) return MATCH;
    }
    return NO_MATCH;
  }

  // Resolves a name, counting an empty result or NXDOMAIN against the
  // void lookup limit. lookupStatus is MATCH when the caller may go on.
  lookup(rtype: i32, name: string): string[] {
    const answers = lg.lookup(rtype, name);
    const st = lg.lastStatus();
    this.lookupStatus = MATCH;
    if (st == lg.Status.NotFound) {
      if (++this.voids > MAX_VOID_LOOKUPS) this.lookupStatus = PERM;
      return new Array<string>();
    }
    if (st != lg.Status.OK) this.lookupStatus = TEMP;
    return answers;
  }

  // Expands a domain-spec, or returns null on a syntax error.
  expand(spec: string, domain: string): string | null {
    return expandDomainSpec(spec, domain, this.macros);
  }

  // Fetches and expands the explanation that exp= points to. Any failure
  // (DNS, not exactly one TXT record, a syntax error) gives no
  // explanation rather than an error, as section 6.2 requires. Section
  // 4.6.4 does not count this lookup against the DNS limits.
  explain(spec: string, domain: string): string {
    const target = this.expand(spec, domain);
    if (target == null || target.length == 0) return "";
    const txts = lg.lookup(lg.DNS.TXT, target);
    if (lg.lastStatus() != lg.Status.OK || txts.length != 1) return "";
    const text = txts[0];
    if (text.indexOf("{t") >= 0 || text.indexOf("{T") >= 0) this.macros.now = lg.nowMs() / 1000;
    const expanded = expandMacros(text, domain, this.macros, true);
    return expanded == null ? "" : expanded;
  }
}

// Writes an address as %{i} expands it: dotted IPv4, or IPv6 as 32
// dot-separated nibbles.
function macroIP(a: Addr, text: string): string {
  if (!a.v6) return text;
  const hex = "0123456789abcdef";
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i > 0) s += ".";
    s += hex.charAt(a.bytes[i] >> 4) + "." + hex.charAt(a.bytes[i] & 15);
  }
  return s;
}
