package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Listen opens a listener inside the namespace and closes it in cleanup.
// Accept may be called from any goroutine.
func (ns *NS) Listen(network, address string) net.Listener {
	ns.t.Helper()
	var ln net.Listener
	err := ns.Do(func() (err error) {
		ln, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		ns.t.Fatalf("netns %s: listen on %s: %v", ns.Name, address, err)
	}
	ns.t.Cleanup(func() { ln.Close() })
	return ln
}

// ListenPacket opens a packet listener, such as a UDP socket for a DNS
// server, inside the namespace and closes it in cleanup.
func (ns *NS) ListenPacket(network, address string) net.PacketConn {
	ns.t.Helper()
	var pc net.PacketConn
	err := ns.Do(func() (err error) {
		pc, err = net.ListenPacket(network, address)
		return err
	})
	if err != nil {
		ns.t.Fatalf("netns %s: listen on %s: %v", ns.Name, address, err)
	}
	ns.t.Cleanup(func() { pc.Close() })
	return pc
}

// Dial connects from inside the namespace, from source when it is not
// empty ("192.0.2.20" or "192.0.2.20:0"). Network is "tcp" or "udp" with an
// optional 4 or 6. The connection may be used from any goroutine.
func (ns *NS) Dial(ctx context.Context, network, source, address string) (net.Conn, error) {
	var d net.Dialer
	if source != "" {
		ap, err := netip.ParseAddrPort(source)
		if err != nil {
			addr, aerr := netip.ParseAddr(source)
			if aerr != nil {
				return nil, fmt.Errorf("netns %s: source %q is neither an address nor address:port", ns.Name, source)
			}
			ap = netip.AddrPortFrom(addr, 0)
		}
		if strings.HasPrefix(network, "udp") {
			d.LocalAddr = net.UDPAddrFromAddrPort(ap)
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(ap)
		}
	}
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// WaitTCP waits until a TCP connection to address succeeds from inside the
// namespace, for a server the test has just started. It retries every
// 50 ms and returns the last dial error after timeout.
func (ns *NS) WaitTCP(address string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		c, err := ns.Dial(ctx, "tcp", "", address)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netns %s: %s not accepting connections after %s: %w", ns.Name, address, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
