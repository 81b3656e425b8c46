// attachments is the bundled attachment policy. It blocks messages with a
// MIME entity whose file name has a blocked extension or whose declared
// type is blocked, looking through nested multiparts and attached
// messages (the host walks the MIME tree). Names are normalised first, so
// "invoice.pdf.exe", "INVOICE.EXE." and "invoice.exe   " all count as
// ".exe". With block_any_extension, "report.exe.pdf" is blocked too,
// because some mail clients hide the last extension.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Action } from "../../sdk/assemblyscript/lambgate";
export { lambgate_abi_version_1 } from "../../sdk/assemblyscript/lambgate";

// The policy is read at an instance's first call: settings are
// configuration, fixed for the instance's lifetime (a changed manifest
// loads a new plugin).
let configured = false;
let extensions = new Set<string>();
let types = new Set<string>();
let anyExtension = false;
let action = "reject";
let rejectText = "Attachment type not accepted";
let malformedAction = "quarantine";

function configure(): void {
  if (configured) return;
  const exts = lg.settingList("block_extensions");
  for (let i = 0; i < exts.length; i++) {
    let e = exts[i].toLowerCase();
    if (e.startsWith(".")) e = e.substring(1);
    extensions.add(e);
  }
  const ts = lg.settingList("block_types");
  for (let i = 0; i < ts.length; i++) types.add(ts[i].toLowerCase());
  const any = lg.setting("block_any_extension");
  anyExtension = any != null && any == "true";
  const a = lg.setting("action");
  if (a != null && a.length > 0) action = a;
  const t = lg.setting("reject_text");
  if (t != null && t.length > 0) rejectText = t;
  const m = lg.setting("malformed_action");
  if (m != null && m.length > 0) malformedAction = m;
  configured = true;
}

// Reports whether a UTF-16 code unit is invisible or reorders text: C0
// controls, DEL, zero-width characters, bidirectional controls (U+202E
// shows "gpj.exe" as "exe.jpg") and the byte order mark.
function hidden(c: i32): bool {
  return c < 0x20 || c == 0x7f || (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

// Returns a file name's dot-separated extensions in order, lower case,
// after dropping hidden characters, a path, and trailing dots and spaces.
function extensionsOf(name: string): string[] {
  const out = new Array<string>();
  if (name.indexOf(".") < 0) return out;
  let clean = name;
  let hasHidden = false;
  for (let i = 0; i < name.length; i++) {
    if (hidden(name.charCodeAt(i))) {
      hasHidden = true;
      break;
    }
  }

  if (hasHidden) {
    // Rare, so the quadratic rebuild does not matter.
    clean = "";
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (!hidden(c)) clean += String.fromCharCode(c);
    }
  }

  const slash = max(clean.lastIndexOf("/"), clean.lastIndexOf("\\"));
  if (slash >= 0) clean = clean.substring(slash + 1);
  let end = clean.length;
  while (end > 0) {
    const c = clean.charCodeAt(end - 1);
    if (c != 0x2e && c != 0x20 && c != 0x09) break;
    end--;
  }

  const fields = clean.substring(0, end).toLowerCase().split(".");
  for (let i = 1; i < fields.length; i++) {
    const f = fields[i].trim();
    if (f.length > 0) out.push(f);
  }
  return out;
}

// Returns why a part is blocked, or "".
// TODO: archives (zip, 7z, rar) are not opened, so a blocked file inside
// one passes unless the archive's own extension is blocked.
function check(p: lg.Part): string {
  if (types.has(p.contentType)) return "type " + p.contentType;
  const exts = extensionsOf(p.fileName);
  if (exts.length == 0) return "";
  const last = exts[exts.length - 1];
  if (extensions.has(last)) return "file name extension ." + last;
  if (anyExtension) {
    for (let i = 0; i < exts.length - 1; i++) {
      if (extensions.has(exts[i])) return "hidden file name extension ." + exts[i];
    }
  }
  return "";
}

export function lambgate_on_body(): Action {
  configure();
  const parts = lg.parts();
  if (lg.lastStatus() != lg.Status.OK) {
    lg.log(lg.Level.Error, "reading MIME parts failed, status " + lg.lastStatus().toString());
    return Action.Continue;
  }
  for (let i = 0; i < parts.length; i++) {
    const reason = check(parts[i]);
    if (reason.length == 0) continue;
    lg.log(lg.Level.Info, "blocked part " + parts[i].path + ": " + reason);
    return verdict(action, reason);
  }

  // A structure the host could not walk to the end may hide parts from
  // the checks above.
  const mimeErr = lg.mimeError();
  if (mimeErr.length > 0) {
    lg.log(lg.Level.Info, "malformed MIME structure: " + mimeErr);
    return verdict(malformedAction, "malformed MIME structure");
  }
  return Action.Continue;
}

function verdict(what: string, reason: string): Action {
  if (what == "continue") return Action.Continue;
  if (what == "quarantine") {
    lg.addTag("attachment-blocked");
    return Action.Quarantine;
  }
  if (what == "discard") return Action.Discard;
  return lg.rejectWith(550, "5.7.1", rejectText + " (" + reason + ")");
}
