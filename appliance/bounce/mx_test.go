package bounce

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/lambgate/lambgate/appliance/envelope"
)

const dsnText = "From: Mail Delivery System <MAILER-DAEMON@bounce.example.test>\r\n" +
	"Subject: Undelivered Mail Returned to Sender\r\n\r\nreport\r\n.leading dot\r\n"

// dsnEnvelope is a queued DSN to alice@example.org.
func dsnEnvelope(rcpts ...string) *envelope.Envelope {
	if len(rcpts) == 0 {
		rcpts = []string{"alice@example.org"}
	}
	env := &envelope.Envelope{QueueID: "DSNQUEUEID01", Kind: envelope.KindBounce, From: ""}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, envelope.Recipient{Address: r, State: envelope.StatePending})
	}
	return env
}

// newTestDeliverer returns an MXDeliverer that sends from 127.0.0.2 to
// port and asks the DNS server at resolver.
func newTestDeliverer(t *testing.T, resolver string, port int, edit ...func(*Config)) (*MXDeliverer, *bytes.Buffer) {
	t.Helper()
	cfg := testConfig()
	cfg.SourceAddress = "127.0.0.2"
	cfg.Resolver = resolver
	cfg.MXPort = port
	cfg.DNSTimeout = 5 * time.Second
	cfg.ConnectTimeout = 5 * time.Second
	cfg.CommandTimeout = 30 * time.Second
	cfg.AllowInternalMX = true
	for _, e := range edit {
		e(&cfg)
	}
	var logs bytes.Buffer
	d, err := NewMXDeliverer(cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("NewMXDeliverer: %v", err)
	}
	return d, &logs
}

func deliverOne(t *testing.T, d *MXDeliverer, env *envelope.Envelope) envelope.Result {
	t.Helper()
	results, err := d.Deliver(context.Background(), env, bodyOf(dsnText))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(results) != 1 {
		t.Fatalf("%d results, expected 1: %+v", len(results), results)
	}
	return results[0]
}

func TestMXDeliveryIdentity(t *testing.T) {
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", nil)
	ns.add(t, "example.org. 300 IN MX 10 mx.example.org.", "mx.example.org. 300 IN A 127.0.0.1")
	d, _ := newTestDeliverer(t, ns.addr, mx.port(t))
	env := dsnEnvelope()
	env.Prepend = "X-Prepended: 1\r\n"

	r := deliverOne(t, d, env)

	if !r.Delivered {
		t.Fatalf("result %+v, expected delivered", r)
	}
	if want := fmt.Sprintf("mx.example.org[127.0.0.1]:%d", mx.port(t)); r.Relay != want {
		t.Errorf("Relay = %q, expected %q", r.Relay, want)
	}
	txns := mx.transactions()
	if len(txns) != 1 {
		t.Fatalf("MX received %d transactions, expected 1", len(txns))
	}
	got := txns[0]
	if host, _, _ := net.SplitHostPort(got.Remote); host != "127.0.0.2" {
		t.Errorf("connection came from %s, expected the source address 127.0.0.2", got.Remote)
	}
	if got.HELO != "bounce.example.test" {
		t.Errorf("HELO = %q, expected bounce.example.test", got.HELO)
	}
	if got.From != "" {
		t.Errorf("MAIL FROM = <%s>, expected <>", got.From)
	}
	if len(got.Rcpts) != 1 || got.Rcpts[0] != "alice@example.org" {
		t.Errorf("RCPT = %v, expected [alice@example.org]", got.Rcpts)
	}
	if want := "X-Prepended: 1\r\n" + dsnText; got.Data != want {
		t.Errorf("data = %q, expected %q", got.Data, want)
	}
}

func TestMXDeliveryFallsOverDeadMX(t *testing.T) {
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", nil)
	// Nothing listens on 127.0.0.3, so the preferred MX refuses.
	ns.add(t,
		"example.org. 300 IN MX 20 backup.example.org.",
		"example.org. 300 IN MX 10 dead.example.org.",
		"dead.example.org. 300 IN A 127.0.0.3",
		"backup.example.org. 300 IN A 127.0.0.1")
	d, logs := newTestDeliverer(t, ns.addr, mx.port(t))

	r := deliverOne(t, d, dsnEnvelope())

	if !r.Delivered {
		t.Fatalf("result %+v, expected delivered through the backup MX", r)
	}
	if want := fmt.Sprintf("backup.example.org[127.0.0.1]:%d", mx.port(t)); r.Relay != want {
		t.Errorf("Relay = %q, expected %q", r.Relay, want)
	}
	if len(mx.transactions()) != 1 {
		t.Errorf("backup MX received %d transactions, expected 1", len(mx.transactions()))
	}
	if !strings.Contains(logs.String(), "dead.example.org[127.0.0.3]") {
		t.Errorf("log does not name the dead MX:\n%s", logs)
	}
}

