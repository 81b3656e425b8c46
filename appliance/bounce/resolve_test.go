package bounce

import (
	"context"
	"net/netip"
	"slices"
	"testing"
)

func TestResolveMXSelection(t *testing.T) {
	ns := startDNS(t)
	ns.add(t,
		"dual.example. 300 IN MX 10 mx.dual.example.",
		"mx.dual.example. 300 IN A 192.0.2.10",
		"mx.dual.example. 300 IN AAAA 2001:db8::10",
		"mixed.example. 300 IN MX 0 .",
		"mixed.example. 300 IN MX 20 mx.mixed.example.",
		"mx.mixed.example. 300 IN A 192.0.2.20",
		"literal.example. 300 IN MX 10 192.0.2.30.",
		"sixonly.example. 300 IN MX 10 mx.sixonly.example.",
		"mx.sixonly.example. 300 IN AAAA 2001:db8::40")
	lookup := newLookuper(ns.addr, DefaultDNSTimeout)

	tests := []struct {
		name      string
		domain    string
		source    string
		want      []string
		status    string
		permanent bool
	}{
		{name: "any family without source", domain: "dual.example",
			want: []string{"192.0.2.10", "2001:db8::10"}},
		{name: "IPv4 source keeps IPv4", domain: "dual.example", source: "198.51.100.1",
			want: []string{"192.0.2.10"}},
		{name: "IPv6 source keeps IPv6", domain: "dual.example", source: "2001:db8::1",
			want: []string{"2001:db8::10"}},
		{name: "null MX beside a host is ignored", domain: "mixed.example",
			want: []string{"192.0.2.20"}},
		{name: "IP literal as MX host", domain: "literal.example",
			want: []string{"192.0.2.30"}},
		{name: "no address of the source family", domain: "sixonly.example", source: "198.51.100.1",
			status: "4.4.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var source netip.Addr
			if tt.source != "" {
				source = netip.MustParseAddr(tt.source)
			}
			targets, err := resolveMX(context.Background(), lookup, tt.domain, source, false)

			if tt.status != "" {
				se := asStatusError(err)
				if err == nil || se.Status != tt.status || se.Permanent != tt.permanent {
					t.Fatalf("resolveMX = %v, %v; expected status %s (permanent %v)", targets, err, tt.status, tt.permanent)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveMX: %v", err)
			}
			var got []string
			for _, target := range targets {
				got = append(got, target.Addr.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("addresses %v, expected %v", got, tt.want)
			}
		})
	}
}

func TestResolveMXRandomAmongEqual(t *testing.T) {
	ns := startDNS(t)
	ns.add(t,
		"equal.example. 300 IN MX 10 a.equal.example.",
		"equal.example. 300 IN MX 10 b.equal.example.",
		"equal.example. 300 IN MX 5 first.equal.example.",
		"a.equal.example. 300 IN A 192.0.2.1",
		"b.equal.example. 300 IN A 192.0.2.2",
		"first.equal.example. 300 IN A 192.0.2.5")
	lookup := newLookuper(ns.addr, DefaultDNSTimeout)

	seen := map[string]int{}
	for range 64 {
		targets, err := resolveMX(context.Background(), lookup, "equal.example", netip.Addr{}, false)
		if err != nil {
			t.Fatalf("resolveMX: %v", err)
		}
		if len(targets) != 3 {
			t.Fatalf("%d targets, expected 3", len(targets))
		}
		if targets[0].Host != "first.equal.example" {
			t.Fatalf("first target %s, expected the preference 5 host", targets[0].Host)
		}
		seen[targets[1].Host]++
	}
	// Each order has probability 1/2, so both appear in 64 tries unless
	// the order is fixed (a false failure has probability 2^-63).
	if seen["a.equal.example"] == 0 || seen["b.equal.example"] == 0 {
		t.Errorf("second place over 64 lookups: %v, expected both equal-preference hosts", seen)
	}
}
