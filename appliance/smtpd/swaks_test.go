package smtpd

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runSwaks runs Debian's swaks against the test server and returns its
// output and exit code. A missing swaks fails the test: these tests exist
// to check the server against a real client.
func runSwaks(t *testing.T, addr string, args ...string) (string, int) {
	t.Helper()
	path, err := exec.LookPath("swaks")
	if err != nil {
		t.Fatalf("swaks not found (install Debian's swaks package): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{"--server", addr, "--helo", "client.example", "--timeout", "20"}, args...)
	out, err := exec.CommandContext(ctx, path, all...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("running swaks %q: %v\n%s", all, err, out)
	}
	return string(out), 0
}

func TestSwaksDeliversMessage(t *testing.T) {
	ts := startServer(t)
	out, code := runSwaks(t, ts.addr, "--from", "a@sender.example", "--to", "b@relay.test",
		"--header", "Subject: swaks test", "--body", "Hello from swaks.")
	if code != 0 {
		t.Fatalf("swaks exit code %d, want 0\n%s", code, out)
	}
	if !strings.Contains(out, "250 2.0.0 OK: queued as") {
		t.Errorf("swaks output lacks the queued reply:\n%s", out)
	}
	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	env := msgs[0].env
	if env.From != "a@sender.example" {
		t.Errorf("envelope sender %q, want a@sender.example", env.From)
	}
	if env.ClientHELO != "client.example" {
		t.Errorf("envelope HELO %q, want client.example", env.ClientHELO)
	}
	if !strings.Contains(string(msgs[0].data), "Hello from swaks.") {
		t.Errorf("stored message lacks the body:\n%s", msgs[0].data)
	}
	if !strings.Contains(string(msgs[0].data), "for <b@relay.test>;") {
		t.Errorf("Received header lacks the for clause:\n%s", msgs[0].data)
	}
}

func TestSwaksSTARTTLSMarksEnvelope(t *testing.T) {
	ts := startServer(t)
	out, code := runSwaks(t, ts.addr, "--tls", "--from", "a@sender.example", "--to", "b@relay.test")
	if code != 0 {
		t.Fatalf("swaks exit code %d, want 0\n%s", code, out)
	}
	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if !msgs[0].env.TLS {
		t.Errorf("envelope TLS not set after STARTTLS")
	}
	if !strings.Contains(string(msgs[0].data), "with ESMTPS id") {
		t.Errorf("Received header lacks ESMTPS:\n%s", msgs[0].data)
	}
}

func TestSwaksPipeliningTwoRecipients(t *testing.T) {
	ts := startServer(t)
	out, code := runSwaks(t, ts.addr, "--pipeline", "--from", "a@sender.example",
		"--to", "b@relay.test,c@relay.test")
	if code != 0 {
		t.Fatalf("swaks exit code %d, want 0\n%s", code, out)
	}
	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if n := len(msgs[0].env.Recipients); n != 2 {
		t.Errorf("%d recipients, want 2", n)
	}
	if strings.Contains(string(msgs[0].data), "\tfor <") {
		t.Errorf("Received header names a recipient of a message with two:\n%s", msgs[0].data)
	}
}

func TestSwaksRelayDenied(t *testing.T) {
	ts := startServer(t)
	out, code := runSwaks(t, ts.addr, "--from", "a@sender.example", "--to", "victim@evil.example")
	if code == 0 {
		t.Errorf("swaks exit code 0, want a failure for a relay attempt")
	}
	if !strings.Contains(out, "550 5.7.1 Relaying denied") {
		t.Errorf("swaks output lacks 550 5.7.1 Relaying denied:\n%s", out)
	}
	if n := len(ts.store.messages()); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

func TestSwaksMessageTooLarge(t *testing.T) {
	ts := startServer(t, func(c *Config, _ *Deps) { c.MaxMessageBytes = 2000 })
	body := strings.Repeat("0123456789012345678901234567890123456789\n", 100)
	out, code := runSwaks(t, ts.addr, "--from", "a@sender.example", "--to", "b@relay.test",
		"--body", body)
	if code == 0 {
		t.Errorf("swaks exit code 0, want a failure for an oversized message")
	}
	if !strings.Contains(out, "552 5.3.4") {
		t.Errorf("swaks output lacks 552 5.3.4:\n%s", out)
	}
	if n := len(ts.store.messages()); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

func TestSwaksUnknownRecipientRejected(t *testing.T) {
	ts := startServer(t, func(_ *Config, d *Deps) {
		d.Policy = testPolicy(t, policyStatic("known@relay.test"))
	})
	out, code := runSwaks(t, ts.addr, "--from", "a@sender.example", "--to", "nobody@relay.test")
	if code == 0 {
		t.Errorf("swaks exit code 0, want a failure for an unknown recipient")
	}
	if !strings.Contains(out, "550 5.1.1") {
		t.Errorf("swaks output lacks 550 5.1.1:\n%s", out)
	}
}
