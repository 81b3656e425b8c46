package policy

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startDNS serves the TXT records in txt on a loopback UDP port and returns
// a resolver that sends its queries only there.
func startDNS(t *testing.T, txt map[string]string) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		if q.Qtype == dns.TypeTXT {
			if v, ok := txt[strings.ToLower(q.Name)]; ok {
				m.Answer = append(m.Answer, &dns.TXT{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
					Txt: []string{v},
				})
			}
		}
		if len(m.Answer) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })

	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func TestSPFResultsFromDNS(t *testing.T) {
	r := startDNS(t, map[string]string{
		"pass.example.":     "v=spf1 ip4:127.0.0.1 -all",
		"fail.example.":     "v=spf1 ip4:192.0.2.1 -all",
		"softfail.example.": "v=spf1 ~all",
		"neutral.example.":  "v=spf1 ?all",
		"helo.example.":     "v=spf1 ip4:127.0.0.0/8 -all",
	})
	c := &SPFChecker{Resolver: r, Timeout: 5 * time.Second}
	ip := netip.MustParseAddr("127.0.0.1")
	cases := []struct{ sender, want string }{
		{"a@pass.example", "pass"},
		{"a@fail.example", "fail"},
		{"a@softfail.example", "softfail"},
		{"a@neutral.example", "neutral"},
		{"a@none.example", "none"},
		{"", "pass"}, // the null sender is checked as postmaster@helo
	}
	for _, tc := range cases {
		if got := c.Check(context.Background(), ip, "helo.example", tc.sender); got != tc.want {
			t.Errorf("sender %q: %q, want %q", tc.sender, got, tc.want)
		}
	}
}

func TestSPFTimeoutIsTemperror(t *testing.T) {
	// A UDP socket that never replies plays a dead DNS server.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := pc.LocalAddr().String()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
	c := &SPFChecker{Resolver: r, Timeout: 200 * time.Millisecond}
	got := c.Check(context.Background(), netip.MustParseAddr("127.0.0.1"), "helo.example", "a@slow.example")
	if got != "temperror" {
		t.Errorf("result %q, want temperror", got)
	}
}
