package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// wazeroCacheDir keeps compiled guests across test runs: a Go guest costs
// seconds to compile and milliseconds to load from the cache.
var wazeroCacheDir = filepath.Join(os.TempDir(), "lambgate-test-wazero-cache")

var (
	goGuestMu    sync.Mutex
	goGuestBuilt = map[string][]byte{}
)

// repoRoot returns the module root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// buildGoGuest builds a Go plugin package (a path relative to the module
// root) once per test binary. The go command caches the compile; the link
// still costs about a second.
func buildGoGuest(t *testing.T, pkg string) []byte {
	t.Helper()
	goGuestMu.Lock()
	defer goGuestMu.Unlock()
	if wasm, ok := goGuestBuilt[pkg]; ok {
		return wasm
	}
	out := filepath.Join(t.TempDir(), "guest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./"+pkg)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build Go guest %s: %v\n%s", pkg, err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	goGuestBuilt[pkg] = wasm
	return wasm
}

var (
	asGuestMu    sync.Mutex
	asGuestBuilt = map[string][]byte{}
)

// buildASGuest compiles an AssemblyScript entry file (relative to the
// module root) with the SDK's pinned asc, installing it with
// sdk/assemblyscript/install.sh first. A failed install fails the test.
func buildASGuest(t *testing.T, entry string) []byte {
	t.Helper()
	asGuestMu.Lock()
	defer asGuestMu.Unlock()
	if wasm, ok := asGuestBuilt[entry]; ok {
		return wasm
	}
	root := repoRoot(t)
	install := exec.Command(filepath.Join(root, "sdk", "assemblyscript", "install.sh"))
	if msg, err := install.CombinedOutput(); err != nil {
		t.Fatalf("install AssemblyScript (needs node >= 20 and npm): %v\n%s", err, msg)
	}
	out := filepath.Join(t.TempDir(), "guest.wasm")
	asc := filepath.Join(root, "sdk", "assemblyscript", "node_modules", ".bin", "asc")
	cmd := exec.Command(asc, entry, "-O3", "--exportStart", "_initialize", "-o", out)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("asc %s: %v\n%s", entry, err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	asGuestBuilt[entry] = wasm
	return wasm
}
