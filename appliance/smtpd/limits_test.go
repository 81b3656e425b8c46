package smtpd

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestConnectionLimitPerIP(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxConnectionsPerIP = 2 })
	for range 2 {
		c := dial(t, ts.addr)
		c.expect("220 ")
	}
	c := dial(t, ts.addr)
	c.expect("421 4.7.0")
	if !c.closed() {
		t.Errorf("connection over the limit still open")
	}
}

func TestConnectionLimitTotal(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxConnections = 1 })
	first := dial(t, ts.addr)
	first.expect("220 ")
	second := dial(t, ts.addr)
	second.expect("421 4.7.0")

	// A closed connection frees its slot.
	first.cmd("QUIT", "221")
	if !first.closed() {
		t.Fatalf("QUIT did not close the connection")
	}
	var reply string
	for range 50 {
		c := dial(t, ts.addr)
		reply = c.reply()
		if strings.HasPrefix(reply, "220 ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("after the first client quit, banner %q, want 220", reply)
}

func TestMaxErrorsClosesConnection(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxErrors = 3 })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<a@evil.example>", "550 5.7.1")
	c.cmd("RCPT TO:<b@evil.example>", "550 5.7.1")
	c.cmd("RCPT TO:<c@evil.example>", "421 4.7.0")
	if !c.closed() {
		t.Errorf("connection still open after MaxErrors")
	}
}

func TestMaxRecipientsPerMessage(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxRecipients = 2 })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<a@relay.test>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.cmd("RCPT TO:<c@relay.test>", "452 4.5.3")
	c.cmd("DATA", "354")
	c.send(message + ".\r\n")
	c.expect("250 ")
	if n := len(ts.store.messages()[0].env.Recipients); n != 2 {
		t.Errorf("%d recipients stored, want 2", n)
	}
}

func TestMessageSizeLimitData(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxMessageBytes = 1000 })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example> SIZE=5000", "552 5.3.4")
	reply := c.sendMessage("a@sender.example", "b@relay.test",
		message+strings.Repeat("0123456789012345678901234567890123456789\r\n", 30))
	if !strings.HasPrefix(reply, "552 5.3.4") {
		t.Errorf("reply %q, want 552 5.3.4", reply)
	}
	if n := len(ts.store.messages()); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

func TestHopCountDetectsLoop(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxHops = 3 })
	hops := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("Received: from hop" + strconv.Itoa(i) + ".example by x; date\r\n")
		}
		return b.String()
	}
	c := dial(t, ts.addr)
	c.greet()
	if r := c.sendMessage("a@sender.example", "b@relay.test", hops(2)+message); !strings.HasPrefix(r, "250 ") {
		t.Errorf("two hops: reply %q, want 250", r)
	}
	r := c.sendMessage("a@sender.example", "b@relay.test", "received: from x\r\n"+hops(2)+message)
	if !strings.HasPrefix(r, "554 5.4.6") {
		t.Errorf("three hops: reply %q, want 554 5.4.6", r)
	}
	// A Received line in the body is no hop.
	r = c.sendMessage("a@sender.example", "b@relay.test", message+hops(5))
	if !strings.HasPrefix(r, "250 ") {
		t.Errorf("Received lines in the body: reply %q, want 250", r)
	}
	if n := len(ts.store.messages()); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
}

func TestLineLengthLimitPlaintext(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.send("NOOP " + strings.Repeat("x", 1200) + "\r\n")
	c.expect("500 5.5.2 Line too long")
	if !c.closed() {
		t.Errorf("connection still open after an overlong line")
	}
}

func TestBDATChunksStoredExactly(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example> BODY=8BITMIME", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	// The CRLF is split across chunks, which BDAT allows.
	first := "Subject: chunks\r\n\r\nfirst part\r"
	second := "\nsecond part without a final line end"
	c.send("BDAT " + strconv.Itoa(len(first)) + "\r\n" + first)
	c.expect("250 ")
	c.send("BDAT " + strconv.Itoa(len(second)) + " LAST\r\n" + second)
	c.expect("250 2.0.0 OK: queued as")

	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	want := first + second + "\r\n"
	if !strings.HasSuffix(string(msgs[0].data), "\r\n"+want) {
		t.Errorf("stored message:\n%q\nwant it to end with\n%q", msgs[0].data, want)
	}
	if msgs[0].env.BodyType != "8BITMIME" {
		t.Errorf("body type %q, want 8BITMIME", msgs[0].env.BodyType)
	}
}

func TestBDATSizeLimit(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxMessageBytes = 1000 })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	// go-smtp v0.26.0 discards a chunk over the limit under the line
	// length limit, so the chunk here has short lines.
	chunk := strings.Repeat("012345678901234567890123456789012345678901234567\r\n", 30)
	c.send("BDAT " + strconv.Itoa(len(chunk)) + " LAST\r\n" + chunk)
	c.expect("552 5.3.4")
	c.cmd("NOOP", "250")
	if n := len(ts.store.messages()); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

func TestDSNParametersKept(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example> RET=HDRS ENVID=env+2Bid", "250")
	c.cmd("RCPT TO:<b@relay.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@relay.test", "250")
	c.cmd("DATA", "354")
	c.send(message + ".\r\n")
	c.expect("250 ")
	env := ts.store.messages()[0].env
	if env.DSNReturn != "HDRS" {
		t.Errorf("RET %q, want HDRS", env.DSNReturn)
	}
	if env.EnvID != "env+id" {
		t.Errorf("ENVID %q, want env+id", env.EnvID)
	}
	r := env.Recipients[0]
	if strings.Join(r.Notify, ",") != "SUCCESS,FAILURE" {
		t.Errorf("NOTIFY %q, want SUCCESS,FAILURE", r.Notify)
	}
	if r.ORCPT != "RFC822;b@relay.test" {
		t.Errorf("ORCPT %q, want RFC822;b@relay.test", r.ORCPT)
	}
}

