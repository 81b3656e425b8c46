// Address helpers for plugins that key on the client address: DNSBL
// names and IPv6 prefixes. Input is the host's text form (netip's
// String: dotted IPv4, or compressed IPv6).

// Expands an IPv6 address into its eight 16-bit groups, or returns an
// empty array when the text is not IPv6. An embedded dotted IPv4 tail
// ("::ffff:192.0.2.1") is not accepted: the host unmaps those to IPv4.
export function ipv6Groups(addr: string): u16[] {
  const out = new Array<u16>();
  if (addr.indexOf(":") < 0 || addr.indexOf(".") >= 0) return out;
  const halves = addr.split("::");
  if (halves.length > 2) return out;
  const head = halves[0].length > 0 ? halves[0].split(":") : new Array<string>();
  const tail = halves.length == 2 && halves[1].length > 0 ? halves[1].split(":") : new Array<string>();
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length == 1 && missing != 0)) return out;
  for (let i = 0; i < head.length; i++) out.push(<u16>I32.parseInt(head[i], 16));
  for (let i = 0; i < missing; i++) out.push(0);
  for (let i = 0; i < tail.length; i++) out.push(<u16>I32.parseInt(tail[i], 16));
  return out;
}

// Returns the DNSBL query label for an address: reversed octets for IPv4
// ("1.2.0.192"), reversed nibbles for IPv6 (RFC 5782), "" when invalid.
export function reverseName(addr: string): string {
  if (addr.indexOf(":") < 0) {
    const octets = addr.split(".");
    if (octets.length != 4) return "";
    return octets[3] + "." + octets[2] + "." + octets[1] + "." + octets[0];
  }
  const groups = ipv6Groups(addr);
  if (groups.length != 8) return "";
  const digits = "0123456789abcdef";
  let s = "";
  for (let i = 7; i >= 0; i--) {
    const g = <i32>groups[i];
    for (let shift = 0; shift < 16; shift += 4) {
      if (s.length > 0) s += ".";
      s += digits.charAt((g >> shift) & 15);
    }
  }
  return s;
}

// Returns the /64 prefix of an IPv6 address as text ("2001:db8:1:2::/64"),
// or the address itself for IPv4: one IPv6 host usually owns a whole /64.
export function rateKey(addr: string): string {
  const groups = ipv6Groups(addr);
  if (groups.length != 8) return addr;
  let s = "";
  for (let i = 0; i < 4; i++) s += groups[i].toString(16) + ":";
  return s + ":/64";
}
