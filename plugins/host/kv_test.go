package host

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestKVExpiryAndCounters(t *testing.T) {
	kv, err := openKV("")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	if st := kv.set("a", []byte("x"), 10, t0); st != statusOK {
		t.Fatalf("set: status %d", st)
	}
	if v, ok := kv.get("a", t0.Add(9*time.Second)); !ok || string(v) != "x" {
		t.Errorf("get before expiry: %q %t, want x", v, ok)
	}
	if _, ok := kv.get("a", t0.Add(10*time.Second)); ok {
		t.Error("get at expiry found the key")
	}

	for i, want := range []int64{1, 2, 3} {
		n, st := kv.incr("c", 1, 60, t0.Add(time.Duration(i)*time.Second))
		if st != statusOK || n != want {
			t.Errorf("incr %d: %d status %d, want %d", i, n, st, want)
		}
	}
	// Incrementing kept the first expiry, so the window restarts at 60 s.
	if n, _ := kv.incr("c", 1, 60, t0.Add(60*time.Second)); n != 1 {
		t.Errorf("incr after the window: %d, want 1", n)
	}

	kv.set("text", []byte("abc"), 0, t0)
	if _, st := kv.incr("text", 1, 0, t0); st != statusBadArgument {
		t.Errorf("incr of a non-number: status %d, want %d", st, statusBadArgument)
	}
}

func TestKVFullStoreRejectsNewKeys(t *testing.T) {
	kv, _ := openKV("")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxKVEntries {
		kv.entries[strconv.Itoa(i)] = kvEntry{Value: []byte("v"), Expires: expiry(5, t0)}
	}
	if st := kv.set("new", []byte("v"), 0, t0); st != statusLimit {
		t.Errorf("set in a full store: status %d, want %d", st, statusLimit)
	}
	if st := kv.set("0", []byte("w"), 0, t0); st != statusOK {
		t.Errorf("overwrite in a full store: status %d, want ok", st)
	}
	// Once entries expire, the sweep makes room.
	if st := kv.set("new", []byte("v"), 0, t0.Add(10*time.Second)); st != statusOK {
		t.Errorf("set after expiry: status %d, want ok", st)
	}
}

func TestKVFlushAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.kv.json")
	kv, _ := openKV(path)
	t0 := time.Now()
	kv.set("k", []byte("v"), 0, t0)
	if err := kv.flush(); err != nil {
		t.Fatal(err)
	}
	again, err := openKV(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := again.get("k", t0); !ok || string(v) != "v" {
		t.Errorf("reloaded value %q %t, want v", v, ok)
	}

	os.WriteFile(path, []byte("{broken"), 0o600)
	if _, err := openKV(path); err == nil {
		t.Error("corrupt store opened without an error")
	}
}

func TestCompilationCacheWritten(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	installPlugin(t, dir, "p", wat2wasm(t, watModule("", map[string]string{"connect": "(i32.const 0)"})),
		manifest("p", `phases = ["connect"]`))
	newTestHost(t, dir, func(c *Config) { c.CacheDir = cache })
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Error("compilation cache directory is empty after loading a plugin")
	}
}
