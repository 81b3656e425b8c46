#!/usr/bin/env bash
# Installs the AssemblyScript compiler pinned in package-lock.json into
# sdk/assemblyscript/node_modules. Safe to run again: npm ci replaces the
# folder with exactly the locked versions. Needs node >= 20 and npm >= 10.
set -euo pipefail
cd "$(dirname "$0")"
if [ -x node_modules/.bin/asc ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  exit 0
fi
npm ci --no-audit --no-fund
