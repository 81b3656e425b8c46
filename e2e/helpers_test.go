package e2e

import (
	"io"
	"net/smtp"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/internal/testenv"
)

// closedResolver is a loopback DNS address where nothing listens.
const closedResolver = "127.0.0.1:9"

// baseSettings returns settings for a gateway on a free loopback port that
// relays example.test to internal, with retries fast enough for a test.
func baseSettings(t testing.TB, internal string) *settings.Settings {
	t.Helper()
	s := settings.Default()
	s.Inbound.Listen = []string{testenv.FreeAddr(t)}
	s.Admin.Listen = testenv.FreeAddr(t)
	s.Internal.Server = internal
	s.Internal.SourceAddress = "127.0.0.1"
	s.Queue.MinBackoff = settings.Duration(time.Second)
	s.Queue.MaxBackoff = settings.Duration(2 * time.Second)
	// No DNS server unless a test sets one: SPF is checked only where the
	// test needs its result, and any other lookup goes to a closed loopback
	// port, so that no test ever queries the machine's own resolver.
	s.Inbound.SPF = false
	s.Bounce.RequireSPFPass = false
	s.Bounce.Resolver = closedResolver
	return s
}

func marshal(t testing.TB, s *settings.Settings) string {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatalf("test settings invalid: %v", err)
	}
	data, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// startGateway builds the binary once and starts it on s in a new data
// directory. Each prepare function runs on the data directory first, for
// example to install plugins.
func startGateway(t testing.TB, s *settings.Settings, prepare ...func(dataDir string)) *testenv.Gateway {
	t.Helper()
	bin := testenv.BuildGateway(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, p := range prepare {
		p(dataDir)
	}
	return testenv.StartGateway(t, bin, dataDir, marshal(t, s))
}

// sendPlain delivers msg in one SMTP session without STARTTLS (net/smtp's
// SendMail would verify the gateway's self-signed certificate and fail).
func sendPlain(addr, from, rcpt, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
