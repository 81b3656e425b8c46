package netns

import (
	"context"
	"fmt"
	"net"
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

// Dial connects from inside the namespace, from source when it is not
// empty ("192.0.2.20" or "192.0.2.20:0"). The connection may be used from
// any goroutine.
func (ns *NS) Dial(ctx context.Context, network, source, address string) (net.Conn, error) {
	var d net.Dialer
	if source != "" {
		host, port, err := net.SplitHostPort(source)
		if err != nil {
			host, port = source, "0"
		}
		addr, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, fmt.Errorf("netns %s: source %q: %w", ns.Name, source, err)
		}
		d.LocalAddr = addr
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
