package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/images/internal/rootfs"
)

// fakeAppliance records requests and replies like gokrazy's handlers:
// /update/root returns the SHA-256 of what it wrote.
type fakeAppliance struct {
	written  []byte
	requests []string
	corrupt  bool
}

func (f *fakeAppliance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pw, ok := r.BasicAuth()
	if !ok || user != "gokrazy" || pw != "secret" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	switch r.URL.Path {
	case "/update/root":
		b, _ := io.ReadAll(r.Body)
		if f.corrupt {
			b = append(b, 0)
		}
		f.written = b
		sum := sha256.Sum256(b)
		io.WriteString(w, hex.EncodeToString(sum[:]))
	case "/update/switch", "/reboot":
	default:
		http.NotFound(w, r)
	}
}

func writeRoot(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "root.squashfs")
	if err := os.WriteFile(path, []byte("hsqs new root"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPushSwitchRebootSendsRequests(t *testing.T) {
	app := &fakeAppliance{}
	srv := httptest.NewServer(app)
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Password: "secret"}
	ctx := context.Background()

	if err := c.PushRoot(ctx, writeRoot(t)); err != nil {
		t.Fatalf("PushRoot: %v", err)
	}
	if err := c.Switch(ctx); err != nil {
		t.Fatalf("Switch: %v", err)
	}
	if err := c.Reboot(ctx, 2*time.Second, false); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if string(app.written) != "hsqs new root" {
		t.Errorf("appliance received %q, want the root file", app.written)
	}
	want := []string{"PUT /update/root", "POST /update/switch", "POST /reboot"}
	if strings.Join(app.requests, ", ") != strings.Join(want, ", ") {
		t.Errorf("requests = %q, want %q", app.requests, want)
	}
}

func TestPushRootDetectsHashMismatch(t *testing.T) {
	srv := httptest.NewServer(&fakeAppliance{corrupt: true})
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Password: "secret"}
	err := c.PushRoot(context.Background(), writeRoot(t))
	if err == nil || !strings.Contains(err.Error(), "corrupted") {
		t.Errorf("PushRoot = %v, want a corrupted-transfer error", err)
	}
}

func TestWrongPasswordNamesPasswordFile(t *testing.T) {
	srv := httptest.NewServer(&fakeAppliance{})
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Password: "wrong"}
	err := c.Switch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "password file") {
		t.Errorf("Switch = %v, want an error that points at the password file", err)
	}
}

func TestWaitBuildSeesNewBuild(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 3 {
			io.WriteString(w, "built at old-build")
			return
		}
		io.WriteString(w, "built at new-build")
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Password: "secret"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitBuild(ctx, "new-build", 10*time.Millisecond); err != nil {
		t.Fatalf("WaitBuild: %v", err)
	}
	if calls != 3 {
		t.Errorf("status page fetched %d times, want 3", calls)
	}
}

func TestWaitBuildTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "built at old-build")
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Password: "secret"}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.WaitBuild(ctx, "new-build", 10*time.Millisecond); err == nil {
		t.Error("WaitBuild returned nil although the build never appeared")
	}
}

func TestRootBuildIDReadsSquashfs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root.squashfs")
	entries := []rootfs.Entry{{Path: "etc/lambgate/build-id", Data: []byte("abc123-20260501T120000Z\n"), Mode: 0o644}}
	if err := rootfs.Write(root, entries, time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	id, err := RootBuildID(root)
	if err != nil {
		t.Fatal(err)
	}
	if id != "abc123-20260501T120000Z" {
		t.Errorf("build ID %q, want abc123-20260501T120000Z", id)
	}
}

func TestRootBuildIDRejectsNonSquashfs(t *testing.T) {
	_, err := RootBuildID(writeRoot(t))
	if err == nil {
		t.Error("RootBuildID accepted a file that is not a squashfs")
	}
}
