package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

func newTestChecker(t *testing.T, cfg Config, prober Prober) *Checker {
	t.Helper()
	if cfg.RelayDomains == nil {
		cfg.RelayDomains = []string{"relay.test", "Other.TEST"}
	}
	if cfg.Validation == "" {
		cfg.Validation = settings.ValidateAcceptAll
	}
	if cfg.Unknown == "" {
		cfg.Unknown = settings.UnknownReject
	}
	c, err := New(cfg, prober, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func check(t *testing.T, c *Checker, addr string) Decision {
	t.Helper()
	d, _ := c.CheckRecipient(context.Background(), addr, false)
	return d
}

func TestRelayDomainMatchIsExact(t *testing.T) {
	c := newTestChecker(t, Config{}, nil)
	cases := []struct {
		addr string
		want Action
		code int
	}{
		{"user@relay.test", Accept, 0},
		{"user@RELAY.Test", Accept, 0},
		{"user@other.test", Accept, 0},
		{"user@sub.relay.test", Reject, 550},
		{"user@relay.test.evil.example", Reject, 550},
		{"user@evilrelay.test", Reject, 550},
		{"user%evil.example@relay.test", Reject, 550},
		{"user@", Reject, 501},
	}
	for _, tc := range cases {
		d := check(t, c, tc.addr)
		if d.Action != tc.want {
			t.Errorf("%s: action %v, want %v (%s)", tc.addr, d.Action, tc.want, d.Reason)
		}
		if d.Code != tc.code {
			t.Errorf("%s: code %d, want %d", tc.addr, d.Code, tc.code)
		}
	}
}

func TestUnknownRecipientPolicies(t *testing.T) {
	cases := []struct {
		unknown string
		want    Action
		code    int
	}{
		{settings.UnknownReject, Reject, 550},
		{settings.UnknownBounce, Bounce, 0},
		{settings.UnknownDiscard, Discard, 0},
	}
	for _, tc := range cases {
		c := newTestChecker(t, Config{Validation: settings.ValidateStatic,
			Static: []string{"known@relay.test"}, Unknown: tc.unknown}, nil)
		d := check(t, c, "nobody@relay.test")
		if d.Action != tc.want {
			t.Errorf("policy %s: action %v, want %v", tc.unknown, d.Action, tc.want)
		}
		if d.Code != tc.code {
			t.Errorf("policy %s: code %d, want %d", tc.unknown, d.Code, tc.code)
		}
		if d.Code == 550 && d.Enhanced != [3]int{5, 1, 1} {
			t.Errorf("policy %s: enhanced %v, want 5.1.1", tc.unknown, d.Enhanced)
		}
	}
}

func TestStaticListAddressesAndDomains(t *testing.T) {
	c := newTestChecker(t, Config{Validation: settings.ValidateStatic,
		Static: []string{"Known@relay.test", "@other.test"}}, nil)
	for addr, want := range map[string]Action{
		"known@relay.test":   Accept,
		"KNOWN@Relay.Test":   Accept,
		"unknown@relay.test": Reject,
		"anyone@other.test":  Accept,
	} {
		if got := check(t, c, addr).Action; got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
}

func TestRecipientFileReloadsOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recipients")
	if err := os.WriteFile(path, []byte("# staff\nalice@relay.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newTestChecker(t, Config{Validation: settings.ValidateFile, File: path}, nil)
	if got := check(t, c, "alice@relay.test").Action; got != Accept {
		t.Fatalf("alice before edit: %v, want accept", got)
	}
	if got := check(t, c, "bob@relay.test").Action; got != Reject {
		t.Fatalf("bob before edit: %v, want reject", got)
	}

	if err := os.WriteFile(path, []byte("bob@relay.test # new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Make the change visible even on a file system with coarse times.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if got := check(t, c, "bob@relay.test").Action; got != Accept {
		t.Errorf("bob after edit: %v, want accept", got)
	}
	if got := check(t, c, "alice@relay.test").Action; got != Reject {
		t.Errorf("alice after edit: %v, want reject", got)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := check(t, c, "bob@relay.test").Action; got != Tempfail {
		t.Errorf("missing file: %v, want tempfail", got)
	}
}

type fakeProber struct {
	calls  atomic.Int32
	exists map[string]bool
	err    error
}

func (p *fakeProber) Probe(_ context.Context, rcpt string) (bool, error) {
	p.calls.Add(1)
	if p.err != nil {
		return false, p.err
	}
	return p.exists[rcpt], nil
}

func TestCalloutCachesAnswersNotErrors(t *testing.T) {
	p := &fakeProber{exists: map[string]bool{"alice@relay.test": true}}
	c := newTestChecker(t, Config{Validation: settings.ValidateCallout,
		PositiveTTL: time.Hour, NegativeTTL: time.Hour}, p)

	for range 3 {
		if got := check(t, c, "alice@relay.test").Action; got != Accept {
			t.Fatalf("alice: %v, want accept", got)
		}
		if got := check(t, c, "bob@relay.test").Action; got != Reject {
			t.Fatalf("bob: %v, want reject", got)
		}
	}
	if n := p.calls.Load(); n != 2 {
		t.Errorf("prober called %d times, want 2 (one per address, then cached)", n)
	}

	p.err = errors.New("connection refused")
	d := check(t, c, "carol@relay.test")
	if d.Action != Tempfail {
		t.Fatalf("probe error: %v, want tempfail", d.Action)
	}
	if d.Code != 451 || d.Enhanced != [3]int{4, 4, 3} {
		t.Errorf("probe error reply %d %v, want 451 4.4.3", d.Code, d.Enhanced)
	}
	before := p.calls.Load()
	check(t, c, "carol@relay.test")
	if p.calls.Load() != before+1 {
		t.Errorf("a probe error was cached")
	}
}

func TestCalloutNegativeTTLExpires(t *testing.T) {
	p := &fakeProber{exists: map[string]bool{}}
	c := newTestChecker(t, Config{Validation: settings.ValidateCallout,
		PositiveTTL: time.Hour, NegativeTTL: time.Nanosecond}, p)
	check(t, c, "bob@relay.test")
	time.Sleep(time.Millisecond)
	check(t, c, "bob@relay.test")
	if n := p.calls.Load(); n != 2 {
		t.Errorf("prober called %d times, want 2 after the negative TTL expired", n)
	}
}

func TestSetConfigRejectsInvalidSettings(t *testing.T) {
	c := newTestChecker(t, Config{}, nil)
	bad := []Config{
		{RelayDomains: nil, Validation: settings.ValidateAcceptAll, Unknown: settings.UnknownReject},
		{RelayDomains: []string{"[192.0.2.1]"}, Validation: settings.ValidateAcceptAll, Unknown: settings.UnknownReject},
		{RelayDomains: []string{"relay.test"}, Validation: "maybe", Unknown: settings.UnknownReject},
		{RelayDomains: []string{"relay.test"}, Validation: settings.ValidateAcceptAll, Unknown: "ignore"},
		{RelayDomains: []string{"relay.test"}, Validation: settings.ValidateCallout, Unknown: settings.UnknownReject},
		{RelayDomains: []string{"relay.test"}, Validation: settings.ValidateStatic, Static: []string{"a%b@relay.test"}, Unknown: settings.UnknownReject},
	}
	for i, cfg := range bad {
		if err := c.SetConfig(cfg); err == nil {
			t.Errorf("config %d accepted: %+v", i, cfg)
		}
	}
	if got := check(t, c, "user@relay.test").Action; got != Accept {
		t.Errorf("a rejected config changed the policy: %v", got)
	}

	if err := c.SetConfig(Config{RelayDomains: []string{"new.test"},
		Validation: settings.ValidateAcceptAll, Unknown: settings.UnknownReject}); err != nil {
		t.Fatal(err)
	}
	if got := check(t, c, "user@relay.test").Action; got != Reject {
		t.Errorf("old relay domain after SetConfig: %v, want reject", got)
	}
}

func TestUnicodeRelayDomainMatchesALabel(t *testing.T) {
	c := newTestChecker(t, Config{RelayDomains: []string{"Bücher.example"}}, nil)
	if got := check(t, c, "user@xn--bcher-kva.example").Action; got != Accept {
		t.Errorf("A-label recipient: %v, want accept", got)
	}
	d, _ := c.CheckRecipient(context.Background(), "user@bücher.example", true)
	if d.Action != Accept {
		t.Errorf("U-label recipient with SMTPUTF8: %v, want accept (%s)", d.Action, d.Reason)
	}
	if d.Address != "user@xn--bcher-kva.example" {
		t.Errorf("normalized address %q, want user@xn--bcher-kva.example", d.Address)
	}
}

func TestPostmasterAcceptedWhateverTheList(t *testing.T) {
	c := newTestChecker(t, Config{Validation: settings.ValidateStatic,
		Static: []string{"known@relay.test"}}, nil)
	for _, addr := range []string{"postmaster@relay.test", "PostMaster@relay.test"} {
		if got := check(t, c, addr).Action; got != Accept {
			t.Errorf("%s: %v, want Accept", addr, got)
		}
	}
	if got := check(t, c, "postmaster@elsewhere.example").Action; got != Reject {
		t.Errorf("postmaster of a foreign domain: %v, want Reject", got)
	}
}
