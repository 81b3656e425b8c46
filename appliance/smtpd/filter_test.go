package smtpd

import (
	"strings"
	"testing"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/filter"
)

func withFilters(ch filter.Chain) serverOption {
	return func(_ *Config, d *Deps) { d.Filters = ch }
}

func TestDataVerdictReplies(t *testing.T) {
	cases := []struct {
		name    string
		verdict filter.Verdict
		reply   string
		stored  int
	}{
		{"reject with own reply", filter.Verdict{Action: filter.Reject, Code: 554,
			Enhanced: [3]int{5, 7, 0}, Text: "Spam detected"}, "554 5.7.0 Spam detected", 0},
		{"reject default", filter.Verdict{Action: filter.Reject}, "550 5.7.1 Message rejected", 0},
		{"reject with 2xx code", filter.Verdict{Action: filter.Reject, Code: 250,
			Enhanced: [3]int{2, 0, 0}}, "550 5.7.1 Message rejected", 0},
		{"reject with CRLF in text", filter.Verdict{Action: filter.Reject, Code: 550,
			Text: "bad\r\n250 OK"}, "550 5.7.1 Message rejected", 0},
		{"tempfail default", filter.Verdict{Action: filter.Tempfail}, "451 4.7.1 Try again later", 0},
		{"tempfail with 5xx code", filter.Verdict{Action: filter.Tempfail, Code: 550,
			Enhanced: [3]int{5, 7, 1}}, "451 4.7.1", 0},
		{"discard", filter.Verdict{Action: filter.Discard}, "250 2.0.0 OK: queued as", 0},
		{"accept", filter.Verdict{Action: filter.Accept}, "250 2.0.0 OK: queued as", 1},
		{"continue", filter.Verdict{}, "250 2.0.0 OK: queued as", 1},
		{"quarantine", filter.Verdict{Action: filter.Quarantine}, "250 2.0.0 OK: queued as", 1},
		{"bounce", filter.Verdict{Action: filter.Bounce}, "250 2.0.0 OK: queued as", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, withFilters(&stubChain{data: tc.verdict}))
			c := dial(t, ts.addr)
			c.greet()
			reply := c.sendMessage("a@sender.example", "b@relay.test", message)
			if !strings.HasPrefix(reply, tc.reply) {
				t.Errorf("reply %q, want prefix %q", reply, tc.reply)
			}
			if n := len(ts.store.messages()); n != tc.stored {
				t.Errorf("%d messages stored, want %d", n, tc.stored)
			}
		})
	}
}

func TestQuarantineVerdictNotEnqueued(t *testing.T) {
	ts := startServer(t, withFilters(&stubChain{data: filter.Verdict{Action: filter.Quarantine}}))
	c := dial(t, ts.addr)
	c.greet()
	c.sendMessage("a@sender.example", "b@relay.test", message)
	msgs := ts.store.messages()
	if len(msgs) != 1 || !msgs[0].quarantine {
		t.Fatalf("stored %+v, want one quarantined message", msgs)
	}
	if ts.queue.count() != 0 {
		t.Errorf("a quarantined message was enqueued")
	}
}

func TestBounceVerdictMarksRecipients(t *testing.T) {
	ts := startServer(t, withFilters(&stubChain{data: filter.Verdict{Action: filter.Bounce}}))
	c := dial(t, ts.addr)
	c.greet()
	c.sendMessage("a@sender.example", "b@relay.test", message)
	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if st := msgs[0].env.Recipients[0].State; st != envelope.StateBounce {
		t.Errorf("recipient state %q, want bounce", st)
	}
	if ts.queue.count() != 1 {
		t.Errorf("bounced message not enqueued (the queue sends the DSN)")
	}
}

func TestDiscardVerdictAbortsWriter(t *testing.T) {
	ts := startServer(t, withFilters(&stubChain{data: filter.Verdict{Action: filter.Discard}}))
	c := dial(t, ts.addr)
	c.greet()
	c.sendMessage("a@sender.example", "b@relay.test", message)
	ts.store.mu.Lock()
	aborted := ts.store.aborted
	ts.store.mu.Unlock()
	if aborted != 1 {
		t.Errorf("%d writers aborted, want 1", aborted)
	}
}

