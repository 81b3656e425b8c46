package policy

import (
	"strings"
	"testing"
)

func TestParseAddressRejectsRoutingTricks(t *testing.T) {
	cases := []struct {
		name    string
		addr    string
		routing bool
	}{
		{"percent hack", "user%evil.example@relay.test", true},
		{"percent hack in brackets", "<user%evil.example@relay.test>", true},
		{"source route", "@evil.example:user@relay.test", true},
		{"source route list", "<@a.example,@b.example:user@relay.test>", true},
		{"bang path", "evil.example!user@relay.test", true},
		{"quoted at sign", `"user@evil.example"@relay.test`, true},
		{"quoted percent", `"user%evil.example"@relay.test`, true},
		{"backslash escape", `user\@evil.example@relay.test`, true},
		{"double at", "user@evil.example@relay.test", true},
		{"ipv4 literal", "user@[192.0.2.1]", true},
		{"ipv6 literal", "user@[IPv6:2001:db8::1]", true},
		{"colon in local part", "evil.example:user@relay.test", true},
		{"trailing dot domain", "user@relay.test.", false},
		{"comment in domain", "user@relay.test(evil.example)", false},
		{"comment in local part", "(evil)user@relay.test", false},
		{"empty local part", "@relay.test", true},
		{"space in local part", "us er@relay.test", false},
		{"tab", "user\t@relay.test", false},
		{"carriage return", "user\r@relay.test", false},
		{"line feed", "user@relay.test\nRCPT", false},
		{"nul byte", "user\x00@relay.test", false},
		{"delete character", "user\x7f@relay.test", false},
		{"missing domain", "user", false},
		{"empty domain", "user@", false},
		{"leading dot local", ".user@relay.test", false},
		{"double dot local", "us..er@relay.test", false},
		{"empty domain label", "user@relay..test", false},
		{"underscore domain", "user@re_lay.test", false},
		{"overlong local part", strings.Repeat("a", 65) + "@relay.test", false},
		{"overlong domain label", "user@" + strings.Repeat("a", 64) + ".test", false},
		{"overlong address", strings.Repeat("a", 60) + "@" + strings.Repeat("b.", 100) + "test", false},
		{"unicode without smtputf8", "jöran@relay.test", false},
		{"unicode domain without smtputf8", "user@rélay.test", false},
		{"right to left override", "user\u202e@relay.test", false},
		{"ideographic full stop ending", "user@relay.test\u3002", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseAddress(tc.addr, false)
			if err == nil {
				t.Fatalf("ParseAddress(%q) accepted it, want an error", tc.addr)
			}
			if got := IsRouting(err); got != tc.routing {
				t.Errorf("IsRouting(%v) = %v, want %v", err, got, tc.routing)
			}
		})
	}
}

func TestParseAddressUnicodeNeedsSMTPUTF8(t *testing.T) {
	_, _, err := ParseAddress("user\u202e@relay.test", true)
	if err == nil {
		t.Errorf("format character accepted with SMTPUTF8")
	}
	_, _, err = ParseAddress("user@relay.test\u3002", true)
	if err == nil {
		t.Errorf("ideographic full stop as trailing dot accepted with SMTPUTF8")
	}
}

func TestParseAddressAcceptsPlainForms(t *testing.T) {
	cases := []struct {
		addr     string
		smtputf8 bool
		local    string
		domain   string
	}{
		{"user@relay.test", false, "user", "relay.test"},
		{"<user@relay.test>", false, "user", "relay.test"},
		{"First.Last+tag@Relay.TEST", false, "First.Last+tag", "relay.test"},
		{"o'brien@relay.test", false, "o'brien", "relay.test"},
		{"jöran@relay.test", true, "jöran", "relay.test"},
		{"user@bücher.example", true, "user", "xn--bcher-kva.example"},
		{"user@BÜCHER.example", true, "user", "xn--bcher-kva.example"},
		{strings.Repeat("a", 64) + "@relay.test", false, strings.Repeat("a", 64), "relay.test"},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			local, domain, err := ParseAddress(tc.addr, tc.smtputf8)
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", tc.addr, err)
			}
			if local != tc.local {
				t.Errorf("local = %q, want %q", local, tc.local)
			}
			if domain != tc.domain {
				t.Errorf("domain = %q, want %q", domain, tc.domain)
			}
		})
	}
}
