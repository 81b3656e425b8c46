package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/plugins/host"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

// TestBundledPluginsTogether runs one message through all five bundled
// plugins with their shipped manifests: the client is on one light
// blocklist, SPF passes, and the subject matches a quarantine rule.
func TestBundledPluginsTogether(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, name := range bundled {
		wasm, err := plugintest.BuildOnce(ctx, filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		manifest, err := os.ReadFile(filepath.Join("..", name, name+".toml"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name+".toml"), manifest, 0o644)
		os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o644)
	}
	r := resolver()
	r.A = map[string][]string{"5.2.0.192.bl.spamcop.net": {"127.0.0.2"}}
	h, err := host.New(ctx, host.Config{
		Dir: dir, CacheDir: plugintest.TestCacheDir, Resolver: r,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if len(h.Plugins()) != len(bundled) {
		t.Fatalf("loaded %d of %d plugins", len(h.Plugins()), len(bundled))
	}

	conn := &filter.Conn{ClientIP: netip.MustParseAddr("192.0.2.5"), HELO: "client.example"}
	for _, v := range []filter.Verdict{h.Connect(ctx, conn), h.Helo(ctx, conn)} {
		if v.Action != filter.Continue {
			t.Fatalf("early verdict %+v, want continue", v)
		}
	}
	txn := &filter.Txn{Conn: conn, QueueID: "Q1", From: "alice@example.org"}
	if v := h.Mail(ctx, txn); v.Action != filter.Continue {
		t.Fatalf("mail verdict %+v, want continue", v)
	}
	txn.Recipients = []string{"bob@example.com"}

	spam := bytes.Replace(message, []byte("Subject: Quarterly report"), []byte("Subject: Cheap viagra"), 1)
	v, edits := h.Data(ctx, txn, bytes.NewReader(spam))
	if v.Action != filter.Quarantine || v.Filter != "headerrules" {
		t.Errorf("data verdict %v from %q, want quarantine from headerrules", v.Action, v.Filter)
	}
	var names []string
	for _, hd := range edits.AddHeaders {
		names = append(names, hd.Name)
	}
	if !slices.Equal(names, []string{"X-Lambgate-DNSBL", "Received-SPF"}) {
		t.Errorf("added headers %v, want X-Lambgate-DNSBL then Received-SPF", names)
	}
	if !slices.Equal(edits.Tags, []string{"dnsbl", "headerrules:1"}) {
		t.Errorf("tags %v, want [dnsbl headerrules:1]", edits.Tags)
	}
	for _, s := range h.Stats() {
		if s.Name == "attachments" && s.Calls["body"] != 0 {
			t.Errorf("attachments ran %d times after the final verdict", s.Calls["body"])
		}
		if len(s.Failures) != 0 {
			t.Errorf("%s failures %v, want none", s.Name, s.Failures)
		}
	}
}