func TestMXDeliveryPreferenceOrder(t *testing.T) {
	ns := startDNS(t)
	primary := startMX(t, "127.0.0.1:0", nil)
	secondary := startMX(t, fmt.Sprintf("127.0.0.5:%d", primary.port(t)), nil)
	ns.add(t,
		"example.org. 300 IN MX 50 second.example.org.",
		"example.org. 300 IN MX 5 first.example.org.",
		"second.example.org. 300 IN A 127.0.0.5",
		"first.example.org. 300 IN A 127.0.0.1")
	d, _ := newTestDeliverer(t, ns.addr, primary.port(t))

	for i := range 5 {
		if r := deliverOne(t, d, dsnEnvelope()); !r.Delivered {
			t.Fatalf("delivery %d: %+v, expected delivered", i, r)
		}
	}
	if n := len(primary.transactions()); n != 5 {
		t.Errorf("preference 5 MX received %d of 5 DSNs, expected all", n)
	}
	if n := len(secondary.transactions()); n != 0 {
		t.Errorf("preference 50 MX received %d DSNs, expected none", n)
	}
}

func TestMXDeliveryDNSFailures(t *testing.T) {
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", nil)
	ns.add(t,
		"nullmx.example. 300 IN MX 0 .",
		"nohosts.example. 300 IN MX 10 gone.nohosts.example.",
		"implicit.example. 300 IN A 127.0.0.1")
	ns.fail("missing.example.", dns.RcodeNameError)
	ns.fail("gone.nohosts.example.", dns.RcodeNameError)
	ns.fail("broken.example.", dns.RcodeServerFailure)
	d, _ := newTestDeliverer(t, ns.addr, mx.port(t))

	tests := []struct {
		domain    string
		delivered bool
		permanent bool
		status    string
	}{
		{domain: "nullmx.example", permanent: true, status: "5.1.10"},
		{domain: "missing.example", permanent: true, status: "5.1.2"},
		{domain: "nohosts.example", permanent: true, status: "5.1.2"},
		{domain: "broken.example", permanent: false, status: "4.4.3"},
		{domain: "implicit.example", delivered: true, status: "2.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			r := deliverOne(t, d, dsnEnvelope("alice@"+tt.domain))
			if r.Delivered != tt.delivered {
				t.Errorf("Delivered = %v, expected %v (%+v)", r.Delivered, tt.delivered, r)
			}
			if r.Permanent != tt.permanent {
				t.Errorf("Permanent = %v, expected %v (%+v)", r.Permanent, tt.permanent, r)
			}
			if r.Enhanced != tt.status {
				t.Errorf("Enhanced = %q, expected %q (%s)", r.Enhanced, tt.status, r.Text)
			}
		})
	}
	if n := len(mx.transactions()); n != 1 {
		t.Errorf("MX received %d transactions, expected only the implicit MX's", n)
	}
}

