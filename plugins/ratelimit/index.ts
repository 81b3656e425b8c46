// ratelimit counts transactions (MAIL FROM) per client address in fixed
// windows and tempfails the ones over the limit. IPv6 clients are counted
// per /64, since one host usually owns the whole prefix. Counters live in
// the plugin's key-value store, so they survive reloads and restarts.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Action } from "../../sdk/assemblyscript/lambgate";
import { rateKey } from "../../sdk/assemblyscript/lambgate/ip";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

// Settings are read at an instance's first call: they are configuration,
// fixed for the instance's lifetime (a changed manifest loads a new plugin).
let configured = false;
let limit: i32 = 0;
let window: i32 = 0;
let exempt: string[] = [];

export function lambgate_on_mail(): Action {
  if (!configured) {
    limit = lg.settingInt("max_messages", 100);
    window = lg.settingInt("window_seconds", 3600);
    exempt = lg.settingList("exempt");
    configured = true;
  }
  const addr = lg.clientAddr();
  for (let i = 0; i < exempt.length; i++) {
    if (exempt[i] == addr) return Action.Continue;
  }

  const n = lg.kvIncr("mail:" + rateKey(addr), 1, window);
  if (lg.lastStatus() != lg.Status.OK) {
    // The store is full or unavailable: let the mail through rather than
    // block everyone.
    lg.log(lg.Level.Warn, "counter unavailable, status " + lg.lastStatus().toString());
    return Action.Continue;
  }
  if (n <= <i64>limit) return Action.Continue;
  if (n == <i64>limit + 1) {
    lg.log(lg.Level.Info, "client " + addr + " reached " + limit.toString() + " messages in " + window.toString() + " s");
  }
  return lg.tempfailWith(451, "4.7.1", "Too many messages from your address, try again later");
}
