// dnsbl looks the client address up in DNS blocklists (RFC 5782) and adds
// the weights of the lists that list it. It rejects at connect when the
// score reaches reject_score, and tags the message in the headers phase
// when the score reaches tag_score. Scores are cached in the key-value
// store for cache_seconds, so the headers phase costs no second round of
// lookups.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Action } from "../../sdk/assemblyscript/lambgate";
import { rejectScore, tagScore } from "./config";
import { listedZones, score } from "./score";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

export function lambgate_on_connect(): Action {
  if (rejectScore <= 0) return Action.Continue;
  const total = score();
  if (total < rejectScore) return Action.Continue;
  const listed = listedZones();
  lg.log(lg.Level.Info, "rejected " + lg.clientAddr() + ": listed by " + listed);
  return lg.rejectWith(554, "5.7.1", "Service unavailable; client host [" + lg.clientAddr() + "] blocked using " + listed);
}

export function lambgate_on_headers(): Action {
  if (tagScore <= 0) return Action.Continue;
  const total = score();
  if (total < tagScore) return Action.Continue;
  lg.addHeader("X-Lambgate-DNSBL", "score=" + total.toString() + " listed=" + listedZones());
  lg.addTag("dnsbl");
  return Action.Continue;
}
