// The client's score: cached in the key-value store as "score:ADDR" =>
// "TOTAL|ZONES" (ZONES comma-separated), and looked up in the lists on a
// cache miss.
//
// The host's time limit makes every guest loop iteration cost a call into
// the host. The common case (a cached score of 0 to 9) therefore works on
// static buffers with no loop and no allocation, and strings are built
// only for a listed client.
import * as lg from "../../sdk/assemblyscript/lambgate";
import * as host from "../../sdk/assemblyscript/lambgate/host";
import { reverseName } from "../../sdk/assemblyscript/lambgate/ip";
import { cacheSeconds, lists } from "./config";

const PROP_CLIENT_ADDR = 1;
const KEY_PREFIX = "score:";
const ADDR_CAP = 64; // the longest IPv6 text is 45 bytes
// A cached value is read into VALUE_CAP bytes; a longer one (a client
// listed by many zones) is read again whole by listedZones.
const VALUE_CAP = 64;
// A reversed IPv6 address (64 bytes with its dots) and a DNS name of at
// most 253 bytes fit.
const NAME_CAP = 320;
const ANSWER_CAP = 512;

const key = memory.data(ADDR_CAP + 16);
const keyPrefixLen = <i32>String.UTF8.encodeUnsafe(changetype<usize>(KEY_PREFIX), KEY_PREFIX.length, key);
const value = memory.data(VALUE_CAP);
const name = memory.data(NAME_CAP);
const answers = memory.data(ANSWER_CAP);

// The cache key of the current call, and the zones of a score looked up
// in this call (a failed cache write leaves nothing to read back).
let keyLen = 0;
let freshListed: string | null = null;

// Returns the client's total score, from the cache when a recent lookup
// exists, or from the lists, caching the result.
export function score(): i32 {
  freshListed = null;
  const addr = key + keyPrefixLen;
  const n = host.get_property(PROP_CLIENT_ADDR, addr, ADDR_CAP);
  // Neither happens from the connect phase on: every session has a client
  // address, and its text is at most 45 bytes.
  if (n < 0 || n > ADDR_CAP) return 0;
  keyLen = keyPrefixLen + n;

  const v = host.kv_get(key, keyLen, value, VALUE_CAP);
  if (v >= 2 && load<u8>(value + 1) == 0x7c) {
    const d = <i32>load<u8>(value) - 0x30;
    if (d >= 0 && d <= 9) return d;
  }
  if (v >= 0) {
    const cached = lg.kvGet(String.UTF8.decodeUnsafe(key, keyLen));
    if (cached != null) return I32.parseInt(cached.substring(0, cached.indexOf("|")));
  }
  return lookupAndCache(addr, n);
}

// Returns the zones that listed the client, for the score that the last
// score() call returned.
export function listedZones(): string {
  if (freshListed != null) return freshListed!;
  const cached = lg.kvGet(String.UTF8.decodeUnsafe(key, keyLen));
  if (cached == null) return "";
  return cached.substring(cached.indexOf("|") + 1);
}

function lookupAndCache(addr: usize, n: i32): i32 {
  let total = 0;
  let listed = "";
  const revLen = reversed(addr, n);
  for (let i = 0; revLen > 0 && i < lists.length; i++) {
    const l = lists[i];
    // A zone too long for a DNS name cannot list the client.
    if (revLen + l.zoneBytes.byteLength > NAME_CAP) continue;
    memory.copy(name + revLen, changetype<usize>(l.zoneBytes), l.zoneBytes.byteLength);
    if (!listedBy(revLen + l.zoneBytes.byteLength)) continue;
    total += l.weight;
    listed += (listed.length > 0 ? "," : "") + l.zone;
  }

  if (total == 0 && listed.length == 0) {
    store<u16>(value, 0x7c30); // "0|"
    host.kv_set(key, keyLen, value, 2, cacheSeconds);
  } else {
    lg.kvSet(String.UTF8.decodeUnsafe(key, keyLen), total.toString() + "|" + listed, cacheSeconds);
  }
  freshListed = listed;
  return total;
}

// Writes the DNSBL query label of the address and a dot ("1.2.0.192.")
// into name and returns its length, or 0 when the address is invalid.
function reversed(addr: usize, n: i32): i32 {
  const v4 = reverseIPv4(addr, n, name);
  if (v4 >= 0) return v4;
  const rev = reverseName(String.UTF8.decodeUnsafe(addr, n));
  if (rev.length == 0) return 0;
  const len = <i32>String.UTF8.encodeUnsafe(changetype<usize>(rev), rev.length, name);
  store<u8>(name + len, 0x2e);
  return len + 1;
}

// Writes a dotted IPv4 address's octets in reverse order, each followed
// by a dot, at out. Returns the length, or -1 when the text is not four
// dot-separated fields.
function reverseIPv4(addr: usize, n: i32, out: usize): i32 {
  if (n < 7 || n > 15) return -1;
  let w = 0;
  let end = n;
  let dots = 0;
  for (let i = n - 1; i >= -1; i--) {
    if (i >= 0 && load<u8>(addr + i) != 0x2e) continue;
    const len = end - i - 1;
    if (len == 0) return -1;
    memory.copy(out + w, addr + i + 1, len);
    store<u8>(out + w + len, 0x2e);
    w += len + 1;
    end = i;
    if (i >= 0) dots++;
  }
  return dots == 3 ? w : -1;
}

// Looks up the name of nameLen bytes in name and reports whether an
// answer is a listing. Answers outside 127/8 are not listings, and
// 127.255.255.0/24 are the lists' own error codes (for example Spamhaus
// refusing queries from public resolvers). NXDOMAIN, the common answer,
// costs no parsing.
function listedBy(nameLen: i32): bool {
  const r = host.dns_lookup(lg.DNS.A, name, nameLen, answers, ANSWER_CAP);
  if (r <= 0) return false;
  const text = r <= ANSWER_CAP
    ? String.UTF8.decodeUnsafe(answers, r)
    : lg.lookup(lg.DNS.A, String.UTF8.decodeUnsafe(name, nameLen)).join("\n");
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith("127.") && !lines[i].startsWith("127.255.255.")) return true;
  }
  return false;
}