func TestDataTimeoutClosesConnection(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.DataTimeout = 300 * time.Millisecond })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: slow\r\n\r\nthe rest never comes\r\n")
	c.expect("421 4.4.2")
	if !c.closed() {
		t.Errorf("connection still open after the data timeout")
	}
	if n := len(ts.store.messages()); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

func TestDataTimeoutBDAT(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.DataTimeout = 300 * time.Millisecond })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.send("BDAT 100 LAST\r\nSubject: slow\r\n")
	c.expect("421 4.4.2")
	if !c.closed() {
		t.Errorf("connection still open after the data timeout")
	}
	if n := len(ts.store.messages()); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

func TestCommandTimeoutClosesIdleClient(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.CommandTimeout = 300 * time.Millisecond })
	c := dial(t, ts.addr)
	c.greet()
	c.expect("421 4.4.2")
	if !c.closed() {
		t.Errorf("idle connection still open after the command timeout")
	}
}

func TestBDATCutShortByCloseNotStored(t *testing.T) {
	cases := []struct {
		name, chunk string
	}{
		{"last chunk", "BDAT 100000 LAST\r\nSubject: cut\r\n\r\nonly part of the declared size\r\n"},
		{"middle chunk", "BDAT 5000\r\nSubject: cut\r\n\r\nonly part of the first chunk\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.greet()
			c.cmd("MAIL FROM:<a@sender.example>", "250")
			c.cmd("RCPT TO:<b@relay.test>", "250")
			c.send(tc.chunk)
			// A clean close (FIN), as when the sending MTA crashes.
			if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if r := c.reply(); strings.HasPrefix(r, "250") {
				t.Errorf("reply %q to a chunk cut short by the client's close", r)
			}
			// The session ends with the connection; give the server time
			// to finish it before looking at the store.
			time.Sleep(200 * time.Millisecond)
			if n := len(ts.store.messages()); n != 0 {
				t.Errorf("%d messages stored from a cut-short transfer", n)
			}
		})
	}
}

func TestLineLengthLimitCountsCRLF(t *testing.T) {
	cases := []struct {
		name    string
		content int // bytes before the CRLF
		ok      bool
	}{
		{"998 bytes and CRLF", 998, true},
		{"999 bytes and CRLF", 999, false},
		{"1000 bytes and CRLF", 1000, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.greet()
			c.cmd("MAIL FROM:<a@sender.example>", "250")
			c.cmd("RCPT TO:<b@relay.test>", "250")
			c.cmd("DATA", "354")
			c.send("Subject: long\r\n\r\n" + strings.Repeat("x", tc.content) + "\r\n.\r\n")
			r := c.reply()
			if tc.ok && !strings.HasPrefix(r, "250 ") {
				t.Errorf("reply %q, want 250", r)
			}
			if !tc.ok {
				// One permanent reply, never a temporary one first.
				if !strings.HasPrefix(r, "500 5.5.2 Line too long") {
					t.Errorf("reply %q, want one 500 5.5.2", r)
				}
				if more := c.reply(); more != "" {
					t.Errorf("a second reply %q after the rejection", more)
				}
			}
		})
	}
}

// A line over MaxLineLength inside a BDAT chunk gets the content check's
// reply, and the session continues, however the command and its chunk are
// split into TCP segments.
func TestBDATLongLineRejected(t *testing.T) {
	body := "Subject: long\r\n\r\n" + strings.Repeat("x", 5000) + "\r\n"
	command := "BDAT " + strconv.Itoa(len(body)) + " LAST\r\n"
	cases := []struct {
		name   string
		writes []string
	}{
		{"command and chunk in one write", []string{command + body}},
		{"command and chunk in two writes", []string{command, body}},
		{"chunk and next command in one write", []string{command, body + "NOOP\r\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.greet()
			c.cmd("MAIL FROM:<a@sender.example>", "250")
			c.cmd("RCPT TO:<b@relay.test>", "250")
			for i, w := range tc.writes {
				if i > 0 {
					// The pause lets the server read the first write on
					// its own.
					time.Sleep(50 * time.Millisecond)
				}
				c.send(w)
			}
			c.expect("554 5.6.0")
			if n := len(ts.store.messages()); n != 0 {
				t.Errorf("%d messages stored with an overlong line", n)
			}
			if !strings.HasSuffix(tc.writes[len(tc.writes)-1], "NOOP\r\n") {
				c.send("NOOP\r\n")
			}
			c.expect("250 ")
		})
	}
}

// go-smtp reads and discards the chunk of a BDAT that it rejects. A long
// line in that chunk must not end the session either.
func TestBDATRejectedChunkLongLine(t *testing.T) {
	line := strings.Repeat("x", 5000) + "\r\n"
	cases := []struct {
		name  string
		rcpt  bool
		chunk string
		reply string
	}{
		{"no recipient", false, line, "503 5.5.1"},
		{"over the size limit", true, strings.Repeat(line, 14), "552 5.3.4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			c := dial(t, ts.addr)
			c.greet()
			if tc.rcpt {
				c.cmd("MAIL FROM:<a@sender.example>", "250")
				c.cmd("RCPT TO:<b@relay.test>", "250")
			}
			c.send("BDAT " + strconv.Itoa(len(tc.chunk)) + " LAST\r\n" + tc.chunk)
			c.expect(tc.reply)
			c.cmd("NOOP", "250")
			if n := len(ts.store.messages()); n != 0 {
				t.Errorf("%d messages stored from a rejected chunk", n)
			}
		})
	}
}
