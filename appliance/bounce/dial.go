package bounce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// bindError is a failure to bind a socket to the bounce role's address or
// interface. It stops the whole delivery attempt: trying another MX would
// fail the same way, and falling back to an address the kernel picks would
// send the DSN from the wrong identity.
type bindError struct {
	// target names what was bound, such as "source address 192.0.2.1".
	target string
	err    error
}

func (e *bindError) Error() string {
	return fmt.Sprintf("bind to bounce %s failed: %v: check that the address is configured on the appliance", e.target, e.err)
}

func (e *bindError) Unwrap() error { return e.err }

// dialFrom connects to dest over TCP from source (any address when not
// valid) and, when iface is set, through that network device only.
// NOTE: the relay package dials the internal server the same way; the two
// could share one helper.
func dialFrom(ctx context.Context, source netip.Addr, iface string, dest netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if source.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(source, 0))
	}
	if iface != "" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var sockErr error
			err := c.Control(func(fd uintptr) { sockErr = bindToDevice(fd, iface) })
			if err == nil {
				err = sockErr
			}
			if err != nil {
				return &bindError{target: "interface " + iface, err: err}
			}
			return nil
		}
	}

	conn, err := d.DialContext(ctx, "tcp", dest.String())
	if err == nil {
		return conn, nil
	}

	var be *bindError
	if errors.As(err, &be) {
		return nil, be
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) && sysErr.Syscall == "bind" {
		return nil, &bindError{target: "source address " + source.String(), err: sysErr}
	}
	return nil, err
}
