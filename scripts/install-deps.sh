#!/usr/bin/env bash
# Installs the Debian packages that the tests and benchmarks run against:
# Postfix (internal mail server, smtp-source, smtp-sink), swaks, wabt for
# hand-written Wasm test modules, iproute2 for network namespaces, qemu and
# OVMF for image boots, Chromium for browser tests, e2fsprogs and mtools for
# images, systemd-boot-efi for the UEFI boot loader of the PC image. Safe to
# run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  postfix swaks wabt iproute2 tcpdump
  qemu-system-x86 qemu-system-arm qemu-utils ovmf
  chromium e2fsprogs dosfstools mtools systemd-boot-efi
  ca-certificates libnet-ssleay-perl libio-socket-ssl-perl
)

# The AssemblyScript compiler (sdk/assemblyscript, npm ci) needs Node.js
# and npm; take Debian's only where the machine has none of its own.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix must not configure or start a system instance: tests run private
# instances with their own config directories.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
