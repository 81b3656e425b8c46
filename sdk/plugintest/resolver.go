package plugintest

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// Resolver is a fixed DNS for plugin tests: names absent from every map
// are NXDOMAIN, names in TempFail fail temporarily (SERVFAIL). Keys are
// names without the trailing dot, in lower case.
type Resolver struct {
	A, AAAA map[string][]string
	TXT     map[string][]string
	// MX values are "preference host".
	MX       map[string][]string
	TempFail map[string]bool

	mu      sync.Mutex
	queries []string
}

// Queries returns the names looked up so far, in order, as "TYPE name".
func (r *Resolver) Queries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queries...)
}

func (r *Resolver) answer(kind string, m map[string][]string, name string) ([]string, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	r.mu.Lock()
	r.queries = append(r.queries, kind+" "+name)
	r.mu.Unlock()
	if r.TempFail[name] {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	if v, ok := m[name]; ok && len(v) > 0 {
		return v, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// LookupNetIP implements host.Resolver.
func (r *Resolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	kind, m := "A", r.A
	if network == "ip6" {
		kind, m = "AAAA", r.AAAA
	}
	texts, err := r.answer(kind, m, host)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, t := range texts {
		a, err := netip.ParseAddr(t)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// LookupTXT implements host.Resolver.
func (r *Resolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	return r.answer("TXT", r.TXT, name)
}

// LookupMX implements host.Resolver.
func (r *Resolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	texts, err := r.answer("MX", r.MX, name)
	if err != nil {
		return nil, err
	}
	var out []*net.MX
	for _, t := range texts {
		pref, host, _ := strings.Cut(t, " ")
		n, _ := strconv.Atoi(pref)
		out = append(out, &net.MX{Host: host, Pref: uint16(n)})
	}
	return out, nil
}
