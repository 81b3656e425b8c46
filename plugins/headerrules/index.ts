// headerrules matches regular expressions against header fields and turns
// the first match into a verdict. Each rule is one line:
//
//   FIELD ACTION PATTERN
//
// FIELD is a header name ("*" for the raw header block), ACTION one of
// reject, tempfail, quarantine, discard, accept or tag:NAME (tag and go
// on), and PATTERN an RE2 expression (Go regexp syntax, "(?i)" for any
// case). Matching runs in the host, so rules cost no guest loop. The
// rules are parsed and compiled once when an instance starts, so a
// callback makes one regex_match call per rule and builds no string until
// a rule matches.
import * as lg from "../../sdk/assemblyscript/lambgate";
import * as host from "../../sdk/assemblyscript/lambgate/host";
import { Action } from "../../sdk/assemblyscript/lambgate";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

// regex_match targets (sdk/ABI.md).
const TARGET_HEADERS = 1;
const TARGET_HEADER_FIELD = 3;

// Rule kinds: the verdict or edit of a matching rule.
const TAG = 0;
const REJECT = 1;
const TEMPFAIL = 2;
const QUARANTINE = 3;
const DISCARD = 4;
const ACCEPT = 5;
const UNKNOWN = 6;

class Rule {
  target: i32 = TARGET_HEADER_FIELD;
  field: ArrayBuffer = new ArrayBuffer(0); // UTF-8, empty for "*"
  action: string = "";
  kind: i32 = UNKNOWN;
  handle: i32 = -1;
}

function kindOf(action: string): i32 {
  if (action.startsWith("tag:")) return TAG;
  if (action == "reject") return REJECT;
  if (action == "tempfail") return TEMPFAIL;
  if (action == "quarantine") return QUARANTINE;
  if (action == "discard") return DISCARD;
  if (action == "accept") return ACCEPT;
  return UNKNOWN;
}

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
    const field = line.substring(0, a);
    if (field == "*") {
      r.target = TARGET_HEADERS;
    } else {
      r.field = String.UTF8.encode(field);
    }
    r.action = line.substring(a + 1, b);
    r.kind = kindOf(r.action);
    r.handle = lg.regexCompile(line.substring(b + 1));
    if (r.handle < 0) {
      lg.log(lg.Level.Error, "rule " + (i + 1).toString() + " has an invalid pattern: " + line.substring(b + 1));
      continue;
    }
    out.push(r);
  }
  return out;
}

// Rules are configuration, fixed for an instance's lifetime (a changed
// manifest loads a new plugin), so any instance may keep them.
const rules = loadRules();
const rejectText = lg.setting("reject_text");

export function lambgate_on_headers(): Action {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    if (host.regex_match(r.handle, r.target, changetype<usize>(r.field), r.field.byteLength) != 1) continue;
    switch (r.kind) {
      case TAG:
        lg.addTag(r.action.substring(4));
        continue;
      case REJECT:
        return lg.rejectWith(550, "5.7.1", rejectText == null ? "Message rejected by content policy" : rejectText!);
      case TEMPFAIL:
        return lg.tempfailWith(451, "4.7.1", "Message deferred by content policy");
      case QUARANTINE:
        // The number counts the valid rules, from 1.
        lg.addTag("headerrules:" + (i + 1).toString());
        return Action.Quarantine;
      case DISCARD:
        return Action.Discard;
      case ACCEPT:
        return Action.Accept;
    }
    lg.log(lg.Level.Error, "rule " + (i + 1).toString() + " has an unknown action: " + r.action);
  }
  return Action.Continue;
}
