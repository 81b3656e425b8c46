package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
)

func TestInstallAndRemove(t *testing.T) {
	dir := t.TempDir()
	h, _ := newTestHost(t, dir, nil)
	ctx := context.Background()

	man, err := h.Install(ctx, actionModule(t, filter.Reject), []byte(manifest("p", `phases = ["connect"]`)))
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if man.Name != "p" {
		t.Errorf("installed manifest name %q, want p", man.Name)
	}
	if v := h.Connect(ctx, testConn); v.Action != filter.Reject {
		t.Errorf("verdict after install %v, want reject", v.Action)
	}
	for _, f := range []string{"p.wasm", "p.toml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}

	// A new manifest for the same module replaces the running one.
	if _, err := h.Install(ctx, actionModule(t, filter.Reject), []byte(manifest("p", `phases = ["connect"]`, `failure_mode = "open"`))); err != nil {
		t.Fatalf("Install of a new manifest: %v", err)
	}
	if got := h.Plugins(); len(got) != 1 || got[0].FailureMode != "open" {
		t.Errorf("running plugins %+v, want p with failure mode open", got)
	}

	// An invalid manifest is refused, and the running version stays.
	if _, err := h.Install(ctx, actionModule(t, filter.Reject), []byte(manifest("p", `phases = ["helo"]`))); err == nil {
		t.Error("Install accepted a manifest listing a phase the module does not export")
	}
	if v := h.Connect(ctx, testConn); v.Action != filter.Reject {
		t.Errorf("verdict after a refused install %v, want the running reject", v.Action)
	}

	if err := h.Remove(ctx, "p"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if v := h.Connect(ctx, testConn); v.Action != filter.Continue {
		t.Errorf("verdict after remove %v, want continue", v.Action)
	}
	if err := h.Remove(ctx, "p"); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("second Remove: %v, want not installed", err)
	}
}

func TestValidateLeavesDirectoryAlone(t *testing.T) {
	dir := t.TempDir()
	h, _ := newTestHost(t, dir, nil)
	bad := wat2wasm(t, strings.Replace(watModule("", map[string]string{"connect": "(i32.const 0)"}),
		"lambgate_abi_version_1", "lambgate_abi_version_9", 1))
	_, err := h.Install(context.Background(), bad, []byte(manifest("bad", `phases = ["connect"]`)))
	if err == nil || !strings.Contains(err.Error(), "ABI version 9") {
		t.Errorf("Install error %v, want the ABI version named", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("directory has %d entries after a refused install, want 0", len(entries))
	}
}
