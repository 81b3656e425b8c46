// dnsbl looks the client address up in DNS blocklists (RFC 5782) and adds
// the weights of the lists that list it. It rejects at connect when the
// score reaches reject_score, and tags the message in the headers phase
// when the score reaches tag_score. Scores are cached in the key-value store for
// cache_seconds, so the headers phase costs no second round of lookups.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Action } from "../../sdk/assemblyscript/lambgate";
import { reverseName } from "../../sdk/assemblyscript/lambgate/ip";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

class List {
  zone: string = "";
  weight: i32 = 1;
}

// Settings are read at an instance's first call: they are configuration,
// fixed for the instance's lifetime (a changed manifest loads a new plugin).
let lists: List[] | null = null;
let rejectScore: i32 = 0;
let tagScore: i32 = 0;
let cacheSeconds: i32 = 0;

function configure(): List[] {
  if (lists != null) return lists!;
  const out = new Array<List>();
  const entries = lg.settingList("lists");
  for (let i = 0; i < entries.length; i++) {
    // Each entry is "zone" or "zone=weight"; the weight defaults to 1.
    const entry = entries[i];
    const eq = entry.indexOf("=");
    const l = new List();
    l.zone = eq < 0 ? entry : entry.substring(0, eq);
    l.weight = eq < 0 ? 1 : I32.parseInt(entry.substring(eq + 1));
    out.push(l);
  }
  rejectScore = lg.settingInt("reject_score", 0);
  tagScore = lg.settingInt("tag_score", 1);
  cacheSeconds = lg.settingInt("cache_seconds", 300);
  lists = out;
  return out;
}

class Score {
  total: i32 = 0;
  listed: string = ""; // comma-separated zones that listed the client
}

// Returns whether a DNSBL answer is a listing. Answers outside 127/8
// are not listings, and 127.255.255.0/24 are the lists' own error codes
// (for example Spamhaus refusing queries from public resolvers).
function isListing(answer: string): bool {
  return answer.startsWith("127.") && !answer.startsWith("127.255.255.");
}

function lookupScore(addr: string): Score {
  const s = new Score();
  const rev = reverseName(addr);
  if (rev.length == 0) return s;
  const ls = configure();
  for (let i = 0; i < ls.length; i++) {
    const answers = lg.lookup(lg.DNS.A, rev + "." + ls[i].zone);
    for (let j = 0; j < answers.length; j++) {
      if (isListing(answers[j])) {
        s.total += ls[i].weight;
        s.listed += (s.listed.length > 0 ? "," : "") + ls[i].zone;
        break;
      }
    }
  }
  return s;
}

// Returns the client's score, from the cache when a recent lookup exists.
function score(): Score {
  const addr = lg.clientAddr();
  const key = "score:" + addr;
  const cached = lg.kvGet(key);
  if (cached != null) {
    const s = new Score();
    const bar = cached.indexOf("|");
    s.total = I32.parseInt(cached.substring(0, bar));
    s.listed = cached.substring(bar + 1);
    return s;
  }
  const s = lookupScore(addr);
  lg.kvSet(key, s.total.toString() + "|" + s.listed, cacheSeconds);
  return s;
}

export function lambgate_on_connect(): Action {
  configure();
  if (rejectScore <= 0) return Action.Continue;
  const s = score();
  if (s.total < rejectScore) return Action.Continue;
  lg.log(lg.Level.Info, "rejected " + lg.clientAddr() + ": listed by " + s.listed);
  return lg.rejectWith(554, "5.7.1", "Service unavailable; client host [" + lg.clientAddr() + "] blocked using " + s.listed);
}

export function lambgate_on_headers(): Action {
  configure();
  if (tagScore <= 0) return Action.Continue;
  const s = score();
  if (s.total < tagScore) return Action.Continue;
  lg.addHeader("X-Lambgate-DNSBL", "score=" + s.total.toString() + " listed=" + s.listed);
  lg.addTag("dnsbl");
  return Action.Continue;
}