func TestMXDeliveryRecipientReplies(t *testing.T) {
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", nil)
	mx.rejectRcpt("gone@example.org", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	mx.rejectRcpt("full@example.org", &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"})
	ns.add(t, "example.org. 300 IN MX 10 mx.example.org.", "mx.example.org. 300 IN A 127.0.0.1")
	d, _ := newTestDeliverer(t, ns.addr, mx.port(t))

	results, err := d.Deliver(context.Background(),
		dsnEnvelope("gone@example.org", "full@example.org", "ok@example.org"), bodyOf(dsnText))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	byRcpt := map[string]envelope.Result{}
	for _, r := range results {
		byRcpt[r.Recipient] = r
	}
	if len(byRcpt) != 3 {
		t.Fatalf("results %+v, expected one per recipient", results)
	}

	if r := byRcpt["gone@example.org"]; !r.Permanent || r.Code != 550 || r.Enhanced != "5.1.1" || r.Text != "no such user" {
		t.Errorf("gone: %+v, expected permanent 550 5.1.1 no such user", r)
	}
	if r := byRcpt["full@example.org"]; r.Permanent || r.Delivered || r.Code != 452 || r.Enhanced != "4.2.2" {
		t.Errorf("full: %+v, expected temporary 452 4.2.2", r)
	}
	if r := byRcpt["ok@example.org"]; !r.Delivered {
		t.Errorf("ok: %+v, expected delivered", r)
	}
	txns := mx.transactions()
	if len(txns) != 1 || len(txns[0].Rcpts) != 1 || txns[0].Rcpts[0] != "ok@example.org" {
		t.Errorf("MX transactions %+v, expected one with ok@example.org only", txns)
	}
}

func TestMXDeliveryOpportunisticSTARTTLS(t *testing.T) {
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", selfSignedTLS(t))
	ns.add(t, "example.org. 300 IN MX 10 mx.example.org.", "mx.example.org. 300 IN A 127.0.0.1")
	d, _ := newTestDeliverer(t, ns.addr, mx.port(t))

	if r := deliverOne(t, d, dsnEnvelope()); !r.Delivered {
		t.Fatalf("result %+v, expected delivered over a self-signed certificate", r)
	}
	txns := mx.transactions()
	if len(txns) != 1 {
		t.Fatalf("MX received %d transactions, expected 1", len(txns))
	}
	if !txns[0].TLS {
		t.Error("transaction ran without TLS although the MX offered STARTTLS")
	}
	if txns[0].HELO != "bounce.example.test" {
		t.Errorf("HELO after STARTTLS = %q, expected bounce.example.test", txns[0].HELO)
	}
}

func TestMXDeliveryFailedHandshakeFallsBack(t *testing.T) {
	ns := startDNS(t)
	// A TLS configuration without a certificate offers STARTTLS and then
	// fails every handshake.
	mx := startMX(t, "127.0.0.1:0", &tls.Config{})
	ns.add(t, "example.org. 300 IN MX 10 mx.example.org.", "mx.example.org. 300 IN A 127.0.0.1")
	d, logs := newTestDeliverer(t, ns.addr, mx.port(t))

	if r := deliverOne(t, d, dsnEnvelope()); !r.Delivered {
		t.Fatalf("result %+v, expected delivered in plain text", r)
	}
	if !strings.Contains(logs.String(), "STARTTLS failed") {
		t.Errorf("log does not record the failed handshake:\n%s", logs)
	}
	txns := mx.transactions()
	if len(txns) != 1 {
		t.Fatalf("MX received %d transactions, expected 1", len(txns))
	}
	if txns[0].TLS {
		t.Error("transaction ran with TLS, expected the plain text retry")
	}
}

func TestMXDeliveryTransactionReplies(t *testing.T) {
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", nil)
	ns.add(t, "example.org. 300 IN MX 10 mx.example.org.", "mx.example.org. 300 IN A 127.0.0.1")
	d, _ := newTestDeliverer(t, ns.addr, mx.port(t))

	tests := []struct {
		name      string
		mail      *smtp.SMTPError
		data      *smtp.SMTPError
		permanent bool
		code      int
		status    string
	}{
		{name: "null sender rejected", mail: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "no bounces"},
			permanent: true, code: 550, status: "5.7.1"},
		{name: "null sender deferred", mail: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"},
			permanent: false, code: 451, status: "4.7.1"},
		{name: "message rejected", data: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "content rejected"},
			permanent: true, code: 554, status: "5.6.0"},
		{name: "message deferred", data: &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "disk full"},
			permanent: false, code: 452, status: "4.3.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mx.rejectMailAndData(tt.mail, tt.data)
			r := deliverOne(t, d, dsnEnvelope())
			if r.Delivered {
				t.Fatalf("result %+v, expected a failure", r)
			}
			if r.Permanent != tt.permanent {
				t.Errorf("Permanent = %v, expected %v", r.Permanent, tt.permanent)
			}
			if r.Code != tt.code {
				t.Errorf("Code = %d, expected %d", r.Code, tt.code)
			}
			if r.Enhanced != tt.status {
				t.Errorf("Enhanced = %q, expected %q", r.Enhanced, tt.status)
			}
		})
	}
}

