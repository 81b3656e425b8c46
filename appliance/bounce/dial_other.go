//go:build !linux

package bounce

import "errors"

func bindToDevice(fd uintptr, iface string) error {
	return errors.New("SO_BINDTODEVICE is only available on Linux: leave bounce.interface empty")
}
