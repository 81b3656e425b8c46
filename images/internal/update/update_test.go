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
