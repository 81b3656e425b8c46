package smtpd

import "testing"

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
