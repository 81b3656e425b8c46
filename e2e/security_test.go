package e2e

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/internal/testenv"
)

// relayTricks are recipient addresses that name example.test (the relay
// domain) somewhere but route, or could be made to route, elsewhere.
var relayTricks = []struct{ name, rcpt string }{
	{"foreign domain", "user@other.example"},
	{"percent hack", "user%other.example@example.test"},
	{"percent hack upper case", "user%other.example@EXAMPLE.TEST"},
	{"source route", "@example.test:user@other.example"},
	{"source route list", "@example.test,@mx.example.test:user@other.example"},
	{"bang path", "other.example!user@example.test"},
	{"quoted at", `"user@other.example"@example.test`},
	{"quoted percent", `"user%other.example"@example.test`},
	{"quoted whole address", `"user@other.example"`},
	{"double at", "user@other.example@example.test"},
	{"relay domain first", "user@example.test@other.example"},
	{"escaped at", `user\@other.example@example.test`},
	{"ip literal", "user@[127.0.0.1]"},
	{"ipv6 literal", "user@[IPv6:::1]"},
	{"relay domain as prefix", "user@example.test.other.example"},
	{"subdomain", "user@sub.example.test"},
	{"trailing dot", "user@other.example."},
	{"comment", "user@other.example(example.test)"},
	{"homograph", "user@ex\u0430mple.test"},
	{"foreign postmaster", "postmaster@other.example"},
}

func TestOpenRelayTricksRejected(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	gw := startGateway(t, baseSettings(t, pf.Addr()))

	for _, tc := range relayTricks {
		t.Run(tc.name, func(t *testing.T) {
			out, code := testenv.Swaks(t, "--server", gw.Addr(),
				"--from", "sender@example.org", "--to", tc.rcpt)
			if code != 24 {
				t.Errorf("swaks exit %d, want 24 (recipient rejected):\n%s", code, out)
			}
			if !strings.Contains(out, "<** 5") {
				t.Errorf("no 5xx reply to RCPT:\n%s", out)
			}
		})
	}

	// A marker message proves the path works and that nothing else got
	// through before it.
	if out, code := testenv.Swaks(t, "--server", gw.Addr(),
		"--from", "sender@example.org", "--to", "alice@example.test"); code != 0 {
		t.Fatalf("marker: swaks exit %d:\n%s", code, out)
	}
	pf.WaitMessages(t, "alice@example.test", 1, 30*time.Second)
	if c := pf.Count(); c != 1 {
		t.Errorf("Postfix holds %d messages, want only the marker", c)
	}
}

// smuggledTail ends a fake message and starts a second transaction for a
// recipient the client never named in the real envelope.
const smuggledTail = "MAIL FROM:<evil@example.org>\r\n" +
	"RCPT TO:<victim@example.test>\r\n" +
	"DATA\r\n" +
	"Subject: smuggled\r\n\r\nsmuggled body\r\n.\r\n"

var smuggleCases = []struct{ name, end string }{
	{"bare LF dot CRLF", "\n.\r\n"},
	{"CRLF dot bare LF", "\r\n.\n"},
	{"bare CR dot bare CR", "\r.\r"},
	{"bare LF dot bare LF", "\n.\n"},
	{"bare CR dot CRLF", "\r.\r\n"},
	{"CRLF dot bare CR", "\r\n.\r"},
}

func TestSmugglingNeverReachesPostfix(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	gw := startGateway(t, baseSettings(t, pf.Addr()))

	for _, tc := range smuggleCases {
		t.Run(tc.name, func(t *testing.T) {
			replies := rawSession(t, gw.Addr(),
				"EHLO client.example.org\r\n"+
					"MAIL FROM:<sender@example.org>\r\n"+
					"RCPT TO:<alice@example.test>\r\n"+
					"DATA\r\n",
				"Subject: carrier\r\n\r\ncarrier body"+tc.end+smuggledTail+"\r\n.\r\nQUIT\r\n")
			if strings.Contains(replies, "queued as") {
				t.Errorf("a message was accepted:\n%s", replies)
			}
		})
	}

	if out, code := testenv.Swaks(t, "--server", gw.Addr(),
		"--from", "sender@example.org", "--to", "bob@example.test"); code != 0 {
		t.Fatalf("marker: swaks exit %d:\n%s", code, out)
	}
	pf.WaitMessages(t, "bob@example.test", 1, 30*time.Second)
	if c := pf.Count(); c != 1 {
		t.Errorf("Postfix holds %d messages, want only the marker; victim got %d, alice got %d",
			c, len(pf.Messages("victim@example.test")), len(pf.Messages("alice@example.test")))
	}
}

