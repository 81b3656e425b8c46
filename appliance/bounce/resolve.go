package bounce

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Lookup outcomes that change what the MX selection does; every other
// lookup error is temporary.
var (
	// errNXDomain: the name does not exist (NXDOMAIN).
	errNXDomain = errors.New("domain name not found")
	// errNoRecords: the name exists but has no record of the type asked
	// for. The system resolver reports NXDOMAIN this way too.
	errNoRecords = errors.New("no records of that type")
)

// mxHost is one mail exchanger of a domain.
type mxHost struct {
	Name       string
	Preference uint16
}

// lookuper is the DNS access that MX selection needs.
type lookuper interface {
	lookupMX(ctx context.Context, domain string) ([]mxHost, error)
	lookupAddrs(ctx context.Context, host string) ([]netip.Addr, error)
}

// newLookuper returns a client of the DNS server at server (host:port), or
// of the system resolver when server is empty.
func newLookuper(server string, timeout time.Duration) lookuper {
	if server == "" {
		return systemLookup{resolver: net.DefaultResolver}
	}
	return &dnsLookup{server: server, timeout: timeout}
}

// dnsLookup queries one DNS server with miekg/dns, which reports NXDOMAIN,
// empty answers and server failures apart.
type dnsLookup struct {
	server  string
	timeout time.Duration
}

func (l *dnsLookup) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	client := &dns.Client{Net: "udp", Timeout: l.timeout}
	r, _, err := client.ExchangeContext(ctx, m, l.server)
	if err == nil && r.Truncated {
		client.Net = "tcp"
		r, _, err = client.ExchangeContext(ctx, m, l.server)
	}
	if err != nil {
		return nil, fmt.Errorf("DNS query %s %s to %s failed: %w", dns.TypeToString[qtype], name, l.server, err)
	}

	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, errNXDomain
	default:
		return nil, fmt.Errorf("DNS server %s returned %s for %s %s", l.server, dns.RcodeToString[r.Rcode], dns.TypeToString[qtype], name)
	}
	return r.Answer, nil
}

func (l *dnsLookup) lookupMX(ctx context.Context, domain string) ([]mxHost, error) {
	answer, err := l.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var hosts []mxHost
	for _, rr := range answer {
		if mx, ok := rr.(*dns.MX); ok {
			hosts = append(hosts, mxHost{Name: mx.Mx, Preference: mx.Preference})
		}
	}
	if len(hosts) == 0 {
		return nil, errNoRecords
	}
	return hosts, nil
}

func (l *dnsLookup) lookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	var errs []error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		answer, err := l.query(ctx, host, qtype)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range answer {
			switch rr := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
					addrs = append(addrs, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(rr.AAAA); ok {
					addrs = append(addrs, a)
				}
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	if len(errs) == 2 && errors.Is(errs[0], errNXDomain) && errors.Is(errs[1], errNXDomain) {
		return nil, errNXDomain
	}
	for _, err := range errs {
		if !errors.Is(err, errNXDomain) {
			return nil, err
		}
	}
	return nil, errNoRecords
}

// systemLookup uses the system resolver. It cannot tell NXDOMAIN from a
// name without records of the type, so it returns errNoRecords for both.
type systemLookup struct {
	resolver *net.Resolver
}

func (l systemLookup) lookupMX(ctx context.Context, domain string) ([]mxHost, error) {
	records, err := l.resolver.LookupMX(ctx, domain)
	if err != nil {
		return nil, systemError(err)
	}
	hosts := make([]mxHost, 0, len(records))
	for _, mx := range records {
		hosts = append(hosts, mxHost{Name: mx.Host, Preference: mx.Pref})
	}
	if len(hosts) == 0 {
		return nil, errNoRecords
	}
	return hosts, nil
}

func (l systemLookup) lookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	addrs, err := l.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, systemError(err)
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}

func systemError(err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return fmt.Errorf("%w: %v", errNoRecords, err)
	}
	return err
}

// mxTarget is one address to try for a domain.
type mxTarget struct {
	Host string
	Addr netip.Addr
}

// resolveMX returns the addresses to try for domain, in order. MX hosts are
// sorted by preference, in random order among equal ones, and each host's
// addresses keep the order of the answer. Only addresses of the source
// address's family are kept when source is valid. A domain without MX
// records is its own implicit MX (RFC 5321 section 5.1). The error is a
// *statusError.
func resolveMX(ctx context.Context, lookup lookuper, domain string, source netip.Addr, allowInternal bool) ([]mxTarget, error) {
	hosts, err := lookup.lookupMX(ctx, domain)
	switch {
	case errors.Is(err, errNXDomain):
		return nil, permanentError("5.1.2", "domain %s not found (NXDOMAIN)", domain)
	case errors.Is(err, errNoRecords):
		hosts = []mxHost{{Name: domain}}
	case err != nil:
		return nil, temporaryError("4.4.3", "MX lookup of %s failed: %v", domain, err)
	}

	// RFC 7505: an MX of "." declares that the domain takes no mail. It
	// should be the only MX; beside real hosts it is ignored.
	hosts = slices.DeleteFunc(hosts, func(h mxHost) bool { return h.Name == "." || h.Name == "" })
	if len(hosts) == 0 {
		return nil, permanentError("5.1.10", "domain %s accepts no mail (null MX)", domain)
	}
	rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
	slices.SortStableFunc(hosts, func(a, b mxHost) int { return cmp.Compare(a.Preference, b.Preference) })

	var targets []mxTarget
	var lastErr error
	notFound := 0
	internal := 0
	for _, h := range hosts {
		name := strings.TrimSuffix(h.Name, ".")
		addrs, err := hostAddrs(ctx, lookup, name)
		if err != nil {
			lastErr = err
			if errors.Is(err, errNXDomain) || errors.Is(err, errNoRecords) {
				notFound++
			}
			continue
		}
		for _, a := range addrs {
			if source.IsValid() && a.Is4() != source.Is4() {
				continue
			}
			if !allowInternal && isInternal(a) {
				internal++
				continue
			}
			targets = append(targets, mxTarget{Host: name, Addr: a})
		}
	}

	if len(targets) > 0 {
		return targets, nil
	}
	if internal > 0 && lastErr == nil {
		return nil, permanentError("5.4.4", "every MX address of %s is internal (loopback, private or link-local)", domain)
	}
	if lastErr == nil {
		return nil, temporaryError("4.4.4", "no MX address of %s has the family of source address %s", domain, source)
	}
	if notFound == len(hosts) {
		return nil, permanentError("5.1.2", "no MX host of %s has an address: %v", domain, lastErr)
	}
	return nil, temporaryError("4.4.3", "address lookup for the MX hosts of %s failed: %v", domain, lastErr)
}

// hostAddrs resolves an MX host name, accepting an IP address in its place
// as some domains publish one.
func hostAddrs(ctx context.Context, lookup lookuper, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := lookup.lookupAddrs(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	return addrs, nil
}

// isInternal reports whether a is an address that no internet MX may have.
func isInternal(a netip.Addr) bool {
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() ||
		a.IsMulticast() || a.IsInterfaceLocalMulticast()
}
