package e2e

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/internal/testenv"
)

// bounceWorld is a sender domain with an MX and an SPF record that passes
// for 127.0.0.1, a forged domain whose SPF fails, and the sink that acts
// as both domains' MX.
type bounceWorld struct {
	dns  *testenv.DNS
	sink *testenv.Sink
}

const (
	mxAddr       = "127.0.0.20"
	bounceSource = "127.0.0.30"
	bounceHELO   = "bounce.example.test"
)

func newBounceWorld(t *testing.T) *bounceWorld {
	dns := testenv.StartDNS(t, "")
	_, port, err := net.SplitHostPort(testenv.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	sink := testenv.StartSink(t, net.JoinHostPort(mxAddr, port))
	for _, domain := range []string{"sender.test", "forged.test"} {
		dns.SetMX(domain, testenv.MX{Preference: 10, Host: "mx." + domain})
		dns.SetA("mx."+domain, mxAddr)
	}
	dns.SetTXT("sender.test", "v=spf1 ip4:127.0.0.1 -all")
	dns.SetTXT("forged.test", "v=spf1 ip4:192.0.2.1 -all")
	return &bounceWorld{dns: dns, sink: sink}
}

// configure points the gateway's bounce role at the world.
func (w *bounceWorld) configure(t *testing.T, s *settings.Settings) {
	s.Inbound.SPF = true
	s.Bounce.RequireSPFPass = true
	s.Bounce.Resolver = w.dns.Addr()
	s.Bounce.SourceAddress = bounceSource
	s.Bounce.HELO = bounceHELO
	s.Bounce.AllowInternalMX = true
	_, port, err := net.SplitHostPort(w.sink.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s.Bounce.MXPort, err = strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
}

func waitLog(t *testing.T, gw *testenv.Gateway, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(gw.Log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("gateway log never showed %q:\n%s", want, tail(gw.Log(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPermanentFailureBouncesFromBounceRole(t *testing.T) {
	world := newBounceWorld(t)
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{RejectRecipients: []string{"gone@example.test"}})
	s := baseSettings(t, pf.Addr())
	world.configure(t, s)
	gw := startGateway(t, s)

	senders := []struct{ from, name string }{
		{"alice@sender.test", "spf pass"},
		{"<>", "null sender"},
		{"mallory@forged.test", "spf fail"},
	}
	for _, snd := range senders {
		out, code := testenv.Swaks(t, "--server", gw.Addr(), "--from", snd.from,
			"--to", "gone@example.test", "--header", "Subject: "+snd.name)
		if code != 0 {
			t.Fatalf("%s: swaks exit %d:\n%s", snd.name, code, out)
		}
	}

	dsns := world.sink.WaitMessages(t, 1, 60*time.Second)
	// Both suppressions are decided before this point is passed, so a
	// wrongly sent DSN would already be on its way.
	waitLog(t, gw, "reason=null_sender", 30*time.Second)
	waitLog(t, gw, "reason=spf_not_pass", 30*time.Second)
	time.Sleep(2 * time.Second)
	if got := len(world.sink.Messages()); got != 1 {
		t.Fatalf("sender's MX received %d DSNs, want 1 (only for the SPF-passing sender)", got)
	}

	dsn := dsns[0]
	if dsn.ClientAddr != bounceSource {
		t.Errorf("DSN came from %s, want the bounce address %s", dsn.ClientAddr, bounceSource)
	}
	if dsn.HELO != bounceHELO {
		t.Errorf("DSN HELO = %q, want %q", dsn.HELO, bounceHELO)
	}
	if dsn.MailFrom != "" {
		t.Errorf("DSN MAIL FROM = %q, want the null sender", dsn.MailFrom)
	}
	if len(dsn.Rcpts) != 1 || dsn.Rcpts[0] != "alice@sender.test" {
		t.Errorf("DSN recipients = %v, want [alice@sender.test]", dsn.Rcpts)
	}
	for _, want := range []string{"multipart/report", "report-type=delivery-status", "Final-Recipient: rfc822; gone@example.test", "Action: failed", "Status: 5.2.1"} {
		if !strings.Contains(string(dsn.Data), want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn.Data)
		}
	}
	if c := pf.Count(); c != 0 {
		t.Errorf("Postfix delivered %d messages, want 0", c)
	}
}

func TestBouncePolicySendsDSNForUnknown(t *testing.T) {
	world := newBounceWorld(t)
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	s := baseSettings(t, pf.Addr())
	world.configure(t, s)
	s.Recipients.Validation = settings.ValidateStatic
	s.Recipients.Static = []string{"alice@example.test"}
	s.Recipients.Unknown = settings.UnknownBounce
	gw := startGateway(t, s)

	out, code := testenv.Swaks(t, "--server", gw.Addr(), "--from", "carol@sender.test",
		"--to", "nobody@example.test")
	if code != 0 {
		t.Fatalf("unknown recipient under the bounce policy was not accepted: swaks exit %d:\n%s", code, out)
	}
	dsn := world.sink.WaitMessages(t, 1, 60*time.Second)[0]
	if dsn.ClientAddr != bounceSource {
		t.Errorf("DSN came from %s, want %s", dsn.ClientAddr, bounceSource)
	}
	if !strings.Contains(string(dsn.Data), "Status: 5.1.1") {
		t.Errorf("DSN lacks Status: 5.1.1:\n%s", dsn.Data)
	}
	if c := pf.Count(); c != 0 {
		t.Errorf("the unknown recipient's message reached Postfix (%d messages)", c)
	}
}
