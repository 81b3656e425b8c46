package smtpd

import (
	"strings"
	"testing"
	"time"
)

func TestSessionQueuesPlainMessage(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	reply := c.sendMessage("a@sender.example", "b@relay.test", message)
	if !strings.HasPrefix(reply, "250 2.0.0 OK: queued as Q") {
		t.Fatalf("final reply %q, want 250 queued", reply)
	}
	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if !strings.HasPrefix(string(msgs[0].data), "Received: from client.example ([127.0.0.1])") {
		t.Errorf("message does not start with the Received header:\n%s", msgs[0].data)
	}
	if !strings.HasSuffix(string(msgs[0].data), message) {
		t.Errorf("message content changed:\n%s", msgs[0].data)
	}
	if ts.queue.count() != 1 {
		t.Errorf("%d messages enqueued, want 1", ts.queue.count())
	}
}

func TestEHLOAdvertisesExtensions(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.expect("220 mx.relay.test ")
	ehlo := c.cmd("EHLO client.example", "250")
	for _, kw := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 65536",
		"ENHANCEDSTATUSCODES", "CHUNKING", "DSN", "STARTTLS"} {
		if !strings.Contains(ehlo, "250-"+kw+"\r\n") && !strings.Contains(ehlo, "250 "+kw+"\r\n") {
			t.Errorf("EHLO reply lacks %s:\n%s", kw, ehlo)
		}
	}
	c.cmd("STARTTLS", "220")
	c.startTLS()
	ehlo = c.cmd("EHLO client.example", "250")
	if strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO inside TLS still offers STARTTLS:\n%s", ehlo)
	}
}

func TestCarriageReturnInArgumentInsideTLS(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("STARTTLS", "220")
	c.startTLS()
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a\r@sender.example>", "500 5.5.2 Bare CR or LF")
	if !c.closed() {
		t.Errorf("connection still open after a bare CR inside TLS")
	}
}

func TestLogsOneLinePerEvent(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.sendMessage("a@sender.example", "b@relay.test", message)
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@evil.example>", "550")
	c.cmd("QUIT", "221")
	c.closed()

	var logs string
	for range 100 {
		logs = ts.logs.String()
		if strings.Contains(logs, "msg=disconnect") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wants := []string{
		"msg=connect remote=127.0.0.1:",
		"msg=received queue_id=Q00000000001 from=a@sender.example rcpt=b@relay.test rcpt_count=1 size=",
		"helo=client.example tls=false spf=\"\" status=queued",
		"msg=rejected remote=127.0.0.1:",
		"phase=rcpt reason=\"domain evil.example is not a relay domain\"",
		"msg=disconnect remote=127.0.0.1:",
	}
	for _, w := range wants {
		if !strings.Contains(logs, w) {
			t.Errorf("log lacks %q:\n%s", w, logs)
		}
	}
	if n := strings.Count(logs, "msg=received"); n != 1 {
		t.Errorf("%d received lines, want 1", n)
	}
}

func TestCarriageReturnInHELOInsideTLS(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("STARTTLS", "220")
	c.startTLS()
	c.cmd("EHLO a\rb.example", "500 5.5.2 Bare CR or LF")
	if !c.closed() {
		t.Errorf("connection still open after a bare CR inside TLS")
	}
}