func TestFilterSeesSpooledMessage(t *testing.T) {
	ch := &stubChain{}
	ts := startServer(t, withFilters(ch))
	c := dial(t, ts.addr)
	c.greet()
	c.sendMessage("a@sender.example", "b@relay.test", message)
	ch.mu.Lock()
	saw := string(ch.sawMessage)
	ch.mu.Unlock()
	if !strings.HasPrefix(saw, "Received: ") || !strings.HasSuffix(saw, message) {
		t.Errorf("filter read %q, want the Received header and the message", saw)
	}
}

func TestFilterEditsSanitized(t *testing.T) {
	ch := &stubChain{edits: filter.Edits{
		AddHeaders: []filter.Header{
			{Name: "X-Spam-Score", Value: "3.2"},
			{Name: "X-Bad", Value: "a\r\nBcc: victim@relay.test"},
			{Name: "Bad:Name", Value: "x"},
			{Name: "", Value: "x"},
		},
		Tags: []string{"spam", "bad\ntag"},
	}}
	ts := startServer(t, withFilters(ch))
	c := dial(t, ts.addr)
	c.greet()
	c.sendMessage("a@sender.example", "b@relay.test", message)
	env := ts.store.messages()[0].env
	if env.Prepend != "X-Spam-Score: 3.2\r\n" {
		t.Errorf("Prepend %q, want only the valid header", env.Prepend)
	}
	if strings.Join(env.Tags, ",") != "spam" {
		t.Errorf("tags %q, want only spam", env.Tags)
	}
}

func TestEarlyPhaseVerdicts(t *testing.T) {
	reject := filter.Verdict{Action: filter.Reject, Code: 554, Enhanced: [3]int{5, 7, 1}, Text: "Go away"}
	tempfail := filter.Verdict{Action: filter.Tempfail}

	t.Run("connect reject", func(t *testing.T) {
		ts := startServer(t, withFilters(&stubChain{connect: reject}))
		c := dial(t, ts.addr)
		c.expect("554 5.7.1")
		if !c.closed() {
			t.Errorf("rejected connection still open")
		}
	})
	t.Run("connect tempfail", func(t *testing.T) {
		ts := startServer(t, withFilters(&stubChain{connect: tempfail}))
		c := dial(t, ts.addr)
		c.expect("421 4.7.1")
	})
	t.Run("helo reject", func(t *testing.T) {
		ts := startServer(t, withFilters(&stubChain{helo: reject}))
		c := dial(t, ts.addr)
		c.expect("220 ")
		c.cmd("EHLO client.example", "554 5.7.1 Go away")
	})
	t.Run("mail reject", func(t *testing.T) {
		ts := startServer(t, withFilters(&stubChain{mail: reject}))
		c := dial(t, ts.addr)
		c.greet()
		c.cmd("MAIL FROM:<a@sender.example>", "554 5.7.1 Go away")
		c.cmd("RCPT TO:<b@relay.test>", "5")
	})
	t.Run("rcpt tempfail", func(t *testing.T) {
		ts := startServer(t, withFilters(&stubChain{rcpt: tempfail}))
		c := dial(t, ts.addr)
		c.greet()
		c.cmd("MAIL FROM:<a@sender.example>", "250")
		c.cmd("RCPT TO:<b@relay.test>", "451 4.7.1")
	})
	t.Run("mail quarantine skips data filter", func(t *testing.T) {
		ch := &stubChain{mail: filter.Verdict{Action: filter.Quarantine}, data: reject}
		ts := startServer(t, withFilters(ch))
		c := dial(t, ts.addr)
		c.greet()
		reply := c.sendMessage("a@sender.example", "b@relay.test", message)
		if !strings.HasPrefix(reply, "250 ") {
			t.Errorf("reply %q, want 250", reply)
		}
		msgs := ts.store.messages()
		if len(msgs) != 1 || !msgs[0].quarantine {
			t.Errorf("want one quarantined message, got %d", len(msgs))
		}
	})
}
