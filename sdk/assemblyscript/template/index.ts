// A starting point for an AssemblyScript plugin: it rejects messages whose
// Subject matches the subject_pattern setting. Copy this directory next to
// the SDK, rename template.toml to NAME.toml and set its name, then build
// with
//
//   asc index.ts -O3 --exportStart _initialize -o NAME.wasm
import * as lg from "../lambgate";
import { Action } from "../lambgate";
export { lambgate_abi_version_1 } from "../lambgate";

export function lambgate_on_headers(): Action {
  const pattern = lg.setting("subject_pattern");
  if (pattern == null || pattern.length == 0) return Action.Continue;
  // The host compiles a pattern once per plugin and returns the same
  // handle on later calls.
  const re = lg.regexCompile(pattern);
  if (re < 0) {
    lg.log(lg.Level.Error, "invalid subject_pattern: " + pattern);
    return Action.Continue;
  }
  if (lg.regexMatchHeader(re, "Subject")) {
    return lg.rejectWith(550, "5.7.1", "Message rejected by subject policy");
  }
  return Action.Continue;
}
