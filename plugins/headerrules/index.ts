// headerrules matches regular expressions against header fields and turns
// the first match into a verdict. Each rule is one line:
//
//   FIELD ACTION PATTERN
//
// FIELD is a header name ("*" for the raw header block), ACTION one of
// reject, tempfail, quarantine, discard, accept or tag:NAME (tag and go
// on), and PATTERN an RE2 expression (Go regexp syntax, "(?i)" for any
// case). Matching runs in the host, so rules cost no guest loop.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Action } from "../../sdk/assemblyscript/lambgate";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

class Rule {
  field: string = "";
  action: string = "";
  handle: i32 = -1;
}

// rules is parsed from the manifest once per instance; it is
// configuration, not transaction data, so any instance may keep it.
let rules: Rule[] | null = null;

function loadRules(): Rule[] {
  const out = new Array<Rule>();
  const lines = lg.settingList("rules");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const a = line.indexOf(" ");
    const b = a < 0 ? -1 : line.indexOf(" ", a + 1);
    if (b < 0) {
      lg.log(lg.Level.Error, "rule " + (i + 1).toString() + " is invalid, want FIELD ACTION PATTERN: " + line);
      continue;
    }
    const r = new Rule();
    r.field = line.substring(0, a);
    r.action = line.substring(a + 1, b);
    r.handle = lg.regexCompile(line.substring(b + 1));
    if (r.handle < 0) {
      lg.log(lg.Level.Error, "rule " + (i + 1).toString() + " has an invalid pattern: " + line.substring(b + 1));
      continue;
    }
    out.push(r);
  }
  return out;
}

function matches(r: Rule): bool {
  if (r.field == "*") return lg.regexMatchHeaders(r.handle);
  return lg.regexMatchHeader(r.handle, r.field);
}

export function lambgate_on_headers(): Action {
  if (rules == null) rules = loadRules();
  const rs = rules!;
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i];
    if (!matches(r)) continue;
    if (r.action.startsWith("tag:")) {
      lg.addTag(r.action.substring(4));
      continue;
    }
    if (r.action == "reject") {
      const text = lg.setting("reject_text");
      return lg.rejectWith(550, "5.7.1", text == null ? "Message rejected by content policy" : text);
    }
    if (r.action == "tempfail") return lg.tempfailWith(451, "4.7.1", "Message deferred by content policy");
    if (r.action == "quarantine") {
      lg.addTag("headerrules:" + (i + 1).toString());
      return Action.Quarantine;
    }
    if (r.action == "discard") return Action.Discard;
    if (r.action == "accept") return Action.Accept;
    lg.log(lg.Level.Error, "rule " + (i + 1).toString() + " has an unknown action: " + r.action);
  }
  return Action.Continue;
}
