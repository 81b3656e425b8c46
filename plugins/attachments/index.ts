// attachments is the bundled attachment policy. It blocks messages with a
// MIME entity whose file name has a blocked extension or whose declared
// type is blocked, looking through nested multiparts and attached
// messages (the host walks the MIME tree). Names are normalised first, so
// "invoice.pdf.exe", "INVOICE.EXE." and "invoice.exe   " all count as
// ".exe". With block_any_extension, "report.exe.pdf" is blocked too,
// because some mail clients hide the last extension. It also checks the
// file names inside ZIP attachments and the ZIP archives stored in them
// (archives.ts), and acts on archives it cannot read or inspect.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Action } from "../../sdk/assemblyscript/lambgate";
import { blockedName } from "./names";
import { BLOCKED, Finding, UNINSPECTABLE, UNREADABLE } from "./archive";
import { inspectArchives } from "./archives";
import { Policy, configure } from "./policy";
import { screenClears } from "./screen";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

// Returns why a part is blocked, or "".
function check(p: lg.Part, pol: Policy): string {
  if (pol.types.has(p.contentType)) return "type " + p.contentType;
  return blockedName(p.fileName, pol.extensions, pol.anyExtension);
}

export function lambgate_on_body(): Action {
  const pol = configure();
  if (screenClears(pol.screen)) return Action.Continue;

  const parts = lg.parts();
  if (lg.lastStatus() != lg.Status.OK) {
    lg.log(lg.Level.Error, "reading MIME parts failed, status " + lg.lastStatus().toString());
    return Action.Continue;
  }
  for (let i = 0; i < parts.length; i++) {
    const reason = check(parts[i], pol);
    if (reason.length == 0) continue;
    lg.log(lg.Level.Info, "blocked part " + parts[i].path + ": " + reason);
    return verdict(pol, pol.action, reason, "attachment-blocked");
  }

  let unreadable: Finding | null = null;
  let uninspectable: Finding | null = null;
  if (pol.inspectArchives) {
    const findings = inspectArchives(parts, pol);
    for (let i = 0; i < findings.length; i++) {
      const f = findings[i];
      if (f.kind == BLOCKED) {
        lg.log(lg.Level.Info, "blocked archive entry: " + f.reason);
        return verdict(pol, pol.action, f.reason, "attachment-blocked");
      }
      if (f.kind == UNREADABLE && unreadable == null) unreadable = f;
      if (f.kind == UNINSPECTABLE && uninspectable == null) uninspectable = f;
    }
  }

  // A structure the host could not walk to the end may hide parts from
  // the checks above.
  const mimeErr = lg.mimeError();
  if (mimeErr.length > 0) {
    lg.log(lg.Level.Info, "malformed MIME structure: " + mimeErr);
    return verdict(pol, pol.malformedAction, "malformed MIME structure", "attachment-blocked");
  }
  if (unreadable != null) {
    lg.log(lg.Level.Info, "unreadable archive: " + unreadable.reason);
    return verdict(pol, pol.unreadableAction, unreadable.reason, "archive-unreadable");
  }
  if (uninspectable != null) {
    lg.log(lg.Level.Info, "uninspectable archive: " + uninspectable.reason);
    return verdict(pol, pol.uninspectableAction, uninspectable.reason, "archive-uninspectable");
  }
  return Action.Continue;
}

function verdict(pol: Policy, what: string, reason: string, tag: string): Action {
  if (what == "continue") return Action.Continue;
  if (what == "quarantine") {
    lg.addTag(tag);
    return Action.Quarantine;
  }
  if (what == "discard") return Action.Discard;
  return lg.rejectWith(550, "5.7.1", pol.rejectText + " (" + reason + ")");
}
