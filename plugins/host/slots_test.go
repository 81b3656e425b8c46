package host

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
)

// blockingResolver returns 192.0.2.1 for every A lookup once release is
// closed, and sends on started when a lookup starts.
type blockingResolver struct {
	started chan struct{}
	release chan struct{}
}

func (r blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	r.started <- struct{}{}
	select {
	case <-r.release:
		return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (blockingResolver) LookupTXT(context.Context, string) ([]string, error) { return nil, nil }
func (blockingResolver) LookupMX(context.Context, string) ([]*net.MX, error) { return nil, nil }

// lookupWAT looks up example.org at connect and continues.
var lookupWAT = watModule(`  (data (i32.const 0) "example.org")`, map[string]string{
	"connect": `(drop (call $dns_lookup (i32.const 1) (i32.const 0) (i32.const 11) (i32.const 64) (i32.const 64)))
    (i32.const 0)`,
})

// TestDNSWaitFreesCallSlot runs a host with one call slot. A call waiting
// for a DNS answer must not hold it, or one slow resolver would stall
// every plugin.
func TestDNSWaitFreesCallSlot(t *testing.T) {
	dir := t.TempDir()
	installPlugin(t, dir, "lookup", wat2wasm(t, lookupWAT),
		manifest("lookup", `phases = ["connect"]`, `grants = ["dns"]`, "order = 1", `failure_mode = "closed"`))
	res := blockingResolver{started: make(chan struct{}, 1), release: make(chan struct{})}
	h, _ := newTestHost(t, dir, func(c *Config) {
		c.MaxConcurrentCalls = 1
		c.Resolver = res
	})

	waiting := make(chan filter.Verdict, 1)
	go func() { waiting <- h.Connect(context.Background(), testConn) }()
	<-res.started

	// A second session's lookup needs the only slot for its guest code
	// before it reaches the resolver.
	second := make(chan filter.Verdict, 1)
	go func() { second <- h.Connect(context.Background(), testConn) }()
	select {
	case <-res.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the second call did not run while the first waited for DNS")
	}
	close(res.release)
	for i, ch := range []chan filter.Verdict{waiting, second} {
		if v := <-ch; v.Action != filter.Continue {
			t.Errorf("call %d: verdict %+v, want continue", i+1, v)
		}
	}
	if n := len(h.calls); n != 0 {
		t.Errorf("%d call slots still held after both calls ended", n)
	}
}
