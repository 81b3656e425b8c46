package host

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
)

// touch gives a file a distinct modification time, so that a rewrite
// within the file system's timestamp granularity is still seen.
func touch(t *testing.T, path string, offset time.Duration) {
	t.Helper()
	when := time.Now().Add(offset)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func actionModule(t *testing.T, action filter.Action) []byte {
	return wat2wasm(t, watModule("", map[string]string{"connect": "(i32.const " + strconv.Itoa(int(action)) + ")"}))
}

func TestReloadAppliesChanges(t *testing.T) {
	dir := t.TempDir()
	wasmPath := filepath.Join(dir, "p.wasm")
	installPlugin(t, dir, "p", actionModule(t, filter.Reject), manifest("p", `phases = ["connect"]`))
	h, _ := newTestHost(t, dir, nil)
	ctx := context.Background()

	if v := h.Connect(ctx, testConn); v.Action != filter.Reject {
		t.Fatalf("before reload: verdict %v, want reject", v.Action)
	}

	installPlugin(t, dir, "p", actionModule(t, filter.Tempfail), manifest("p", `phases = ["connect"]`))
	touch(t, wasmPath, time.Second)
	res, err := h.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Loaded) != 1 || res.Loaded[0] != "p" {
		t.Errorf("reload loaded %v, want [p]", res.Loaded)
	}
	if v := h.Connect(ctx, testConn); v.Action != filter.Tempfail {
		t.Errorf("after update: verdict %v, want tempfail", v.Action)
	}

	res, _ = h.Reload(ctx)
	if len(res.Loaded)+len(res.Removed)+len(res.Rejected) != 0 {
		t.Errorf("reload without changes reported %+v", res)
	}

	os.Remove(wasmPath)
	res, _ = h.Reload(ctx)
	if len(res.Removed) != 1 {
		t.Errorf("reload removed %v, want [p]", res.Removed)
	}
	if v := h.Connect(ctx, testConn); v.Action != filter.Continue {
		t.Errorf("after removal: verdict %v, want continue", v.Action)
	}
}

func TestReloadKeepsRunningOnInvalidFile(t *testing.T) {
	dir := t.TempDir()
	wasmPath := filepath.Join(dir, "p.wasm")
	installPlugin(t, dir, "p", actionModule(t, filter.Reject), manifest("p", `phases = ["connect"]`))
	h, logs := newTestHost(t, dir, nil)
	ctx := context.Background()

	if err := os.WriteFile(wasmPath, []byte("\x00asm garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	touch(t, wasmPath, time.Second)
	res, err := h.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].File != wasmPath {
		t.Errorf("reload rejected %v, want [%s]", res.Rejected, wasmPath)
	}
	if v := h.Connect(ctx, testConn); v.Action != filter.Reject {
		t.Errorf("verdict %v, want the running version's reject", v.Action)
	}
	if n := strings.Count(logs.String(), "plugin rejected"); n != 1 {
		t.Errorf("%d rejection records, want 1:\n%s", n, logs)
	}

	// The same bad file is not logged again on the next poll.
	h.Reload(ctx)
	if n := strings.Count(logs.String(), "plugin rejected"); n != 1 {
		t.Errorf("%d rejection records after a second reload, want 1", n)
	}
}

func TestReloadMissingManifestRejected(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lone.wasm"), actionModule(t, filter.Reject), 0o644); err != nil {
		t.Fatal(err)
	}
	h, logs := newTestHost(t, dir, nil)
	if len(h.Plugins()) != 0 {
		t.Errorf("plugins %v, want none", h.Plugins())
	}
	if !strings.Contains(logs.String(), "lone.toml") {
		t.Errorf("log does not name the missing manifest:\n%s", logs)
	}
}

// TestReloadDuringCalls swaps between two versions while calls run; every
// call must get one of the two verdicts and none may fail.
func TestReloadDuringCalls(t *testing.T) {
	dir := t.TempDir()
	wasmPath := filepath.Join(dir, "p.wasm")
	versions := [][]byte{actionModule(t, filter.Reject), actionModule(t, filter.Tempfail)}
	installPlugin(t, dir, "p", versions[0], manifest("p", `phases = ["connect"]`))
	h, _ := newTestHost(t, dir, nil)
	ctx := context.Background()

	var stop atomic.Bool
	var calls, bad atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				v := h.Connect(ctx, testConn)
				calls.Add(1)
				if v.Action != filter.Reject && v.Action != filter.Tempfail {
					bad.Add(1)
				}
			}
		}()
	}
	for i := range 20 {
		installPlugin(t, dir, "p", versions[(i+1)%2], manifest("p", `phases = ["connect"]`))
		touch(t, wasmPath, time.Duration(i+1)*time.Second)
		if _, err := h.Reload(ctx); err != nil {
			t.Error(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	if calls.Load() == 0 {
		t.Fatal("no calls ran during the reloads")
	}
	if bad.Load() != 0 {
		t.Errorf("%d of %d calls got neither version's verdict", bad.Load(), calls.Load())
	}
}

func TestWatchLoadsNewPlugin(t *testing.T) {
	dir := t.TempDir()
	h, _ := newTestHost(t, dir, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Watch(ctx, 10*time.Millisecond)

	installPlugin(t, dir, "p", actionModule(t, filter.Reject), manifest("p", `phases = ["connect"]`))
	// Wait for the poll to see the files; the bound only keeps a broken
	// watcher from hanging the test.
	deadline := time.Now().Add(10 * time.Second)
	for h.Connect(ctx, testConn).Action != filter.Reject {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not load the new plugin within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatchStopsAfterClose(t *testing.T) {
	h, err := New(context.Background(), Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		h.Watch(context.Background(), time.Millisecond)
		close(done)
	}()
	h.Close(context.Background())
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch still running 10 s after Close")
	}
}
