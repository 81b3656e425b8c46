package smtpd

import (
	"io"
	"strconv"
	"strings"
	"testing"
)

// smuggled is a second transaction that a smuggling attack hides behind a
// bare line end; the test server must never queue it.
const smuggled = "MAIL FROM:<evil@sender.example>\r\nRCPT TO:<victim@relay.test>\r\nDATA\r\n" +
	"Subject: smuggled\r\n\r\nsmuggled\r\n"

// contentCases are DATA contents (sent after the 354 reply) that contain a
// bare CR or LF. Each ends with a real end of data, so that a server that
// reads it as one message replies once.
var contentCases = []struct {
	name    string
	content string
}{
	{"bare LF in body", "Subject: x\r\n\r\nline one\nline two\r\n.\r\n"},
	{"bare CR in body", "Subject: x\r\n\r\nline one\rline two\r\n.\r\n"},
	{"bare LF in header", "Subject: x\nX-Other: y\r\n\r\nbody\r\n.\r\n"},
	{"LF dot CRLF end", "Subject: x\r\n\r\nbody\n.\r\n" + smuggled + ".\r\n"},
	{"CRLF dot LF end", "Subject: x\r\n\r\nbody\r\n.\n" + smuggled + ".\r\n"},
	{"CR dot CR end", "Subject: x\r\n\r\nbody\r.\r" + smuggled + ".\r\n"},
	{"LF dot LF end", "Subject: x\r\n\r\nbody\n.\n" + smuggled + ".\r\n"},
	{"CR dot CRLF end", "Subject: x\r\n\r\nbody\r.\r\n" + smuggled + ".\r\n"},
	// go-smtp's DATA reader drops a dot and a bare CR at a line start.
	{"CRLF dot CR", "Subject: x\r\n\r\nbody\r\n.\rX\r\n.\r\n"},
	// go-smtp reads "\r\r\n" as no line end at all, so one more CRLF
	// comes before the end of data.
	{"CR before CRLF", "Subject: x\r\n\r\nbody\r\r\n\r\n.\r\n"},
}

func TestSmugglingPlaintextContentRejected(t *testing.T) {
	testContentRejected(t, false)
}

// Inside TLS the same scanner checks the decrypted stream, so a bare line
// end in content gets the same reply and close as in plaintext.
func TestSmugglingTLSContentRejected(t *testing.T) {
	testContentRejected(t, true)
}

func testContentRejected(t *testing.T, useTLS bool) {
	for _, tc := range contentCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.greet()
			if useTLS {
				c.cmd("STARTTLS", "220")
				c.startTLS()
				c.cmd("EHLO client.example", "250")
			}
			c.cmd("MAIL FROM:<a@sender.example>", "250")
			c.cmd("RCPT TO:<b@relay.test>", "250")
			c.cmd("DATA", "354")
			c.send(tc.content)

			reply := c.reply()
			if !strings.HasPrefix(reply, "500 5.5.2 Bare CR or LF") {
				t.Errorf("reply %q, want 500 5.5.2 Bare CR or LF", reply)
			}
			if !c.closed() {
				t.Errorf("connection still open after the framing error")
			}
			if n := len(ts.store.messages()); n != 0 {
				t.Errorf("%d messages stored, want none", n)
			}
		})
	}
}

// commandCases are command streams with a bare CR or LF, sent after EHLO.
var commandCases = []struct {
	name   string
	stream string
}{
	{"bare LF after MAIL", "MAIL FROM:<a@sender.example>\nRCPT TO:<b@relay.test>\r\n"},
	{"bare CR after MAIL", "MAIL FROM:<a@sender.example>\rRCPT TO:<b@relay.test>\r\n"},
	{"bare LF inside RCPT", "MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@relay.test\n>\r\n"},
	{"bare LF after DATA", "MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@relay.test>\r\nDATA\n" +
		"Subject: x\r\n\r\nbody\r\n.\r\n"},
	{"pipelined after LF dot LF", "MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@relay.test>\r\n" +
		"DATA\r\nbody\n.\n" + smuggled + ".\r\n"},
	{"bare LF in BDAT line", "MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@relay.test>\r\n" +
		"BDAT 6 LAST\nbody\r\n"},
}

