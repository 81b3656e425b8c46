// File name checks shared by MIME parts and archive entries.

// Reports whether a UTF-16 code unit is invisible or reorders text: C0
// controls, DEL, zero-width characters, bidirectional controls (U+202E
// shows "gpj.exe" as "exe.jpg") and the byte order mark.
function hidden(c: i32): bool {
  return c < 0x20 || c == 0x7f || (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

// Returns a file name's dot-separated extensions in order, lower case,
// after dropping hidden characters, a path, and trailing dots and spaces.
export function extensionsOf(name: string): string[] {
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

// Returns why a file name is blocked by the extension list, or "".
// anyExtension also blocks a listed extension that is not the last one.
export function blockedName(name: string, extensions: Set<string>, anyExtension: bool): string {
  const exts = extensionsOf(name);
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

// Reports whether a file name's last extension is one of exts.
export function lastExtensionIn(name: string, exts: string[]): bool {
  const all = extensionsOf(name);
  return all.length > 0 && exts.includes(all[all.length - 1]);
}
