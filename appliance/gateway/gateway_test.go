package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func testSettings(t *testing.T) *settings.Settings {
	s := settings.Default()
	s.Inbound.Listen = []string{freeAddr(t)}
	s.Admin.Listen = freeAddr(t)
	s.Inbound.SPF = false
	s.Bounce.RequireSPFPass = false
	// Lookups go to a closed loopback port, never the machine's resolver.
	s.Bounce.Resolver = "127.0.0.1:9"
	s.Queue.MinBackoff = settings.Duration(time.Second)
	s.Queue.MaxBackoff = settings.Duration(time.Second)
	return s
}

func startGateway(t *testing.T, dataDir string, s *settings.Settings) *Gateway {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := New(dataDir, s, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
	return g
}

// send delivers one message without STARTTLS: net/smtp's SendMail would
// verify the gateway's self-signed certificate and fail.
func send(addr, rcpt string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail("a@example.org"); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	io.WriteString(w, "From: a@example.org\r\nTo: "+rcpt+"\r\nSubject: gateway test\r\n\r\nhello\r\n")
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// waitFiles waits until dir holds n files.
func waitFiles(t *testing.T, dir string, n int) []os.DirEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _ := os.ReadDir(dir)
		if len(entries) >= n || time.Now().After(deadline) {
			if len(entries) != n {
				t.Fatalf("%s holds %d files, want %d", dir, len(entries), n)
			}
			return entries
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGatewayDeliversToMaildir(t *testing.T) {
	dir := t.TempDir()
	s := testSettings(t)
	startGateway(t, dir, s)

	if err := send(s.Inbound.Listen[0], "postmaster@example.test"); err != nil {
		t.Fatal(err)
	}
	entries := waitFiles(t, filepath.Join(dir, "maildir", "new"), 1)
	data, err := os.ReadFile(filepath.Join(dir, "maildir", "new", entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Delivered-To: postmaster@example.test", "Received: from", "Subject: gateway test"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("delivered message lacks %q:\n%s", want, data)
		}
	}
}

func TestGatewayRejectsForeignDomain(t *testing.T) {
	s := testSettings(t)
	startGateway(t, t.TempDir(), s)

	err := send(s.Inbound.Listen[0], "user@example.org")
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("foreign domain: err = %v, want a 550 rejection", err)
	}
}

func TestReloadAppliesRelayDomains(t *testing.T) {
	s := testSettings(t)
	g := startGateway(t, t.TempDir(), s)

	next := *s
	next.Domains.Relay = []string{"example.test", "example.net"}
	if err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if err := send(s.Inbound.Listen[0], "user@example.net"); err != nil {
		t.Errorf("domain added by reload rejected: %v", err)
	}
}

func TestReloadDeliversQueuedMail(t *testing.T) {
	dir := t.TempDir()
	s := testSettings(t)
	// Nothing listens here, so mail stays queued.
	s.Internal.Server = freeAddr(t)
	g := startGateway(t, dir, s)

	if err := send(s.Inbound.Listen[0], "postmaster@example.test"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.Queue().Stats().Deferrals == 0 {
		if time.Now().After(deadline) {
			t.Fatal("message was never deferred")
		}
		time.Sleep(20 * time.Millisecond)
	}

	next := *s
	next.Internal.Server = ""
	if err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	waitFiles(t, filepath.Join(dir, "maildir", "new"), 1)
}

func TestReloadMovesListener(t *testing.T) {
	s := testSettings(t)
	g := startGateway(t, t.TempDir(), s)

	next := *s
	next.Inbound.Listen = []string{freeAddr(t)}
	if err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if err := send(next.Inbound.Listen[0], "postmaster@example.test"); err != nil {
		t.Errorf("new listener: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Inbound.Listen[0], time.Second); err == nil {
		t.Error("old listener still accepts connections")
	}
}

func TestMetricsEndpointServes(t *testing.T) {
	s := testSettings(t)
	startGateway(t, t.TempDir(), s)
	if err := send(s.Inbound.Listen[0], "postmaster@example.test"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)

	resp, err := httpGet("http://" + s.Admin.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lambgate_queue_depth", `lambgate_delivery_outcomes_total{kind="inbound",outcome="delivered"} 1`} {
		if !strings.Contains(resp, want) {
			t.Errorf("metrics lack %q:\n%s", want, resp)
		}
	}
}

func TestAdminRedirectIgnoresHostHeader(t *testing.T) {
	s := testSettings(t)
	startGateway(t, t.TempDir(), s)

	req, err := http.NewRequest("GET", "http://"+s.Admin.Listen+"/settings", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "evil.example"
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "https://" + s.Admin.Listen + "/settings"
	if got := resp.Header.Get("Location"); got != want {
		t.Errorf("redirect to %q, want %q", got, want)
	}
}

func TestReloadRejectsBusyAdminAddress(t *testing.T) {
	s := testSettings(t)
	g := startGateway(t, t.TempDir(), s)

	next := *s
	// The SMTP listener's address is taken.
	next.Admin.Listen = s.Inbound.Listen[0]
	if err := g.Reload(&next); err == nil {
		t.Fatal("reload onto a busy admin address succeeded")
	}
	if _, err := httpGet("http://" + s.Admin.Listen + "/healthz"); err != nil {
		t.Errorf("web setup gone after a rejected move: %v", err)
	}
}
