package bounce

import "golang.org/x/sys/unix"

// bindToDevice sets SO_BINDTODEVICE, which needs CAP_NET_RAW.
func bindToDevice(fd uintptr, iface string) error {
	return unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, iface)
}
