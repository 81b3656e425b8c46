package testenv_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lambgate/lambgate/internal/testenv"
)

func queryDNS(t *testing.T, network, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	client := &dns.Client{Net: network, Timeout: 5 * time.Second}
	req := new(dns.Msg)
	req.SetQuestion(dns.Fqdn(name), qtype)
	resp, _, err := client.Exchange(req, server)
	if err != nil {
		t.Fatalf("%s query %s %s to %s: %v", network, name, dns.TypeToString[qtype], server, err)
	}
	return resp
}

func TestDNSAnswersMXOverUDPAndTCP(t *testing.T) {
	d := testenv.StartDNS(t, "")
	d.SetMX("sender.test", testenv.MX{Preference: 10, Host: "mx1.sender.test"},
		testenv.MX{Preference: 20, Host: "mx2.sender.test"})

	for _, network := range []string{"udp", "tcp"} {
		resp := queryDNS(t, network, d.Addr(), "Sender.TEST", dns.TypeMX)
		if resp.Rcode != dns.RcodeSuccess {
			t.Errorf("%s: rcode %s, want NOERROR", network, dns.RcodeToString[resp.Rcode])
		}
		if len(resp.Answer) != 2 {
			t.Fatalf("%s: %d answers, want 2: %v", network, len(resp.Answer), resp.Answer)
		}
		mx, ok := resp.Answer[0].(*dns.MX)
		if !ok {
			t.Fatalf("%s: first answer is %T, want *dns.MX", network, resp.Answer[0])
		}
		if mx.Preference != 10 || mx.Mx != "mx1.sender.test." {
			t.Errorf("%s: first MX = %d %s, want 10 mx1.sender.test.", network, mx.Preference, mx.Mx)
		}
		if mx.Hdr.Name != "Sender.TEST." {
			t.Errorf("%s: owner name %q, want the question's spelling Sender.TEST.", network, mx.Hdr.Name)
		}
	}
}

func TestDNSAnswersSPFThroughGoResolver(t *testing.T) {
	d := testenv.StartDNS(t, "")
	spf := "v=spf1 ip4:127.0.0.2 " + strings.Repeat("include:spf.example.test ", 12) + "-all"
	d.SetTXT("sender.test", spf)
	d.SetA("mx1.sender.test", "127.0.0.2")
	d.SetPTR("127.0.0.2", "mx1.sender.test")

	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, d.Addr())
		},
	}
	ctx := context.Background()

	txts, err := resolver.LookupTXT(ctx, "sender.test")
	if err != nil {
		t.Fatalf("LookupTXT: %v", err)
	}
	if len(txts) != 1 || txts[0] != spf {
		t.Errorf("LookupTXT = %q, want the %d-byte SPF record joined again", txts, len(spf))
	}
	addrs, err := resolver.LookupHost(ctx, "mx1.sender.test")
	if err != nil {
		t.Fatalf("LookupHost: %v", err)
	}
	if !slices.Equal(addrs, []string{"127.0.0.2"}) {
		t.Errorf("LookupHost = %v, want [127.0.0.2]", addrs)
	}
	names, err := resolver.LookupAddr(ctx, "127.0.0.2")
	if err != nil {
		t.Fatalf("LookupAddr: %v", err)
	}
	if !slices.Equal(names, []string{"mx1.sender.test."}) {
		t.Errorf("LookupAddr = %v, want [mx1.sender.test.]", names)
	}
	if got := d.Queries(); !slices.Contains(got, "sender.test. TXT") {
		t.Errorf("Queries = %v, want it to contain %q", got, "sender.test. TXT")
	}
}

func TestDNSForcedAndMissingNames(t *testing.T) {
	d := testenv.StartDNS(t, "")
	d.SetA("only-a.test", "192.0.2.1")
	d.SetMX("gone.test", testenv.MX{Preference: 10, Host: "mx.gone.test"})
	d.SetNXDOMAIN("gone.test")
	d.SetSERVFAIL("broken.test")

	cases := []struct {
		name    string
		qtype   uint16
		rcode   int
		answers int
	}{
		{"unknown.test", dns.TypeMX, dns.RcodeNameError, 0},
		{"only-a.test", dns.TypeMX, dns.RcodeSuccess, 0},
		{"only-a.test", dns.TypeA, dns.RcodeSuccess, 1},
		{"gone.test", dns.TypeMX, dns.RcodeNameError, 0},
		{"broken.test", dns.TypeTXT, dns.RcodeServerFailure, 0},
	}
	for _, c := range cases {
		resp := queryDNS(t, "udp", d.Addr(), c.name, c.qtype)
		if resp.Rcode != c.rcode {
			t.Errorf("%s %s: rcode %s, want %s", c.name, dns.TypeToString[c.qtype],
				dns.RcodeToString[resp.Rcode], dns.RcodeToString[c.rcode])
		}
		if len(resp.Answer) != c.answers {
			t.Errorf("%s %s: %d answers, want %d", c.name, dns.TypeToString[c.qtype], len(resp.Answer), c.answers)
		}
	}

	d.Clear("gone.test")
	if resp := queryDNS(t, "udp", d.Addr(), "gone.test", dns.TypeMX); resp.Rcode != dns.RcodeNameError {
		t.Errorf("gone.test after Clear: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
}
