// Finds the attachments that are or may be archives, locates their
// content in the body and inspects them.
import * as lg from "../../sdk/assemblyscript/lambgate";
import { Finding, Inspector, UNREADABLE } from "./archive";
import { lastExtensionIn } from "./names";
import { Locator } from "./mime";
import { Base64Source, RawSource, Source } from "./source";
import { Policy } from "./policy";

export const ARCHIVE_EXTENSIONS = ["zip", "7z", "rar"];
export const ARCHIVE_TYPES = [
  "application/zip", "application/x-zip", "application/x-zip-compressed", "application/x-7z-compressed",
  "application/vnd.rar", "application/x-rar", "application/x-rar-compressed",
];
// Senders label any binary file with this type, so its content is
// sniffed for a ZIP, 7z or RAR magic number.
export const GENERIC_TYPE = "application/octet-stream";

// Returns one finding per inspected attachment. A message without
// archive or generic binary attachments costs no body read.
export function inspectArchives(parts: lg.Part[], pol: Policy): Finding[] {
  const out = new Array<Finding>();
  const wanted = new Array<i32>();
  for (let i = 0; i < parts.length; i++) {
    if (claimed(parts[i]) || parts[i].contentType == GENERIC_TYPE) wanted.push(i);
  }
  if (wanted.length == 0) return out;

  const locator = new Locator(parts, wanted);
  locator.run();
  const inspector = new Inspector(pol.extensions, pol.anyExtension, pol.maxDepth, pol.maxEntries, pol.maxBytes);
  for (let w = 0; w < wanted.length; w++) {
    const p = parts[wanted[w]];
    const isClaimed = claimed(p);
    const name = p.fileName.length > 0 ? p.fileName : "part " + p.path;
    if (!locator.found.has(wanted[w])) {
      // Content the walk could not find is only an error for a declared
      // archive; a generic binary part is most likely not one.
      if (isClaimed) out.push(new Finding(UNREADABLE, "content of archive " + name + " not found"));
      continue;
    }
    const l = locator.found.get(wanted[w]);
    let src: Source;
    if (l.encoding == "base64") {
      src = new Base64Source(l.start, l.end);
    } else if (l.encoding == "" || l.encoding == "7bit" || l.encoding == "8bit" || l.encoding == "binary") {
      src = new RawSource(l.start, l.end);
    } else {
      // NOTE: quoted-printable (and unknown) encodings cannot be read from
      // the end without decoding the whole part, so they are not opened.
      if (isClaimed) out.push(new Finding(UNREADABLE, "archive " + name + " in " + l.encoding + " encoding"));
      continue;
    }
    out.push(inspector.inspect(src, name, 1, isClaimed));
  }
  return out;
}

// Reports whether a part's name or type declares an archive.
function claimed(p: lg.Part): bool {
  return ARCHIVE_TYPES.includes(p.contentType) || lastExtensionIn(p.fileName, ARCHIVE_EXTENSIONS);
}
