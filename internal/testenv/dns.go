package testenv

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNS is an authoritative DNS server for every name, on UDP and TCP at the
// same address, serving the records that the test sets. Clients speak real
// DNS to it. A name with no records and no forced response code gets
// NXDOMAIN, and a name with records of other types only gets an empty
// NOERROR response (NODATA).
type DNS struct {
	t    testing.TB
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	mu      sync.Mutex
	names   map[string]*dnsName
	queries []dns.Question
}

type dnsName struct {
	records map[uint16][]dns.RR
	rcode   int // dns.RcodeSuccess unless SetNXDOMAIN or SetSERVFAIL forced one
}

// MX is one mail exchanger of a domain.
type MX struct {
	Preference uint16
	Host       string
}

// dnsTTL is the TTL of every record. Zero keeps caching resolvers from
// storing a response, so that records a test changes take effect at once.
const dnsTTL = 0

// dnsStartAttempts bounds the retries when the TCP port matching a free
// UDP port is taken.
const dnsStartAttempts = 10

// StartDNS starts a DNS server on addr (host:port) for UDP and TCP and
// stops it at the end of the test. An empty addr picks a port on
// 127.0.0.1 that is free for both protocols.
func StartDNS(t testing.TB, addr string) *DNS {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}

	var udpConn net.PacketConn
	var tcpListener net.Listener
	for attempt := 1; ; attempt++ {
		var err error
		udpConn, err = net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("DNS server: listen on udp %s: %v", addr, err)
		}
		tcpListener, err = net.Listen("tcp", udpConn.LocalAddr().String())
		if err == nil {
			break
		}
		udpConn.Close()
		if !strings.HasSuffix(addr, ":0") || attempt == dnsStartAttempts {
			t.Fatalf("DNS server: listen on tcp %s: %v", addr, err)
		}
	}
	return StartDNSListeners(t, udpConn, tcpListener)
}

// StartDNSListeners serves DNS on a UDP socket and a TCP listener that the
// caller opened, such as ones made inside a network namespace with
// netns.NS.ListenPacket and netns.NS.Listen. Addr returns the UDP address.
// The server closes both at the end of the test.
func StartDNSListeners(t testing.TB, udpConn net.PacketConn, tcpListener net.Listener) *DNS {
	t.Helper()
	d := &DNS{t: t, names: make(map[string]*dnsName), addr: udpConn.LocalAddr().String()}
	d.udp = d.serve(&dns.Server{PacketConn: udpConn})
	d.tcp = d.serve(&dns.Server{Listener: tcpListener})
	t.Cleanup(func() {
		d.udp.Shutdown()
		d.tcp.Shutdown()
	})
	return d
}

// serve starts a server in the background and returns once it accepts
// queries, so that Shutdown in the cleanup cannot race with the start.
func (d *DNS) serve(srv *dns.Server) *dns.Server {
	started := make(chan struct{})
	failed := make(chan error, 1)
	srv.Handler = dns.HandlerFunc(d.handleQuery)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() {
		if err := srv.ActivateAndServe(); err != nil {
			failed <- err
		}
	}()
	select {
	case <-started:
	case err := <-failed:
		d.t.Fatalf("DNS server on %s failed to start: %v", d.addr, err)
	}
	return srv
}

// Addr returns the host:port of the server, the same for UDP and TCP.
func (d *DNS) Addr() string { return d.addr }

// SetMX replaces the MX records of a domain. A single MX{0, "."} is a null
// MX (RFC 7505). No arguments remove the MX records.
func (d *DNS) SetMX(domain string, mxs ...MX) {
	d.t.Helper()
	rrs := make([]dns.RR, len(mxs))
	for i, mx := range mxs {
		rrs[i] = &dns.MX{Hdr: d.header(domain, dns.TypeMX), Preference: mx.Preference, Mx: dns.Fqdn(mx.Host)}
	}
	d.set(domain, dns.TypeMX, rrs)
}

// SetA replaces the A records of a name with IPv4 addresses.
func (d *DNS) SetA(name string, addrs ...string) {
	d.t.Helper()
	rrs := make([]dns.RR, len(addrs))
	for i, s := range addrs {
		ip := d.parseIP(s)
		if !ip.Is4() {
			d.t.Fatalf("DNS SetA(%q): %q is not an IPv4 address", name, s)
		}
		rrs[i] = &dns.A{Hdr: d.header(name, dns.TypeA), A: net.IP(ip.AsSlice())}
	}
	d.set(name, dns.TypeA, rrs)
}

