#!/usr/bin/env bash
# Builds Lambgate firmware. The Makefile's image-vm, image-pi and flash
# targets call this script; run it from anywhere in the checkout.
#
#   images/build.sh vm|pi [lambgate-image flags]   image in images/out/
#   images/build.sh flash DEV [flags]              Pi image onto DEV (TARGET=vm for a PC disk)
#
# Every image build also writes the root squashfs beside the image, which
# "lambgate-image update" pushes to a running appliance.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	echo "usage: images/build.sh vm|pi [flags] | images/build.sh flash DEV [flags]" >&2
	exit 2
}

case "${1:-}" in
vm | pi)
	target=$1
	shift
	exec go run ./images/cmd/lambgate-image -target "$target" \
		-o "images/out/lambgate-$target.img" \
		-root-o "images/out/lambgate-$target-root.squashfs" "$@"
	;;
flash)
	[ $# -ge 2 ] || usage
	dev=$2
	shift 2
	exec go run ./images/cmd/lambgate-image flash -target "${TARGET:-pi}" -dev "$dev" "$@"
	;;
*)
	usage
	;;
esac
