package host

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// watPrelude declares the host calls the hand-written test modules use.
const watPrelude = `
  (import "lambgate" "set_reply" (func $set_reply (param i32 i32 i32 i32 i32) (result i32)))
  (import "lambgate" "get_property" (func $get_property (param i32 i32 i32) (result i32)))
  (import "lambgate" "dns_lookup" (func $dns_lookup (param i32 i32 i32 i32 i32) (result i32)))
  (import "lambgate" "now_ms" (func $now_ms (result i64)))
  (import "lambgate" "kv_incr" (func $kv_incr (param i32 i32 i64 i32 i32) (result i32)))
  (import "lambgate" "add_header" (func $add_header (param i32 i32 i32 i32) (result i32)))
  (import "lambgate" "add_tag" (func $add_tag (param i32 i32) (result i32)))
`

// watModule wraps callback bodies into a module with the ABI v1 marker
// and one page of memory. phases maps a phase name to its body.
func watModule(extra string, phases map[string]string) string {
	var sb strings.Builder
	sb.WriteString("(module\n" + watPrelude + "\n  (memory (export \"memory\") 1)\n")
	sb.WriteString("  (func (export \"lambgate_abi_version_1\"))\n")
	sb.WriteString(extra + "\n")
	for name, body := range phases {
		sb.WriteString("  (func (export \"lambgate_on_" + name + "\") (result i32)\n    " + body + ")\n")
	}
	sb.WriteString(")\n")
	return sb.String()
}

// wat2wasm compiles WAT text with Debian's wabt. A missing wat2wasm fails
// the test: these modules are the only way to exercise faults that no SDK
// would produce.
func wat2wasm(t testing.TB, wat string) []byte {
	t.Helper()
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatalf("wat2wasm not found (%v): install Debian's wabt package (scripts/install-deps.sh)", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "m.wat")
	out := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(src, []byte(wat), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--enable-all", "-o", out, src)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s\n%s", err, msg, wat)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// installPlugin writes NAME.wasm and NAME.toml into dir, the way an
// installer should: a temporary file renamed into place.
func installPlugin(t testing.TB, dir, name string, wasm []byte, manifest string) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{
		{filepath.Join(dir, name+".toml"), []byte(manifest)},
		{filepath.Join(dir, name+".wasm"), wasm},
	} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
}

// logBuffer collects log output for assertions; slog handlers may be
// called from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newTestHost starts a host on dir with a log captured into the returned
// buffer, and closes it when the test ends.
func newTestHost(t testing.TB, dir string, mutate func(*Config)) (*Host, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := Config{
		Dir: dir,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, logs
}

// manifest builds a manifest from TOML lines. Unless the lines set one, it
// sets a time limit of 5 s, so that a test machine under load does not
// turn a slow call into a time-out.
func manifest(name string, lines ...string) string {
	limit := `time_limit = "5s"`
	for _, l := range lines {
		if strings.HasPrefix(l, "time_limit") || strings.Contains(l, "\ntime_limit") {
			limit = ""
		}
	}
	return "name = \"" + name + "\"\nversion = \"1.0\"\n" + limit + "\n" + strings.Join(lines, "\n") + "\n"
}