// rawSession sends head, waits for the 354 reply to DATA, sends body and
// returns every reply line the gateway sent until it closed the connection.
func rawSession(t *testing.T, addr, head, body string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))

	r := bufio.NewReader(conn)
	var replies strings.Builder
	readUntil := func(prefix string) {
		for {
			line, err := r.ReadString('\n')
			replies.WriteString(line)
			if err != nil || strings.HasPrefix(line, prefix) {
				return
			}
		}
	}
	readUntil("220 ")
	io.WriteString(conn, head)
	readUntil("354 ")
	io.WriteString(conn, body)
	rest, _ := io.ReadAll(r)
	replies.Write(rest)
	return replies.String()
}

// STARTTLS runs in the gateway's own connection layer rather than in
// go-smtp, so a real client must still negotiate it and deliver.
func TestSTARTTLSDeliversWithSwaks(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	gw := startGateway(t, baseSettings(t, pf.Addr()))

	out, code := testenv.Swaks(t, "--server", gw.Addr(), "--tls", "--pipeline",
		"--from", "sender@example.org", "--to", "alice@example.test")
	if code != 0 {
		t.Fatalf("swaks exit %d, want 0:\n%s", code, out)
	}
	if !strings.Contains(out, "TLS started") {
		t.Errorf("swaks did not start TLS:\n%s", out)
	}
	msgs := pf.WaitMessages(t, "alice@example.test", 1, 30*time.Second)
	if !strings.Contains(string(msgs[0].Raw), "with ESMTPS") {
		t.Errorf("Received header does not record TLS:\n%s", msgs[0].Raw)
	}
}

func TestProtocolErrorsCountTowardsMaxErrors(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	s := baseSettings(t, pf.Addr())
	s.Inbound.MaxErrors = 4
	gw := startGateway(t, s)

	c := dialSession(t, gw.Addr())
	c.command("EHLO client.example.org", "250 ")
	c.command("RCPT TO:<alice@example.test>", "503 5.5.1")
	c.command("MAIL FROM:<sender@example.org>", "250 ")
	c.command("MAIL FROM:<other@example.org>", "503 5.5.1")
	c.command("STARTTLS", "220 ")
	c.startTLS()
	c.command("EHLO client.example.org", "250 ")
	c.command("XYZZY", "500 5.5.2")
	c.command("DATA", "421 4.7.0")
	if line, err := c.r.ReadString('\n'); err == nil {
		t.Errorf("connection still open after max_errors, read %q", line)
	}
}

func TestSmugglingInsideTLSNeverReachesPostfix(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	gw := startGateway(t, baseSettings(t, pf.Addr()))

	for _, tc := range smuggleCases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSession(t, gw.Addr())
			c.command("EHLO client.example.org", "250 ")
			c.command("STARTTLS", "220 ")
			c.startTLS()
			c.command("EHLO client.example.org", "250 ")
			c.command("MAIL FROM:<sender@example.org>", "250 ")
			c.command("RCPT TO:<alice@example.test>", "250 ")
			c.command("DATA", "354 ")
			io.WriteString(c.conn, "Subject: carrier\r\n\r\ncarrier body"+tc.end+smuggledTail+"\r\n.\r\nQUIT\r\n")
			rest, _ := io.ReadAll(c.r)
			if strings.Contains(string(rest), "queued as") {
				t.Errorf("a message was accepted:\n%s", rest)
			}
		})
	}

	if out, code := testenv.Swaks(t, "--server", gw.Addr(), "--tls",
		"--from", "sender@example.org", "--to", "bob@example.test"); code != 0 {
		t.Fatalf("marker: swaks exit %d:\n%s", code, out)
	}
	pf.WaitMessages(t, "bob@example.test", 1, 30*time.Second)
	if c := pf.Count(); c != 1 {
		t.Errorf("Postfix holds %d messages, want only the marker", c)
	}
}

// tlsSession is a raw SMTP client that can switch to TLS.
type tlsSession struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dialSession connects and reads the greeting.
func dialSession(t *testing.T, addr string) *tlsSession {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &tlsSession{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expect("220 ")
	return c
}

// command sends line and reads the reply, whose last line must start with
// prefix.
func (c *tlsSession) command(line, prefix string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	c.expect(prefix)
}

func (c *tlsSession) expect(prefix string) {
	c.t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reply %q: %v, want %q", line, err, prefix)
		}
		if len(line) > 3 && line[3] == '-' {
			continue
		}
		if !strings.HasPrefix(line, prefix) {
			c.t.Fatalf("reply %q, want %q", line, prefix)
		}
		return
	}
}

// startTLS runs the handshake after a 220 reply to STARTTLS. The gateway's
// certificate is self-signed, so it is not verified.
func (c *tlsSession) startTLS() {
	c.t.Helper()
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}
