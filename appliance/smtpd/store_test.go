package smtpd

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/policy"
	"github.com/lambgate/lambgate/appliance/settings"
)

func TestCommitErrorsBecomeTempfails(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		reply string
	}{
		{"disk full", fmt.Errorf("spool: %w", syscall.ENOSPC), "452 4.3.1 Insufficient system storage"},
		{"other error", errors.New("fsync failed"), "451 4.3.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			ts.store.commitErr = tc.err
			c := dial(t, ts.addr)
			c.greet()
			reply := c.sendMessage("a@sender.example", "b@relay.test", message)
			if !strings.HasPrefix(reply, tc.reply) {
				t.Errorf("reply %q, want %q", reply, tc.reply)
			}
			if ts.queue.count() != 0 {
				t.Errorf("an uncommitted message was enqueued")
			}
		})
	}
}

func TestFileStoreKeepsOnlyCommitted(t *testing.T) {
	fs := &fileStore{dir: t.TempDir()}
	ts := startServer(t, func(_ *Config, d *Deps) { d.Store = fs })
	c := dial(t, ts.addr)
	c.greet()
	if r := c.sendMessage("a@sender.example", "b@relay.test", message); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("reply %q, want 250", r)
	}
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: x\r\n\r\nbare\nLF\r\n.\r\n")
	c.expect("500 5.5.2")

	files := fs.files(t)
	if len(files) != 1 {
		t.Fatalf("%d spooled files, want 1", len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), message) {
		t.Errorf("spooled file %q does not end with the message", data)
	}
	// The rejected message's temporary file is removed once the session
	// ends.
	for range 100 {
		if len(fs.leftovers(t)) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("temporary files left behind: %q", fs.leftovers(t))
}

func TestUnknownRecipientPolicies(t *testing.T) {
	t.Run("bounce", func(t *testing.T) {
		ts := startServer(t, func(_ *Config, d *Deps) {
			cfg := policyStatic("known@relay.test")
			cfg.Unknown = settings.UnknownBounce
			d.Policy = testPolicy(t, cfg)
		})
		c := dial(t, ts.addr)
		c.greet()
		c.sendMessage("a@sender.example", "nobody@relay.test", message)
		msgs := ts.store.messages()
		if len(msgs) != 1 {
			t.Fatalf("%d messages stored, want 1", len(msgs))
		}
		if st := msgs[0].env.Recipients[0].State; st != envelope.StateBounce {
			t.Errorf("state %q, want bounce", st)
		}
	})
	t.Run("discard all", func(t *testing.T) {
		ts := startServer(t, func(_ *Config, d *Deps) {
			cfg := policyStatic("known@relay.test")
			cfg.Unknown = settings.UnknownDiscard
			d.Policy = testPolicy(t, cfg)
		})
		c := dial(t, ts.addr)
		c.greet()
		reply := c.sendMessage("a@sender.example", "nobody@relay.test", message)
		if !strings.HasPrefix(reply, "250 ") {
			t.Errorf("reply %q, want 250", reply)
		}
		if n := len(ts.store.messages()); n != 0 {
			t.Errorf("%d messages stored, want none", n)
		}
	})
	t.Run("discard one of two", func(t *testing.T) {
		ts := startServer(t, func(_ *Config, d *Deps) {
			cfg := policyStatic("known@relay.test")
			cfg.Unknown = settings.UnknownDiscard
			d.Policy = testPolicy(t, cfg)
		})
		c := dial(t, ts.addr)
		c.greet()
		c.cmd("MAIL FROM:<a@sender.example>", "250")
		c.cmd("RCPT TO:<known@relay.test>", "250")
		c.cmd("RCPT TO:<nobody@relay.test>", "250")
		c.cmd("DATA", "354")
		c.send(message + ".\r\n")
		c.expect("250 ")
		msgs := ts.store.messages()
		if len(msgs) != 1 {
			t.Fatalf("%d messages stored, want 1", len(msgs))
		}
		rs := msgs[0].env.Recipients
		if rs[0].State != envelope.StatePending || rs[1].State != envelope.StateDiscarded {
			t.Errorf("states %q and %q, want pending and discarded", rs[0].State, rs[1].State)
		}
	})
}

func TestCalloutFailureTempfails(t *testing.T) {
	ts := startServer(t, func(_ *Config, d *Deps) {
		p, err := policy.New(policy.Config{RelayDomains: []string{"relay.test"},
			Validation: settings.ValidateCallout, Unknown: settings.UnknownReject,
			PositiveTTL: time.Hour, NegativeTTL: time.Hour}, proberFunc(func(string) (bool, error) {
			return false, errors.New("connection refused")
		}), nil)
		if err != nil {
			t.Fatal(err)
		}
		d.Policy = p
	})
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "451 4.4.3")
}
