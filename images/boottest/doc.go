// Package boottest boots Lambgate images in qemu under software emulation
// and talks to them through loopback ports forwarded by qemu's user-mode
// network (restrict=on, so the guest reaches no other network). The tests
// are behind the boottest build tag because each boot takes tens of
// seconds:
//
//	go test -tags boottest -timeout 20m ./images/boottest/
//
// They fail, never skip, when qemu, OVMF, mtools or systemd-boot are
// missing; scripts/install-deps.sh installs them. The package holds tests
// only and must never reach an address outside 127.0.0.0/8.
package boottest
