package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// Dialer opens TCP connections from a fixed source address and, optionally,
// through a fixed network interface, so that mail of one interface role never
// leaves from another role's address. The relay uses it for the internal role
// and the bounce sender for the bounce role.
type Dialer struct {
	// SourceAddress is the local IP address to bind; empty lets the kernel
	// choose.
	SourceAddress string
	// Device is the network interface to bind with SO_BINDTODEVICE
	// (Linux only); empty binds none.
	Device string
	// Timeout bounds the TCP handshake; zero leaves only the context's
	// deadline.
	Timeout time.Duration
}

// DialContext connects to address ("host:port") over network ("tcp",
// "tcp4" or "tcp6"). A source address or device that cannot be bound is an
// error naming it: the connection is never made from another address.
func (d Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout}

	if d.SourceAddress != "" {
		ip := net.ParseIP(d.SourceAddress)
		if ip == nil {
			return nil, fmt.Errorf("source address %q is not an IP address; "+
				"set it to an address of this host", d.SourceAddress)
		}
		nd.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if d.Device != "" {
		device := d.Device
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			return bindToDevice(rc, device)
		}
	}

	conn, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, d.explain(address, err)
	}
	return conn, nil
}

// explain rewords a failed bind so that the error names the address or
// device that is wrong, rather than only an errno.
func (d Dialer) explain(address string, err error) error {
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) && sysErr.Syscall == "bind" {
		return fmt.Errorf("bind source address %s for %s: %w; "+
			"the address must be configured on an interface of this host",
			d.SourceAddress, address, sysErr.Err)
	}
	var devErr *deviceError
	if errors.As(err, &devErr) {
		return fmt.Errorf("bind device %q for %s: %w; "+
			"the interface must exist and the process needs CAP_NET_RAW",
			devErr.device, address, devErr.err)
	}
	return err
}

// deviceError marks a failed SO_BINDTODEVICE so that explain can name the
// device.
type deviceError struct {
	device string
	err    error
}

func (e *deviceError) Error() string { return "SO_BINDTODEVICE " + e.device + ": " + e.err.Error() }
func (e *deviceError) Unwrap() error { return e.err }
