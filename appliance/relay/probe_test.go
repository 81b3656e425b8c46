package relay

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestProbeMapsReplies(t *testing.T) {
	cases := []struct {
		name       string
		reply      error
		wantExists bool
		wantErr    bool
	}{
		{name: "accepted 250", reply: nil, wantExists: true},
		{name: "unknown 550 5.1.1", reply: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "User unknown")},
		{name: "moved 551 5.1.6", reply: smtpErr(551, smtp.EnhancedCode{5, 1, 6}, "User not local")},
		{name: "bad syntax 553 5.1.3", reply: smtpErr(553, smtp.EnhancedCode{5, 1, 3}, "Bad address")},
		{name: "unknown without enhanced code", reply: smtpErr(550, smtp.NoEnhancedCode, "No such user")},
		{name: "policy 550 5.7.1", reply: smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "Relay denied"), wantErr: true},
		{name: "greylisted 450", reply: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Try later"), wantErr: true},
		{name: "mailbox full 552", reply: smtpErr(552, smtp.EnhancedCode{5, 2, 2}, "Full"), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			ts.SetOnRcpt(func(string) error { return tc.reply })
			r := newRelay(t, Config{Server: ts.Addr})

			exists, err := r.Probe(context.Background(), "user@example.test")
			if tc.wantErr {
				if !errors.Is(err, ErrProbeInconclusive) {
					t.Errorf("Probe error = %v, want ErrProbeInconclusive", err)
				}
			} else if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if exists != tc.wantExists {
				t.Errorf("Probe exists = %v, want %v", exists, tc.wantExists)
			}
			wire := ts.Wire(0)
			if !strings.Contains(wire, "MAIL FROM:<>\r\n") {
				t.Errorf("probe did not use the null sender: %q", wire)
			}
			if !strings.Contains(wire, "RCPT TO:<user@example.test>\r\nRSET\r\n") &&
				!strings.HasSuffix(strings.TrimSuffix(wire, "QUIT\r\n"), "RSET\r\n") {
				t.Errorf("probe did not end with RSET: %q", wire)
			}
			if strings.Contains(wire, "DATA") {
				t.Errorf("probe sent DATA: %q", wire)
			}
			if n := len(ts.Messages()); n != 0 {
				t.Errorf("server received %d messages from a probe", n)
			}
		})
	}
}

func TestProbeReusesPooledConnection(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})
	for _, rcpt := range []string{"a@example.test", "b@example.test"} {
		if _, err := r.Probe(context.Background(), rcpt); err != nil {
			t.Fatalf("Probe %s: %v", rcpt, err)
		}
	}
	deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)
	if n := ts.ConnCount(); n != 1 {
		t.Errorf("server saw %d connections for two probes and a delivery, want 1", n)
	}
	if n := len(ts.Messages()); n != 1 {
		t.Errorf("server received %d messages, want 1", n)
	}
}

func TestProbeMailRejectedIsError(t *testing.T) {
	ts := startServer(t)
	ts.SetOnMail(func(string) error {
		return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "Null sender rejected")
	})
	r := newRelay(t, Config{Server: ts.Addr})
	exists, err := r.Probe(context.Background(), "user@example.test")
	if !errors.Is(err, ErrProbeInconclusive) {
		t.Errorf("Probe error = %v, want ErrProbeInconclusive", err)
	}
	if exists {
		t.Errorf("Probe exists = true after MAIL was rejected")
	}
}

func TestProbeServerDownIsError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	r := newRelay(t, Config{Server: addr})
	if _, err := r.Probe(context.Background(), "user@example.test"); err == nil {
		t.Errorf("Probe succeeded with the server down")
	}
}
