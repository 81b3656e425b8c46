//go:build !linux

package relay

import (
	"errors"
	"syscall"
)

// bindToDevice fails: SO_BINDTODEVICE exists only on Linux, and a silent
// fallback would send mail through the wrong interface.
func bindToDevice(_ syscall.RawConn, device string) error {
	return &deviceError{device: device, err: errors.New("binding to a device needs Linux")}
}
