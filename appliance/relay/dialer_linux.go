package relay

import "syscall"

// bindToDevice sets SO_BINDTODEVICE on the socket before it connects.
func bindToDevice(rc syscall.RawConn, device string) error {
	var bindErr error
	err := rc.Control(func(fd uintptr) {
		bindErr = syscall.BindToDevice(int(fd), device)
	})
	if err != nil {
		return err
	}
	if bindErr != nil {
		return &deviceError{device: device, err: bindErr}
	}
	return nil
}
