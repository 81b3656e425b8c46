package smtpd

import (
	"strconv"
	"strings"
	"testing"
)

func TestBadSequenceReplies503(t *testing.T) {
	cases := []struct {
		name string
		ehlo bool
		line string
	}{
		{"MAIL before EHLO", false, "MAIL FROM:<a@sender.example>"},
		{"RCPT before MAIL", true, "RCPT TO:<b@relay.test>"},
		{"DATA before MAIL", true, "DATA"},
		{"BDAT before MAIL", true, "BDAT 0 LAST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.expect("220 ")
			if tc.ehlo {
				c.cmd("EHLO client.example", "250")
			}
			c.cmd(tc.line, "503 5.5.1 Bad sequence of commands")
			c.cmd("NOOP", "250")
		})
	}
}

func TestNestedMailRejected(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.cmd("MAIL FROM:<other@sender.example>", "503 5.5.1")

	// The first transaction is still open and unchanged.
	c.cmd("DATA", "354")
	c.send(message + ".\r\n")
	c.expect("250 2.0.0 OK: queued")
	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if from := msgs[0].env.From; from != "a@sender.example" {
		t.Errorf("envelope sender %q, want the first MAIL's a@sender.example", from)
	}

	// After the transaction, MAIL starts a new one.
	c.cmd("MAIL FROM:<other@sender.example>", "250")
}

func TestMaxErrorsCountsSequenceErrors(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxErrors = 3 })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("RCPT TO:<b@relay.test>", "503")
	c.cmd("DATA", "503")
	c.cmd("RCPT TO:<b@relay.test>", "421 4.7.0")
	if !c.closed() {
		t.Errorf("connection still open after MaxErrors")
	}
}

func TestMaxErrorsCountsUnknownCommands(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxErrors = 7 })
	c := dial(t, ts.addr)
	c.greet()
	// go-smtp alone closes the connection after its fourth syntax error;
	// MaxErrors decides here.
	for _, line := range []string{"FOO", "", "MAI", "MAILX FROM:<a@sender.example>", "XYZZY now", "GET / HTTP/1.1"} {
		c.cmd(line, "500 5.5.2")
	}
	c.cmd("NOOP", "250")
	c.cmd("FOO", "421 4.7.0")
	if !c.closed() {
		t.Errorf("connection still open after MaxErrors")
	}
}

func TestMaxErrorsCountsInsideTLS(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxErrors = 3 })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("FOO", "500")
	c.cmd("STARTTLS", "220")
	c.startTLS()
	c.cmd("EHLO client.example", "250")
	c.cmd("RCPT TO:<b@relay.test>", "503 5.5.1")
	c.cmd("STARTTLS", "421 4.7.0")
	if !c.closed() {
		t.Errorf("connection still open after MaxErrors")
	}
}

func TestTemporaryServerErrorsNotCounted(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) {
		c.MaxErrors = 2
		c.MaxRecipients = 1
	})
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	// After 452 the client sends these recipients in a later
	// transaction, so the reply is no error of the client's.
	for range 3 {
		c.cmd("RCPT TO:<c@relay.test>", "452 4.5.3")
	}
	c.cmd("DATA", "354")
	c.send(message + ".\r\n")
	c.expect("250 2.0.0 OK: queued")
}

func TestBDATResetContinuesSession(t *testing.T) {
	for _, reset := range []string{"RSET", "EHLO client.example", "STARTTLS"} {
		t.Run(reset, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.greet()
			c.cmd("MAIL FROM:<a@sender.example>", "250")
			c.cmd("RCPT TO:<b@relay.test>", "250")
			c.send("BDAT 10\r\nSubject: 1")
			c.expect("250 ")
			c.cmd(reset, "2")
			if reset == "STARTTLS" {
				c.startTLS()
				c.cmd("EHLO client.example", "250")
			}

			// The same connection transfers the next message, with no
			// trace of the aborted chunk.
			c.cmd("MAIL FROM:<c@sender.example>", "250")
			c.cmd("RCPT TO:<d@relay.test>", "250")
			c.send("BDAT " + strconv.Itoa(len(message)) + " LAST\r\n" + message)
			c.expect("250 2.0.0 OK: queued as")
			msgs := ts.store.messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages stored, want 1", len(msgs))
			}
			if strings.Contains(string(msgs[0].data), "Subject: 1") {
				t.Errorf("the aborted chunk leaked into the next message:\n%s", msgs[0].data)
			}
			if msgs[0].env.From != "c@sender.example" {
				t.Errorf("envelope sender %q, want c@sender.example", msgs[0].env.From)
			}
			c.cmd("NOOP", "250")
		})
	}
}

// An RSET after a chunk that go-smtp rejected finds no transfer to finish:
// the made-up command must not disturb the next transaction.
func TestBDATResetAfterRejectedChunk(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.send("BDAT 4\r\nabcd")
	c.expect("503")
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.cmd("RSET", "250")
	c.cmd("MAIL FROM:<c@sender.example>", "250")
	c.cmd("RCPT TO:<d@relay.test>", "250")
	c.send("BDAT " + strconv.Itoa(len(message)) + " LAST\r\n" + message)
	c.expect("250 2.0.0 OK: queued as")
	if n := len(ts.store.messages()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

func TestStartTLSInsideTLSRejected(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("STARTTLS", "220")
	c.startTLS()
	c.cmd("EHLO client.example", "250")
	c.cmd("STARTTLS", "503 5.5.1")
	c.cmd("NOOP", "250")
}

// The TLS session starts with no HELO and no transaction (RFC 3207).
func TestStartTLSResetsSession(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("STARTTLS", "220")
	c.startTLS()
	c.cmd("MAIL FROM:<a@sender.example>", "503 5.5.1")
	c.cmd("EHLO client.example", "250")
	reply := c.sendMessage("a@sender.example", "b@relay.test", message)
	if !strings.HasPrefix(reply, "250 2.0.0 OK: queued") {
		t.Fatalf("final reply %q, want 250 queued", reply)
	}
	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if !msgs[0].env.TLS {
		t.Errorf("envelope not marked as received over TLS")
	}
}

// STARTTLS takes no parameters (RFC 3207), and a longer verb that starts
// with STARTTLS is an unknown command. Neither may start TLS.
func TestStartTLSSyntax(t *testing.T) {
	cases := []struct {
		line, reply string
	}{
		{"STARTTLS foo", "501 5.5.4 Syntax error (no parameters allowed)"},
		{"starttls  foo bar", "501 5.5.4"},
		{"STARTTLSX", "500 5.5.2"},
		{"STARTTLS\tfoo", "500 5.5.2"},
		{"STARTTLS:", "500 5.5.2"},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.greet()
			c.cmd(tc.line, tc.reply)

			// The connection is still in plaintext and in the same
			// session, so the transaction continues and STARTTLS works.
			c.cmd("MAIL FROM:<a@sender.example>", "250")
			c.cmd("STARTTLS", "220")
			c.startTLS()
			c.cmd("EHLO client.example", "250")
		})
	}
}

func TestStartTLSTrailingSpaceAccepted(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("STARTTLS  ", "220")
	c.startTLS()
	c.cmd("EHLO client.example", "250")
}

// Without a TLS configuration go-smtp replies to a plain STARTTLS, and a
// STARTTLS with a parameter must still get the syntax error.
func TestStartTLSSyntaxWithoutTLS(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.TLS = nil })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("STARTTLS foo", "501 5.5.4")
	c.cmd("STARTTLSX", "500 5.5.2")
	c.cmd("STARTTLS", "5")
	c.cmd("NOOP", "250")
}
