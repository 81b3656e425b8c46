#!/usr/bin/env bash
# Builds every bundled plugin (plugins/NAME/ with a NAME.toml manifest)
# into OUT (default bin/plugins) as NAME.wasm with NAME.toml beside it,
# ready to copy into the appliance's plugins directory. A directory with
# index.ts is AssemblyScript (the compiler is installed by
# sdk/assemblyscript/install.sh); any other is a Go main package built for
# GOOS=wasip1 as a reactor. Usage: plugins/build.sh [OUT] [NAME...]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/bin/plugins}" && cd "${1:-$root/bin/plugins}" && pwd)
shift || true

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for dir in "$root"/plugins/*/; do
    name=$(basename "$dir")
    [ -f "$dir/$name.toml" ] && names+=("$name")
  done
fi

as_ready=
for name in "${names[@]}"; do
  dir="$root/plugins/$name"
  if [ ! -f "$dir/$name.toml" ]; then
    echo "build.sh: $dir/$name.toml not found: a plugin directory needs its manifest" >&2
    exit 1
  fi
  tmp="$out/.$name.wasm.tmp"
  if [ -f "$dir/index.ts" ]; then
    if [ -z "$as_ready" ]; then
      "$root/sdk/assemblyscript/install.sh"
      as_ready=1
    fi
    (cd "$dir" && "$root/sdk/assemblyscript/node_modules/.bin/asc" index.ts -O3 --exportStart _initialize -o "$tmp")
  else
    (cd "$dir" && GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o "$tmp" .)
  fi
  # Module first, then manifest, each renamed into place, so that a host
  # polling OUT never loads a half-written file.
  cp "$dir/$name.toml" "$out/.$name.toml.tmp"
  mv "$tmp" "$out/$name.wasm"
  mv "$out/.$name.toml.tmp" "$out/$name.toml"
  echo "built $out/$name.wasm"
done
