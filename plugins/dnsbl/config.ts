// The DNSBL plugin's settings (dnsbl.toml). They are configuration, fixed
// for an instance's lifetime (a changed manifest loads a new plugin), so
// they are read once when the instance starts.
import * as lg from "../../sdk/assemblyscript/lambgate";

export class List {
  zone: string = "";
  // The zone's UTF-8 bytes, appended to the reversed address per lookup.
  zoneBytes: ArrayBuffer = new ArrayBuffer(0);
  weight: i32 = 1;
}

function parseLists(): List[] {
  const out = new Array<List>();
  const entries = lg.settingList("lists");
  for (let i = 0; i < entries.length; i++) {
    // Each entry is "zone" or "zone=weight"; the weight defaults to 1.
    const entry = entries[i];
    const eq = entry.indexOf("=");
    const l = new List();
    l.zone = eq < 0 ? entry : entry.substring(0, eq);
    l.zoneBytes = String.UTF8.encode(l.zone);
    l.weight = eq < 0 ? 1 : I32.parseInt(entry.substring(eq + 1));
    out.push(l);
  }
  return out;
}

export const lists = parseLists();
// Reject at connect from this score; 0 disables rejection.
export const rejectScore = lg.settingInt("reject_score", 0);
// Tag the message from this score; 0 disables tagging.
export const tagScore = lg.settingInt("tag_score", 1);
export const cacheSeconds = lg.settingInt("cache_seconds", 300);
