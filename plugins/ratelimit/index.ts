// ratelimit counts transactions (MAIL FROM) per client address in fixed
// windows and tempfails the ones over the limit. IPv6 clients are counted
// per /64, since one host usually owns the whole prefix. Counters live in
// the plugin's key-value store, so they survive reloads and restarts.
//
// The host's time limit makes every guest loop iteration cost a call into
// the host, so the common case (an IPv4 client under its limit) builds the
// counter key in a static buffer and runs no loop and no allocation.
import * as lg from "../../sdk/assemblyscript/lambgate";
import * as host from "../../sdk/assemblyscript/lambgate/host";
import { Action } from "../../sdk/assemblyscript/lambgate";
import { rateKey } from "../../sdk/assemblyscript/lambgate/ip";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

const PROP_CLIENT_ADDR = 1;
const KEY_PREFIX = "mail:";
const KEY_CAP = 64; // "mail:" and the longest IPv6 text (45 bytes) fit

// Settings are configuration, fixed for the instance's lifetime (a changed
// manifest loads a new plugin), so they are read once when the instance
// starts.
const limit = lg.settingInt("max_messages", 100);
const window = lg.settingInt("window_seconds", 3600);
const exempt = encodeAll(lg.settingList("exempt"));

// The counter key: KEY_PREFIX, then the client address written there by
// the host.
const key = memory.data(KEY_CAP);
const prefixLen = <i32>String.UTF8.encodeUnsafe(changetype<usize>(KEY_PREFIX), KEY_PREFIX.length, key);
const counter = memory.data(8);

function encodeAll(items: string[]): ArrayBuffer[] {
  const out = new Array<ArrayBuffer>();
  for (let i = 0; i < items.length; i++) out.push(String.UTF8.encode(items[i]));
  return out;
}

export function lambgate_on_mail(): Action {
  const addr = key + prefixLen;
  const n = host.get_property(PROP_CLIENT_ADDR, addr, KEY_CAP - prefixLen);
  // Neither happens in the mail phase: the host's address text is at most
  // 45 bytes and every session has a client address.
  if (n < 0 || n > KEY_CAP - prefixLen) return Action.Continue;
  // Entering a loop costs a host call even when it runs no iteration, so
  // an empty list skips it.
  if (exempt.length > 0 && isExempt(addr, n)) return Action.Continue;

  let st: i32;
  if (isIPv4(addr, n)) {
    st = host.kv_incr(key, prefixLen + n, 1, window, counter);
  } else {
    const k = String.UTF8.encode(KEY_PREFIX + rateKey(lg.clientAddr()));
    st = host.kv_incr(changetype<usize>(k), k.byteLength, 1, window, counter);
  }
  if (st != lg.Status.OK) {
    // The store is full or unavailable: let the mail through rather than
    // block everyone.
    lg.log(lg.Level.Warn, "counter unavailable, status " + st.toString());
    return Action.Continue;
  }
  const count = load<i64>(counter);
  if (count <= <i64>limit) return Action.Continue;
  if (count == <i64>limit + 1) {
    lg.log(lg.Level.Info, "client " + lg.clientAddr() + " reached " + limit.toString() + " messages in " +
      window.toString() + " s");
  }
  return lg.tempfailWith(451, "4.7.1", "Too many messages from your address, try again later");
}

// Reports whether the host's text of an address is IPv4. Dotted IPv4 has
// a dot among its first four bytes, and the host's IPv6 text (compressed,
// IPv4-mapped addresses unmapped) has none, so no loop is needed.
function isIPv4(addr: usize, n: i32): bool {
  if (n < 7) return false;
  return load<u8>(addr + 1) == 0x2e || load<u8>(addr + 2) == 0x2e || load<u8>(addr + 3) == 0x2e;
}

function isExempt(addr: usize, n: i32): bool {
  for (let i = 0; i < exempt.length; i++) {
    const e = exempt[i];
    if (e.byteLength == n && memory.compare(changetype<usize>(e), addr, n) == 0) return true;
  }
  return false;
}