func TestMXDeliveryBindFailureStops(t *testing.T) {
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", nil)
	ns.add(t, "example.org. 300 IN MX 10 mx.example.org.", "mx.example.org. 300 IN A 127.0.0.1")
	// 192.0.2.1 (TEST-NET-1) is not an address of this machine.
	d, _ := newTestDeliverer(t, ns.addr, mx.port(t), func(c *Config) { c.SourceAddress = "192.0.2.1" })

	results, err := d.Deliver(context.Background(), dsnEnvelope(), bodyOf(dsnText))
	if err == nil {
		t.Fatalf("Deliver returned %+v and no error, expected a bind failure", results)
	}
	if !strings.Contains(err.Error(), "192.0.2.1") {
		t.Errorf("error %q does not name the source address", err)
	}
	if n := len(mx.transactions()); n != 0 {
		t.Errorf("MX received %d transactions, expected none from another address", n)
	}
}

func TestMXDeliveryBindsInterface(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_BINDTODEVICE needs CAP_NET_RAW; run as root")
	}
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", nil)
	ns.add(t, "example.org. 300 IN MX 10 mx.example.org.", "mx.example.org. 300 IN A 127.0.0.1")

	d, _ := newTestDeliverer(t, ns.addr, mx.port(t), func(c *Config) { c.Interface = "lo" })
	if r := deliverOne(t, d, dsnEnvelope()); !r.Delivered {
		t.Errorf("result %+v, expected delivered through lo", r)
	}

	d, _ = newTestDeliverer(t, ns.addr, mx.port(t), func(c *Config) { c.Interface = "lgtest-none0" })
	_, err := d.Deliver(context.Background(), dsnEnvelope(), bodyOf(dsnText))
	if err == nil || !strings.Contains(err.Error(), "lgtest-none0") {
		t.Errorf("Deliver error = %v, expected a bind failure naming lgtest-none0", err)
	}
	if n := len(mx.transactions()); n != 1 {
		t.Errorf("MX received %d transactions, expected only the one through lo", n)
	}
}

func TestMXDeliverySystemResolver(t *testing.T) {
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", nil)
	ns.add(t, "example.org. 300 IN MX 10 mx.example.org.", "mx.example.org. 300 IN A 127.0.0.1",
		"nullmx.example. 300 IN MX 0 .")
	d, _ := newTestDeliverer(t, "", mx.port(t))
	// The pure Go resolver, pointed at the test server, stands in for the
	// system's configured one.
	d.lookup = systemLookup{resolver: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, ns.addr)
		},
	}}

	if r := deliverOne(t, d, dsnEnvelope()); !r.Delivered {
		t.Errorf("result %+v, expected delivered", r)
	}
	if r := deliverOne(t, d, dsnEnvelope("alice@nullmx.example")); !r.Permanent || r.Enhanced != "5.1.10" {
		t.Errorf("null MX result %+v, expected permanent 5.1.10", r)
	}
}

func TestMXDeliverySkipsInternalAddresses(t *testing.T) {
	ns := startDNS(t)
	mx := startMX(t, "127.0.0.1:0", nil)
	ns.add(t,
		"example.org. 300 IN MX 10 mx.example.org.", "mx.example.org. 300 IN A 127.0.0.1",
		"private.example. 300 IN MX 10 mx.private.example.",
		"mx.private.example. 300 IN A 10.1.2.3",
		"mx.private.example. 300 IN A 169.254.1.1")
	d, _ := newTestDeliverer(t, ns.addr, mx.port(t), func(c *Config) {
		c.AllowInternalMX = false
		c.SourceAddress = ""
	})

	for _, domain := range []string{"example.org", "private.example"} {
		r := deliverOne(t, d, dsnEnvelope("alice@"+domain))
		if !r.Permanent || r.Enhanced != "5.4.4" {
			t.Errorf("%s: %+v, expected permanent 5.4.4 for internal MX addresses", domain, r)
		}
	}
	if n := len(mx.transactions()); n != 0 {
		t.Errorf("loopback MX received %d transactions, expected none", n)
	}
}

func TestMXDeliveryRejectsInboundKind(t *testing.T) {
	d, _ := newTestDeliverer(t, "127.0.0.1:53", 25)
	env := dsnEnvelope()
	env.Kind = envelope.KindInbound
	if _, err := d.Deliver(context.Background(), env, bodyOf(dsnText)); err == nil {
		t.Error("Deliver accepted an inbound message, expected an error")
	}
}
