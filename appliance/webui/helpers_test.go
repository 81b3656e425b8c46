package webui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/appliance/spool"
)

// fakeBackend records what the web UI asked of the gateway.
type fakeBackend struct {
	mu       sync.Mutex
	settings *settings.Settings
	applied  int
	released []string
	retried  []string
	installs int
	removed  []string
	// attemptRunning makes Retry, Delete and Bounce fail as they do while
	// a delivery attempt of the message runs.
	attemptRunning bool
}

func newFakeBackend() *fakeBackend { return &fakeBackend{settings: settings.Default()} }

func (b *fakeBackend) Settings() *settings.Settings {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, _ := b.settings.Marshal()
	s, err := settings.Parse(data)
	if err != nil {
		panic(err)
	}
	return s
}

func (b *fakeBackend) ApplySettings(s *settings.Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settings = s
	b.applied++
	return nil
}

func (b *fakeBackend) appliedCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.applied
}

func (b *fakeBackend) Messages(spool.Area) ([]*envelope.Envelope, error) { return nil, nil }

func (b *fakeBackend) Message(spool.Area, string) (*envelope.Envelope, []byte, error) {
	return nil, nil, spool.ErrNotFound
}

func (b *fakeBackend) RetryNow() {}
func (b *fakeBackend) Retry(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.attemptRunning {
		return queue.ErrAttemptRunning
	}
	b.retried = append(b.retried, id)
	return nil
}

func (b *fakeBackend) Delete(spool.Area, string) error { return b.actionError() }

func (b *fakeBackend) Bounce(context.Context, string) error { return b.actionError() }

func (b *fakeBackend) setAttemptRunning() {
	b.mu.Lock()
	b.attemptRunning = true
	b.mu.Unlock()
}

func (b *fakeBackend) actionError() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.attemptRunning {
		return queue.ErrAttemptRunning
	}
	return nil
}

func (b *fakeBackend) QueueStats() queue.Stats { return queue.Stats{} }
func (b *fakeBackend) Release(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.released = append(b.released, id)
	return nil
}

const testPassword = "correct horse battery"

// harness is a web UI behind a real TLS listener with a browser-like
// client that keeps cookies.
type harness struct {
	t       *testing.T
	dir     string
	backend *fakeBackend
	srv     *Server
	ts      *httptest.Server
	client  *http.Client
}

func newHarness(t *testing.T) *harness {
	return newHarnessIn(t, t.TempDir())
}

func newHarnessIn(t *testing.T, dir string) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, backend: newFakeBackend()}
	srv, err := New(Config{
		StateDir:   dir,
		Backend:    h.backend,
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		BcryptCost: bcrypt.MinCost,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	h.ts = httptest.NewTLSServer(srv)
	t.Cleanup(func() {
		h.ts.Close()
		srv.Close()
	})
	h.client = h.newClient()
	return h
}

// newClient returns a client with its own cookie jar that does not follow
// redirects, so tests see each response.
func (h *harness) newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := h.ts.Client()
	return &http.Client{
		Transport: c.Transport,
		Jar:       jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

type response struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (h *harness) do(c *http.Client, req *http.Request) response {
	h.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header.Get("Location"), string(body), resp.Header}
}

func (h *harness) get(c *http.Client, path string) response {
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
	return h.do(c, req)
}

func (h *harness) post(c *http.Client, path string, form url.Values) response {
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.do(c, req)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf loads path and returns the token of its forms.
func (h *harness) csrf(c *http.Client, path string) string {
	h.t.Helper()
	r := h.get(c, path)
	m := csrfInput.FindStringSubmatch(r.body)
	if m == nil {
		h.t.Fatalf("GET %s: no CSRF token in the page (status %d)", path, r.status)
	}
	return m[1]
}

// setupForm returns a complete, valid wizard submission.
func setupForm(token string) url.Values {
	return url.Values{
		"csrf":                  {token},
		"password":              {testPassword},
		"password_confirm":      {testPassword},
		"hostname":              {"mx.example.org"},
		"domains.relay":         {"example.org\nexample.net"},
		"recipients.validation": {"accept-all"},
		"recipients.unknown":    {"reject"},
		"bounce.helo":           {"bounce.example.org"},
		"bounce.source_address": {"192.0.2.25"},
	}
}

// completeSetup runs the wizard and leaves c logged in.
func (h *harness) completeSetup(c *http.Client) {
	h.t.Helper()
	r := h.post(c, "/setup", setupForm(h.csrf(c, "/setup")))
	if r.status != http.StatusSeeOther || r.location != "/?done=setup" {
		h.t.Fatalf("setup: status %d, location %q, body:\n%s", r.status, r.location, r.body)
	}
}

// login logs c in with password and returns the response.
func (h *harness) login(c *http.Client, password string) response {
	h.t.Helper()
	return h.post(c, "/login", url.Values{"csrf": {h.csrf(c, "/login")}, "password": {password}})
}
