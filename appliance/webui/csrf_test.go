package webui

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPostWithoutCSRFRejected(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	cases := map[string]url.Values{
		"missing": {},
		"wrong":   {"csrf": {strings.Repeat("0", 64)}},
	}
	for name, form := range cases {
		r := h.post(h.client, "/queue/retry", form)
		if r.status != http.StatusForbidden {
			t.Errorf("%s token: status %d, want 403", name, r.status)
		}
	}
	r := h.post(h.client, "/queue/retry", url.Values{"csrf": {h.csrf(h.client, "/queue")}})
	if r.status != http.StatusSeeOther {
		t.Errorf("right token: status %d, want 303", r.status)
	}
}

func TestCrossOriginPostRejected(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	form := url.Values{"csrf": {h.csrf(h.client, "/queue")}}
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/queue/retry", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://attacker.example")
	if r := h.do(h.client, req); r.status != http.StatusForbidden {
		t.Errorf("foreign Origin: status %d, want 403", r.status)
	}
}

func TestLoginFormNeedsCSRF(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.newClient())
	r := h.post(h.client, "/login", url.Values{"password": {testPassword}})
	if r.status != http.StatusForbidden {
		t.Errorf("login without token: status %d, want 403", r.status)
	}
}

func TestSetupFormNeedsCSRF(t *testing.T) {
	h := newHarness(t)
	form := setupForm("")
	form.Del("csrf")
	if r := h.post(h.client, "/setup", form); r.status != http.StatusForbidden {
		t.Errorf("setup without token: status %d, want 403", r.status)
	}
	if h.srv.auth.hasPassword() {
		t.Error("setup without token stored a password")
	}
}

func TestSessionTokenFromOtherSessionRejected(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	other := h.newClient()
	if r := h.login(other, testPassword); r.status != http.StatusSeeOther {
		t.Fatalf("second login: status %d", r.status)
	}
	foreign := h.csrf(other, "/queue")
	if r := h.post(h.client, "/queue/retry", url.Values{"csrf": {foreign}}); r.status != http.StatusForbidden {
		t.Errorf("another session's token: status %d, want 403", r.status)
	}
}

func TestUnauthenticatedRequestsRejected(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.newClient())
	for _, path := range []string{"/", "/queue", "/quarantine", "/logs", "/settings", "/settings/export", "/plugins", "/queue/X"} {
		r := h.get(h.client, path)
		if r.status != http.StatusSeeOther || r.location != "/login" {
			t.Errorf("GET %s: status %d, location %q; want 303 to /login", path, r.status, r.location)
		}
	}
	token := h.csrf(h.client, "/login")
	for _, path := range []string{"/settings", "/queue/retry", "/quarantine/X/release", "/settings/import"} {
		r := h.post(h.client, path, url.Values{"csrf": {token}})
		if r.status != http.StatusUnauthorized {
			t.Errorf("POST %s: status %d, want 401", path, r.status)
		}
	}
	if len(h.backend.released) != 0 {
		t.Error("an unauthenticated release reached the backend")
	}
}

func TestSecurityHeadersOnPages(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/setup", "/static/style.css"} {
		r := h.get(h.client, path)
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: Content-Security-Policy = %q", path, csp)
		}
		if got := r.header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: X-Frame-Options = %q, want DENY", path, got)
		}
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", path, got)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// manualClock is a clock that tests move by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func testClock() *manualClock {
	return &manualClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
