package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/plugins/host"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

// clock is a settable time source for the host, so that windows can end
// without sleeping.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// newHost installs the plugin with max_messages = 2 and a 60 s window.
func newHost(t *testing.T, stateDir string, c *clock) *host.Host {
	t.Helper()
	ctx := context.Background()
	wasm, err := plugintest.BuildOnce(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile("ratelimit.toml")
	if err != nil {
		t.Fatal(err)
	}
	manifest = plugintest.WithSetting(manifest, "max_messages", "2")
	manifest = plugintest.WithSetting(manifest, "window_seconds", "60")
	manifest = plugintest.WithSetting(manifest, "exempt", `["192.0.2.99"]`)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ratelimit.toml"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ratelimit.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := host.New(ctx, host.Config{
		Dir: dir, StateDir: stateDir, CacheDir: plugintest.TestCacheDir, Now: c.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Plugins()) != 1 {
		t.Fatal("ratelimit plugin was rejected")
	}
	return h
}

func mail(h *host.Host, client string) filter.Verdict {
	conn := &filter.Conn{ClientIP: netip.MustParseAddr(client)}
	return h.Mail(context.Background(), &filter.Txn{Conn: conn, From: "a@example.org"})
}

func TestRateLimitPerClient(t *testing.T) {
	c := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	h := newHost(t, "", c)
	defer h.Close(context.Background())

	steps := []struct {
		name   string
		client string
		after  time.Duration
		want   filter.Action
	}{
		{"first message passes", "192.0.2.1", 0, filter.Continue},
		{"second message passes", "192.0.2.1", 0, filter.Continue},
		{"third message tempfails", "192.0.2.1", 0, filter.Tempfail},
		{"other client passes", "192.0.2.2", 0, filter.Continue},
		{"same IPv6 /64 shares a counter", "2001:db8:1:2::1", 0, filter.Continue},
		{"second IPv6 host in /64", "2001:db8:1:2::ffff", 0, filter.Continue},
		{"third IPv6 host in /64 tempfails", "2001:db8:1:2:aaaa::1", 0, filter.Tempfail},
		{"exempt client passes", "192.0.2.99", 0, filter.Continue},
		{"exempt client passes again", "192.0.2.99", 0, filter.Continue},
		{"exempt client never limited", "192.0.2.99", 0, filter.Continue},
		{"new window passes", "192.0.2.1", 61 * time.Second, filter.Continue},
	}
	for _, s := range steps {
		c.now = c.now.Add(s.after)
		v := mail(h, s.client)
		if v.Action != s.want {
			t.Errorf("%s: verdict %v, want %v", s.name, v.Action, s.want)
		}
		if s.want == filter.Tempfail && (v.Code != 451 || v.Enhanced != [3]int{4, 7, 1}) {
			t.Errorf("%s: reply %d %v, want 451 4.7.1", s.name, v.Code, v.Enhanced)
		}
	}
}

func TestRateLimitSurvivesRestart(t *testing.T) {
	c := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	state := t.TempDir()
	h := newHost(t, state, c)
	mail(h, "192.0.2.1")
	mail(h, "192.0.2.1")
	h.Close(context.Background())

	h = newHost(t, state, c)
	defer h.Close(context.Background())
	if v := mail(h, "192.0.2.1"); v.Action != filter.Tempfail {
		t.Errorf("verdict after restart %v, want tempfail from the stored counter", v.Action)
	}
}
