package smtpd

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lambgate/lambgate/appliance/policy"
)

func TestSetConfigKeepsOpenConnections(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxRecipients = 3 })
	old := dial(t, ts.addr)
	old.greet()

	cfg := testConfig(t)
	cfg.MaxRecipients = 1
	if err := ts.srv.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}

	// The open connection keeps the limits it was accepted with.
	old.cmd("MAIL FROM:<a@sender.example>", "250")
	old.cmd("RCPT TO:<a@relay.test>", "250")
	old.cmd("RCPT TO:<b@relay.test>", "250")
	old.cmd("DATA", "354")
	old.send(message + ".\r\n")
	old.expect("250 ")

	fresh := dial(t, ts.addr)
	fresh.greet()
	fresh.cmd("MAIL FROM:<a@sender.example>", "250")
	fresh.cmd("RCPT TO:<a@relay.test>", "250")
	fresh.cmd("RCPT TO:<b@relay.test>", "452 4.5.3")
}

func TestSetConfigRejectsMissingLimit(t *testing.T) {
	ts := startServer(t)
	cfg := testConfig(t)
	cfg.MaxErrors = 0
	err := ts.srv.SetConfig(cfg)
	if err == nil || !strings.Contains(err.Error(), "max_errors") {
		t.Errorf("SetConfig error %v, want one naming max_errors", err)
	}
}

func TestShutdownWaitsForClient(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: sent across the stop\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(context.Background()) }()

	// The message in transfer still completes; then the session ends.
	c.send("body\r\n.\r\n")
	if reply := c.reply(); !strings.HasPrefix(reply, "250 ") {
		t.Errorf("reply during shutdown %q, want 250", reply)
	}
	c.expect("421 4.3.2 ")
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		t.Errorf("server still accepts connections after Shutdown")
	}
}

func TestSPFResultRecordedNotEnforced(t *testing.T) {
	resolver := startTXTServer(t, map[string]string{
		"pass.example.": "v=spf1 ip4:127.0.0.1 -all",
		"fail.example.": "v=spf1 ip4:192.0.2.1 -all",
	})
	ts := startServer(t, func(c *Config, d *Deps) {
		c.SPF = true
		d.SPF = &policy.SPFChecker{Resolver: resolver, Timeout: 5 * time.Second}
	})
	c := dial(t, ts.addr)
	c.greet()
	c.sendMessage("a@pass.example", "b@relay.test", message)
	c.sendMessage("a@fail.example", "b@relay.test", message)
	msgs := ts.store.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages stored, want 2 (SPF fail must not reject)", len(msgs))
	}
	if got := msgs[0].env.SPF; got != "pass" {
		t.Errorf("SPF of pass.example %q, want pass", got)
	}
	if got := msgs[1].env.SPF; got != "fail" {
		t.Errorf("SPF of fail.example %q, want fail", got)
	}
}

// startTXTServer serves TXT records on a loopback UDP port and returns a
// resolver that sends its queries only there.
func startTXTServer(t *testing.T, txt map[string]string) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		if v, ok := txt[strings.ToLower(q.Name)]; ok && q.Qtype == dns.TypeTXT {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: []string{v},
			})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: handler}
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

func TestCloseAfterTimedOutShutdownEndsSessions(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	// The client stalls inside DATA, so Shutdown runs out of time.
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: half a message")
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil with a client still connected")
	}
	ts.srv.Close()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.conn.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the session is still open after Close")
			}
			return
		}
	}
}

func TestShutdownEndsIdleSessionsAtOnce(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(ctx) }()
	c.expect("421 4.3.2 ")
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown with one idle client took %v", d)
	}
}
