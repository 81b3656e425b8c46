package smtpd

import (
	"strings"
	"testing"
)

// TestOpenRelayTricksRejected sends address forms that some MTA could route
// to a host other than the relay domain, each through a real session, and
// expects every one to be rejected at RCPT with nothing queued.
func TestOpenRelayTricksRejected(t *testing.T) {
	cases := []struct {
		name string
		rcpt string // the RCPT TO argument, brackets included
	}{
		{"other domain", "<user@evil.example>"},
		{"subdomain of relay domain", "<user@sub.relay.test>"},
		{"relay domain as prefix", "<user@relay.test.evil.example>"},
		{"percent hack", "<user%evil.example@relay.test>"},
		{"bang path", "<evil.example!user@relay.test>"},
		{"quoted at sign", `<"user@evil.example"@relay.test>`},
		{"quoted percent hack", `<"user%evil.example"@relay.test>`},
		{"quoted bang path", `<"evil.example!user"@relay.test>`},
		{"escaped at sign in quotes", `<"user\@evil.example"@relay.test>`},
		{"double at", "<user@evil.example@relay.test>"},
		{"ipv4 literal", "<user@[192.0.2.1]>"},
		{"ipv6 literal", "<user@[IPv6:2001:db8::1]>"},
		{"trailing dot", "<user@relay.test.>"},
		{"comment after domain", "<user@relay.test(evil.example)>"},
		{"source route to other domain", "<@relay.test:user@evil.example>"},
		{"empty domain", "<user@>"},
		{"unicode without SMTPUTF8", "<user@rélay.test>"},
		{"colon route in local part", "<evil.example:user@relay.test>"},
		{"no brackets other domain", "user@evil.example"},
	}
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxErrors = 100 })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.send("RCPT TO:" + tc.rcpt + "\r\n")
			reply := c.reply()
			if !strings.HasPrefix(reply, "5") {
				t.Errorf("RCPT TO:%s got %q, want a 5xx rejection", tc.rcpt, reply)
			}
		})
	}
	c.cmd("DATA", "5")
	if n := len(ts.store.messages()); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

// TestSourceRouteCannotLeaveRelayDomain covers the one routing form that
// go-smtp v0.26.0 removes before calling the session: "<@a,@b:user@domain>"
// arrives as "user@domain", as RFC 5321 section 4.1.1.3 lets servers treat
// it. Only the final mailbox decides, so a route through other hosts is
// accepted only when the mailbox itself is in a relay domain, and the
// stored recipient carries no route.
func TestSourceRouteCannotLeaveRelayDomain(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<@evil.example,@other.example:user@evil.example>", "550 5.7.1")
	c.cmd("RCPT TO:<@evil.example:user@relay.test>", "250")
	c.cmd("DATA", "354")
	c.send(message + ".\r\n")
	c.expect("250 ")

	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	rcpts := msgs[0].env.Recipients
	if len(rcpts) != 1 || rcpts[0].Address != "user@relay.test" {
		t.Errorf("recipients %+v, want only user@relay.test", rcpts)
	}
}

func TestRelayDomainsAcceptedCaseInsensitive(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<User@RELAY.Test>", "250")
	c.cmd(`RCPT TO:<"plain"@relay.test>`, "250")
	c.cmd("RCPT TO:<Postmaster>", "250")
	c.cmd("DATA", "354")
	c.send(message + ".\r\n")
	c.expect("250 ")

	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	var got []string
	for _, r := range msgs[0].env.Recipients {
		got = append(got, r.Address)
	}
	want := "User@relay.test plain@relay.test postmaster@relay.test"
	if strings.Join(got, " ") != want {
		t.Errorf("recipients %q, want %q", got, want)
	}
}

func TestSMTPUTF8AddressesNeedParameter(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<jöran@relay.test>", "501")
	c.cmd("RSET", "250")
	c.cmd("MAIL FROM:<a@sender.example> SMTPUTF8", "250")
	c.cmd("RCPT TO:<jöran@relay.test>", "250")
	c.cmd("DATA", "354")
	c.send(message + ".\r\n")
	c.expect("250 ")
	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if !msgs[0].env.SMTPUTF8 {
		t.Errorf("envelope SMTPUTF8 not set")
	}
	if !strings.Contains(string(msgs[0].data), "with UTF8SMTP id") {
		t.Errorf("Received header lacks UTF8SMTP:\n%s", msgs[0].data)
	}
}

func TestSenderAddressChecked(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a%b@sender.example>", "501 5.1.7")
	c.cmd("MAIL FROM:<a@[192.0.2.1]>", "501 5.1.7")
	c.cmd("MAIL FROM:<>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.cmd("DATA", "354")
	c.send(message + ".\r\n")
	c.expect("250 ")
	if from := ts.store.messages()[0].env.From; from != "" {
		t.Errorf("null sender stored as %q", from)
	}
}
