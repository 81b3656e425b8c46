// SPF macro expansion (RFC 7208 section 7): %{letter transformers
// delimiters}, %%, %_ and %-, with URL escaping for upper-case letters.

// The values macros expand to during one check_host run.
export class MacroValues {
  sender: string = ""; // <sender>, local@domain
  local: string = ""; // its local part ("postmaster" when it has none)
  senderDomain: string = ""; // its domain
  ipDotted: string = ""; // %{i}: dotted IPv4, or IPv6 as 32 dotted nibbles
  ipText: string = ""; // %{c}: IPv4 dotted, IPv6 compressed
  v6: bool = false;
  helo: string = "";
  receiver: string = "unknown"; // %{r}: the host performing the check
  now: i64 = 0; // %{t}: Unix seconds; only read in explanations
}

// RFC 7208 section 7.3 requires a longer name to be cut from the left,
// label by label.
const MAX_DOMAIN_LENGTH = 253;

// Expands a macro-string for the current domain. An explanation (the
// exp= TXT record) may contain spaces and the letters c, r and t; a
// domain-spec may not. Returns null on a syntax error, which makes a
// domain-spec a permerror and drops an explanation.
export function expandMacros(
  spec: string, domain: string, values: MacroValues, explanation: bool,
): string | null {
  let out = "";
  let i = 0;
  while (i < spec.length) {
    const c = spec.charCodeAt(i);
    if (c != 0x25) {
      // A macro-literal is visible ASCII, and an explain-string may also
      // contain spaces.
      if (c < 0x21 || c > 0x7e) {
        if (!(explanation && c == 0x20)) return null;
      }
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    if (i + 1 >= spec.length) return null;
    const k = spec.charCodeAt(i + 1);
    if (k == 0x25) {
      out += "%";
      i += 2;
      continue;
    }
    if (k == 0x5f) {
      out += " ";
      i += 2;
      continue;
    }
    if (k == 0x2d) {
      out += "%20";
      i += 2;
      continue;
    }
    if (k != 0x7b) return null;
    const close = spec.indexOf("}", i + 2);
    if (close < 0) return null;
    const expanded = expandOne(spec.substring(i + 2, close), domain, values, explanation);
    if (expanded == null) return null;
    out += expanded;
    i = close + 1;
  }
  return out;
}

// Expands a domain-spec into a DNS name: the macro-string expanded, then
// cut from the left to 253 characters. Returns null on a syntax error,
// including a spec that does not end in "." and a top label or in a
// macro.
export function expandDomainSpec(spec: string, domain: string, values: MacroValues): string | null {
  if (!validDomainEnd(spec)) return null;
  // The common case: no macros to expand.
  if (spec.indexOf("%") < 0 && visibleASCII(spec)) return truncateDomain(spec);
  const name = expandMacros(spec, domain, values, false);
  if (name == null) return null;
  return truncateDomain(name);
}

// Expands one "%{...}" body: a letter, transformers (digits, then an
// optional "r") and delimiters.
function expandOne(
  body: string, domain: string, values: MacroValues, explanation: bool,
): string | null {
  if (body.length == 0) return null;
  const letter = body.charCodeAt(0);
  const upper = letter >= 0x41 && letter <= 0x5a;
  const value = macroValue(upper ? letter + 0x20 : letter, domain, values, explanation);
  if (value == null) return null;

  // Digits give how many right-hand parts to keep, and keep = 0 means
  // all. A count of zero is invalid. Counts are capped at 1000 so that a
  // long run of digits cannot overflow, and SMTP paths and names are too
  // short to have that many parts.
  let i = 1;
  let keep = 0;
  let hasDigits = false;
  while (i < body.length && isDigit(body.charCodeAt(i))) {
    keep = min(keep * 10 + body.charCodeAt(i) - 0x30, 1000);
    hasDigits = true;
    i++;
  }
  if (hasDigits && keep == 0) return null;
  let reverse = false;
  if (i < body.length && (body.charCodeAt(i) | 0x20) == 0x72) {
    reverse = true;
    i++;
  }
  const delimiters = body.substring(i);
  for (let j = 0; j < delimiters.length; j++) {
    if (!isDelimiter(delimiters.charCodeAt(j))) return null;
  }

  let result = value;
  if (keep > 0 || reverse || delimiters.length > 0) {
    result = transform(value, delimiters.length > 0 ? delimiters : ".", keep, reverse);
  }
  return upper ? urlEscape(result) : result;
}

// Returns a macro letter's value (lower case letter), or null for a
// letter that is unknown or not allowed here.
function macroValue(
  letter: i32, domain: string, values: MacroValues, explanation: bool,
): string | null {
  if (letter == 0x73) return values.sender; // s
  if (letter == 0x6c) return values.local; // l
  if (letter == 0x6f) return values.senderDomain; // o
  if (letter == 0x64) return domain; // d
  if (letter == 0x69) return values.ipDotted; // i
  // p is the client's validated PTR name. Section 5.5 discourages it and
  // the host offers no PTR lookup, so it expands to the value the RFC
  // gives for a name that could not be validated.
  if (letter == 0x70) return "unknown";
  if (letter == 0x68) return values.helo; // h
  if (letter == 0x76) return values.v6 ? "ip6" : "in-addr"; // v
  if (!explanation) return null; // c, r and t appear only in exp= text
  if (letter == 0x63) return values.ipText; // c
  if (letter == 0x72) return values.receiver; // r
  if (letter == 0x74) return values.now.toString(); // t
  return null;
}

// Splits value on any of the delimiters, optionally reverses the parts,
// keeps the right-most keep parts (0 for all) and joins them with dots.
function transform(value: string, delimiters: string, keep: i32, reverse: bool): string {
  const parts = new Array<string>();
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    if (delimiters.indexOf(value.charAt(i)) >= 0) {
      parts.push(value.substring(start, i));
      start = i + 1;
    }
  }
  parts.push(value.substring(start));
  if (reverse) parts.reverse();
  const from = keep > 0 && keep < parts.length ? parts.length - keep : 0;
  return parts.slice(from).join(".");
}

