package webui

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/plugins/host"
)

// The fake backend's plugin methods record installs and refuse the rest.

func (b *fakeBackend) Plugins() []PluginInfo { return nil }

func (b *fakeBackend) InstallPlugin(_ context.Context, wasm, manifest []byte) (*host.Manifest, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.installs++
	return host.ParseManifest(manifest)
}

func (b *fakeBackend) SetPluginEnabled(context.Context, string, bool) error { return nil }
func (b *fakeBackend) PluginManifest(string) ([]byte, error)                { return nil, nil }
func (b *fakeBackend) UpdatePluginManifest(context.Context, string, []byte) error {
	return nil
}
func (b *fakeBackend) SetPluginOrder(context.Context, string, int) error { return nil }
func (b *fakeBackend) RemovePlugin(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removed = append(b.removed, name)
	return nil
}

// uploadForm builds the multipart body of the plugin upload form.
func uploadForm(t *testing.T, csrf string, wasm, manifest []byte) (*bytes.Buffer, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", csrf)
	fw, _ := mw.CreateFormFile("module", "probe.wasm")
	fw.Write(wasm)
	fw, _ = mw.CreateFormFile("manifest", "probe.toml")
	fw.Write(manifest)
	mw.Close()
	return &body, mw.FormDataContentType()
}

const testManifest = "name = \"probe\"\nversion = \"1\"\nphases = [\"rcpt\"]\n"

func TestPluginUploadSizeLimited(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)

	big := []byte(testManifest + "# " + strings.Repeat("x", MaxPluginManifestBytes) + "\n")
	body, ctype := uploadForm(t, h.csrf(h.client, "/plugins"), []byte("\x00asm"), big)
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/plugins", body)
	req.Header.Set("Content-Type", ctype)
	r := h.do(h.client, req)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("oversized manifest: status %d, want 422", r.status)
	}
	if !strings.Contains(r.body, "more than the limit") {
		t.Errorf("page does not name the limit:\n%s", r.body)
	}
	if h.backend.installs != 0 {
		t.Error("an oversized manifest reached the plugin host")
	}

	body, ctype = uploadForm(t, h.csrf(h.client, "/plugins"), []byte("\x00asm"), []byte(testManifest))
	req, _ = http.NewRequest(http.MethodPost, h.ts.URL+"/plugins", body)
	req.Header.Set("Content-Type", ctype)
	if r := h.do(h.client, req); r.status != http.StatusSeeOther {
		t.Errorf("upload within the limits: status %d, want 303:\n%s", r.status, r.body)
	}
	if h.backend.installs != 1 {
		t.Errorf("plugin host got %d installs, want 1", h.backend.installs)
	}
}

func TestPluginUploadNeedsSessionAndCSRF(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)

	body, ctype := uploadForm(t, "", []byte("\x00asm"), []byte(testManifest))
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/plugins", body)
	req.Header.Set("Content-Type", ctype)
	if r := h.do(h.client, req); r.status != http.StatusForbidden {
		t.Errorf("upload without a CSRF token: status %d, want 403", r.status)
	}

	anonymous := h.newClient()
	body, ctype = uploadForm(t, h.csrf(anonymous, "/login"), []byte("\x00asm"), []byte(testManifest))
	req, _ = http.NewRequest(http.MethodPost, h.ts.URL+"/plugins", body)
	req.Header.Set("Content-Type", ctype)
	if r := h.do(anonymous, req); r.status != http.StatusUnauthorized {
		t.Errorf("upload without a session: status %d, want 401", r.status)
	}
	if h.backend.installs != 0 {
		t.Errorf("plugin host got %d installs, want 0", h.backend.installs)
	}
}

func TestPluginActionRejectsInvalidName(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	token := h.csrf(h.client, "/plugins")
	for _, name := range []string{"Upper", "-dash", "dot.name"} {
		r := h.post(h.client, "/plugins/"+url.PathEscape(name)+"/remove", url.Values{"csrf": {token}})
		if r.status != http.StatusNotFound {
			t.Errorf("remove %q: status %d, want 404", name, r.status)
		}
	}
	if len(h.backend.removed) != 0 {
		t.Errorf("invalid names reached the backend: %v", h.backend.removed)
	}
	if r := h.post(h.client, "/plugins/probe/remove", url.Values{"csrf": {token}}); r.status != http.StatusSeeOther {
		t.Errorf("remove probe: status %d, want 303", r.status)
	}
}

func TestPluginEditRejectsTraversal(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	for _, name := range []string{"../../etc/secret", "..%2f..%2fsecret", "Upper"} {
		r := h.get(h.client, "/plugins/"+url.PathEscape(name)+"/edit")
		if r.status != http.StatusNotFound {
			t.Errorf("edit %q: status %d, want 404", name, r.status)
		}
	}
}

func TestOversizedBodyGets413(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	token := h.csrf(h.client, "/settings")
	form := url.Values{"csrf": {token}, "filler": {strings.Repeat("x", 2<<20)}}
	r := h.post(h.client, "/settings/import", form)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d for a 2 MiB form, want 413", r.status)
	}
	if !strings.Contains(r.body, "limit") {
		t.Errorf("reply does not name the limit: %s", r.body)
	}
}