func TestSmugglingPlaintextCommandsRejected(t *testing.T) {
	testCommandsRejected(t, false)
}

func TestSmugglingTLSCommandsRejected(t *testing.T) {
	testCommandsRejected(t, true)
}

func testCommandsRejected(t *testing.T, useTLS bool) {
	for _, tc := range commandCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.greet()
			if useTLS {
				c.cmd("STARTTLS", "220")
				c.startTLS()
				c.cmd("EHLO client.example", "250")
			}
			c.send(tc.stream)

			var replies []string
			for {
				r := c.reply()
				if r == "" {
					break
				}
				replies = append(replies, r)
			}
			if len(replies) == 0 {
				t.Fatalf("no reply, want 500 5.5.2 before the close")
			}
			last := replies[len(replies)-1]
			if !strings.HasPrefix(last, "500 5.5.2 Bare CR or LF") {
				t.Errorf("last reply %q, want 500 5.5.2 Bare CR or LF (all: %q)", last, replies)
			}
			for _, r := range replies {
				if strings.HasPrefix(r, "250 2.0.0 OK: queued") {
					t.Errorf("a message was queued: %q", replies)
				}
			}
			if n := len(ts.store.messages()); n != 0 {
				t.Errorf("%d messages stored, want none", n)
			}
		})
	}
}

func TestSmugglingBDATContentRejected(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "plaintext"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.greet()
			if useTLS {
				c.cmd("STARTTLS", "220")
				c.startTLS()
				c.cmd("EHLO client.example", "250")
			}
			c.cmd("MAIL FROM:<a@sender.example>", "250")
			c.cmd("RCPT TO:<b@relay.test>", "250")
			chunk := "Subject: x\r\n\r\nbody\n.\r\n"
			c.send("BDAT " + strconv.Itoa(len(chunk)) + " LAST\r\n" + chunk)
			c.expect("554 5.5.2 Bare CR or LF in message content")
			c.cmd("NOOP", "250")
			if n := len(ts.store.messages()); n != 0 {
				t.Errorf("%d messages stored, want none", n)
			}
		})
	}
}

func TestStartTLSDropsPipelinedCommands(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	// A transaction injected in the same packet as STARTTLS must not
	// survive into the TLS session.
	c.send("STARTTLS\r\nMAIL FROM:<evil@sender.example>\r\nRCPT TO:<victim@relay.test>\r\n")
	c.expect("220 ")
	c.startTLS()
	c.cmd("EHLO client.example", "250")

	// With an injected MAIL FROM in effect, RCPT would be accepted.
	reply := c.cmd("RCPT TO:<b@relay.test>", "5")
	if !strings.Contains(reply, "MAIL") {
		t.Errorf("RCPT reply %q, want a missing MAIL FROM error", reply)
	}
	noop := c.cmd("NOOP", "250")
	if !strings.Contains(noop, "successfully done nothing") {
		t.Errorf("reply %q, want the NOOP reply and no reply to an injected command", noop)
	}
}

func TestStartTLSDropsInjectedRset(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.send("STARTTLS\r\nRSET\r\n")
	c.expect("220 ")
	c.startTLS()
	c.send("NOOP\r\n")
	reply := c.expect("250")
	if !strings.Contains(reply, "successfully done nothing") {
		t.Errorf("first reply in TLS %q, want the NOOP reply, not RSET's", reply)
	}
}

func TestFailedHandshakeClosesConnection(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("STARTTLS", "220")
	// A TLS record with a malformed handshake message fails the
	// handshake at once. The server sends a TLS alert and closes: after
	// a failed handshake neither side can read plaintext replies.
	c.send("\x16\x03\x01\x00\x05hello")
	_, _ = io.WriteString(c.conn, "NOOP\r\nNOOP\r\n")
	rest, _ := io.ReadAll(c.r)
	if strings.Contains(string(rest), "250") {
		t.Errorf("server answered %q after a failed handshake, want a closed connection", rest)
	}
	if !strings.Contains(ts.logs.String(), "TLS handshake failed") {
		t.Errorf("the failed handshake was not logged")
	}
}