// Percent-encodes every byte outside RFC 3986's unreserved set
// (ALPHA DIGIT - . _ ~), as section 7.3 requires for upper-case macros.
function urlEscape(s: string): string {
  const hex = "0123456789ABCDEF";
  const bytes = Uint8Array.wrap(String.UTF8.encode(s));
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = <i32>bytes[i];
    const unreserved = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || isDigit(b) ||
      b == 0x2d || b == 0x2e || b == 0x5f || b == 0x7e;
    if (unreserved) {
      out += String.fromCharCode(b);
    } else {
      out += "%" + hex.charAt(b >> 4) + hex.charAt(b & 15);
    }
  }
  return out;
}

// Cuts labels from the left until name fits in 253 characters.
function truncateDomain(name: string): string {
  while (name.length > MAX_DOMAIN_LENGTH) {
    const dot = name.indexOf(".");
    if (dot < 0) return name.substring(name.length - MAX_DOMAIN_LENGTH);
    name = name.substring(dot + 1);
  }
  return name;
}

// Reports whether a domain-spec ends as RFC 7208 section 7.1 requires:
// in a macro-expand, or in "." toplabel with an optional trailing dot. A
// top label is alphanumeric with at least one letter, or has inner
// hyphens, so "a:192.0.2.1" is rejected.
function validDomainEnd(spec: string): bool {
  if (spec.endsWith("}")) return true;
  if (spec.endsWith("%%") || spec.endsWith("%_") || spec.endsWith("%-")) return true;
  let s = spec;
  if (s.endsWith(".")) s = s.substring(0, s.length - 1);
  const dot = s.lastIndexOf(".");
  if (dot < 0) return false;
  const label = s.substring(dot + 1);
  if (label.length == 0) return false;
  let letters = 0;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    const alpha = (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a;
    if (alpha) letters++;
    else if (!isDigit(c) && c != 0x2d) return false;
  }
  if (label.charCodeAt(0) == 0x2d || label.charCodeAt(label.length - 1) == 0x2d) return false;
  return letters > 0 || label.indexOf("-") > 0;
}

function visibleASCII(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

// The delimiters of section 7.1: . - + , / _ =
function isDelimiter(c: i32): bool {
  return c == 0x2e || c == 0x2d || c == 0x2b || c == 0x2c || c == 0x2f || c == 0x5f || c == 0x3d;
}
