// The attachment policy's settings (attachments.toml).
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Screen, compileScreen } from "./screen";

// The policy, read at an instance's first call: settings are
// configuration, fixed for the instance's lifetime (a changed manifest
// loads a new plugin).
export class Policy {
  extensions: Set<string> = new Set<string>();
  types: Set<string> = new Set<string>();
  anyExtension: bool = false;
  action: string = "reject";
  rejectText: string = "Attachment type not accepted";
  malformedAction: string = "quarantine";
  inspectArchives: bool = true;
  maxDepth: i32 = 3;
  maxEntries: i32 = 1000;
  maxBytes: i32 = 8 << 20;
  unreadableAction: string = "quarantine";
  uninspectableAction: string = "quarantine";
  screen: Screen = new Screen();
}

let policy: Policy | null = null;

function stringSetting(name: string, def: string): string {
  const v = lg.setting(name);
  return v != null && v.length > 0 ? v : def;
}

export function configure(): Policy {
  if (policy != null) return policy!;
  const p = new Policy();
  const exts = lg.settingList("block_extensions");
  for (let i = 0; i < exts.length; i++) {
    let e = exts[i].toLowerCase();
    if (e.startsWith(".")) e = e.substring(1);
    p.extensions.add(e);
  }
  const ts = lg.settingList("block_types");
  for (let i = 0; i < ts.length; i++) p.types.add(ts[i].toLowerCase());
  p.anyExtension = lg.setting("block_any_extension") == "true";
  p.action = stringSetting("action", p.action);
  p.rejectText = stringSetting("reject_text", p.rejectText);
  p.malformedAction = stringSetting("malformed_action", p.malformedAction);
  p.inspectArchives = lg.setting("inspect_archives") != "false";
  p.maxDepth = lg.settingInt("archive_max_depth", p.maxDepth);
  p.maxEntries = lg.settingInt("archive_max_entries", p.maxEntries);
  p.maxBytes = lg.settingInt("archive_max_bytes", p.maxBytes);
  p.unreadableAction = stringSetting("unreadable_archive_action", p.unreadableAction);
  p.uninspectableAction = stringSetting("uninspectable_archive_action", p.uninspectableAction);
  p.screen = compileScreen(p);
  policy = p;
  return p;
}