// SetAAAA replaces the AAAA records of a name with IPv6 addresses.
func (d *DNS) SetAAAA(name string, addrs ...string) {
	d.t.Helper()
	rrs := make([]dns.RR, len(addrs))
	for i, s := range addrs {
		ip := d.parseIP(s)
		if !ip.Is6() || ip.Is4In6() {
			d.t.Fatalf("DNS SetAAAA(%q): %q is not an IPv6 address", name, s)
		}
		rrs[i] = &dns.AAAA{Hdr: d.header(name, dns.TypeAAAA), AAAA: net.IP(ip.AsSlice())}
	}
	d.set(name, dns.TypeAAAA, rrs)
}

// SetTXT replaces the TXT records of a name, one record per text, such as
// an SPF policy "v=spf1 ip4:192.0.2.1 -all". A text longer than 255 bytes
// is split into several strings of one record, as RFC 7208 section 3.3
// describes for long SPF records.
func (d *DNS) SetTXT(name string, texts ...string) {
	d.t.Helper()
	rrs := make([]dns.RR, len(texts))
	for i, text := range texts {
		var chunks []string
		for len(text) > 255 {
			chunks = append(chunks, text[:255])
			text = text[255:]
		}
		chunks = append(chunks, text)
		rrs[i] = &dns.TXT{Hdr: d.header(name, dns.TypeTXT), Txt: chunks}
	}
	d.set(name, dns.TypeTXT, rrs)
}

// SetPTR replaces the PTR records of an IP address (its in-addr.arpa or
// ip6.arpa name) with host names.
func (d *DNS) SetPTR(ip string, hosts ...string) {
	d.t.Helper()
	arpa, err := dns.ReverseAddr(d.parseIP(ip).String())
	if err != nil {
		d.t.Fatalf("DNS SetPTR(%q): %v", ip, err)
	}
	rrs := make([]dns.RR, len(hosts))
	for i, host := range hosts {
		rrs[i] = &dns.PTR{Hdr: d.header(arpa, dns.TypePTR), Ptr: dns.Fqdn(host)}
	}
	d.set(arpa, dns.TypePTR, rrs)
}

// SetNXDOMAIN makes every query for name fail with NXDOMAIN, whatever
// records it has.
func (d *DNS) SetNXDOMAIN(name string) { d.setRcode(name, dns.RcodeNameError) }

// SetSERVFAIL makes every query for name fail with SERVFAIL, a temporary
// error for the resolver.
func (d *DNS) SetSERVFAIL(name string) { d.setRcode(name, dns.RcodeServerFailure) }

// Clear removes the records and the forced response code of name.
func (d *DNS) Clear(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.names, dns.CanonicalName(name))
}

// Queries returns the questions received so far, in order, as
// "name TYPE" such as "sender.test. MX".
func (d *DNS) Queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.queries))
	for i, q := range d.queries {
		out[i] = q.Name + " " + dns.TypeToString[q.Qtype]
	}
	return out
}

func (d *DNS) header(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.CanonicalName(name), Rrtype: rrtype, Class: dns.ClassINET, Ttl: dnsTTL}
}

func (d *DNS) parseIP(s string) netip.Addr {
	d.t.Helper()
	ip, err := netip.ParseAddr(s)
	if err != nil {
		d.t.Fatalf("DNS: %q is not an IP address: %v", s, err)
	}
	return ip
}

func (d *DNS) entry(name string) *dnsName {
	key := dns.CanonicalName(name)
	e := d.names[key]
	if e == nil {
		e = &dnsName{records: make(map[uint16][]dns.RR)}
		d.names[key] = e
	}
	return e
}

func (d *DNS) set(name string, rrtype uint16, rrs []dns.RR) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(rrs) == 0 {
		delete(d.entry(name).records, rrtype)
		return
	}
	d.entry(name).records[rrtype] = rrs
}

func (d *DNS) setRcode(name string, rcode int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entry(name).rcode = rcode
}

// handleQuery replies to one query. Record owner names are sent back
// spelled as in the question, because resolvers compare them with the name
// in their query.
func (d *DNS) handleQuery(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true

	d.mu.Lock()
	for _, q := range req.Question {
		d.queries = append(d.queries, q)
		e := d.names[dns.CanonicalName(q.Name)]
		switch {
		case e == nil || (e.rcode == dns.RcodeSuccess && len(e.records) == 0):
			resp.Rcode = dns.RcodeNameError
		case e.rcode != dns.RcodeSuccess:
			resp.Rcode = e.rcode
		default:
			for _, rr := range e.records[q.Qtype] {
				copied := dns.Copy(rr)
				copied.Header().Name = q.Name
				resp.Answer = append(resp.Answer, copied)
			}
		}
	}
	d.mu.Unlock()

	if err := w.WriteMsg(resp); err != nil {
		d.t.Logf("DNS server %s: send reply to %s: %v", d.addr, w.RemoteAddr(), err)
	}
}
