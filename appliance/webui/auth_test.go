package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSetupGuardsEveryPage(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/", "/queue", "/settings", "/login", "/logs"} {
		r := h.get(h.client, path)
		if r.status != http.StatusSeeOther || r.location != "/setup" {
			t.Errorf("GET %s before setup: status %d, location %q; want 303 to /setup", path, r.status, r.location)
		}
	}
	r := h.post(h.client, "/settings", url.Values{"hostname": {"x.example.org"}})
	if r.status != http.StatusUnauthorized {
		t.Errorf("POST /settings before setup: status %d, want 401", r.status)
	}
}

func TestSetupSetsPasswordAndSession(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)

	if h.backend.appliedCount() != 1 {
		t.Errorf("settings applied %d times, want 1", h.backend.appliedCount())
	}
	got := h.backend.Settings()
	if got.Hostname != "mx.example.org" {
		t.Errorf("hostname = %q, want mx.example.org", got.Hostname)
	}
	if strings.Join(got.Domains.Relay, ",") != "example.org,example.net" {
		t.Errorf("relay domains = %v, want [example.org example.net]", got.Domains.Relay)
	}
	if r := h.get(h.client, "/"); r.status != http.StatusOK {
		t.Errorf("dashboard after setup: status %d, want 200", r.status)
	}
	if r := h.get(h.client, "/setup"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("GET /setup after setup: status %d, location %q; want 303 to /login", r.status, r.location)
	}
}

func TestSessionCookieIsLockedDown(t *testing.T) {
	h := newHarness(t)
	token := h.csrf(h.client, "/setup")
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/setup", strings.NewReader(setupForm(token).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			found = c
		}
	}
	if found == nil {
		t.Fatal("setup set no session cookie")
	}
	if !found.HttpOnly {
		t.Error("session cookie lacks HttpOnly")
	}
	if !found.Secure {
		t.Error("session cookie lacks Secure")
	}
	if found.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie SameSite = %v, want Strict", found.SameSite)
	}
}

func TestSetupRejectsWeakPassword(t *testing.T) {
	h := newHarness(t)
	form := setupForm(h.csrf(h.client, "/setup"))
	form.Set("password", "short")
	form.Set("password_confirm", "short")
	r := h.post(h.client, "/setup", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.status)
	}
	if !strings.Contains(r.body, `id="err-password"`) || !strings.Contains(r.body, "at least 10 characters") {
		t.Errorf("page lacks the password error next to the field:\n%s", r.body)
	}
	if h.srv.auth.hasPassword() {
		t.Error("a rejected setup stored a password")
	}
	if h.backend.appliedCount() != 0 {
		t.Error("a rejected setup applied settings")
	}
}

func TestSetupShowsFieldErrors(t *testing.T) {
	h := newHarness(t)
	form := setupForm(h.csrf(h.client, "/setup"))
	form.Set("hostname", "not a host name")
	r := h.post(h.client, "/setup", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.status)
	}
	if !strings.Contains(r.body, `id="err-hostname"`) {
		t.Errorf("page lacks the hostname error next to its field:\n%s", r.body)
	}
	if h.srv.auth.hasPassword() {
		t.Error("a rejected setup stored a password")
	}
}

func TestLogoutEndsSession(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	token := h.csrf(h.client, "/")
	if r := h.post(h.client, "/logout", url.Values{"csrf": {token}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: status %d, want 303", r.status)
	}
	if r := h.get(h.client, "/"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("GET / after logout: status %d, location %q; want 303 to /login", r.status, r.location)
	}
}

func TestLoginWithRightPassword(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.newClient())

	if r := h.login(h.client, "wrong password!"); r.status != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", r.status)
	}
	r := h.login(h.client, testPassword)
	if r.status != http.StatusSeeOther || r.location != "/" {
		t.Fatalf("right password: status %d, location %q; want 303 to /", r.status, r.location)
	}
	if r := h.get(h.client, "/queue"); r.status != http.StatusOK {
		t.Errorf("queue after login: status %d, want 200", r.status)
	}
}

func TestLoginRateLimitBlocksAddress(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.newClient())

	for i := range 5 {
		if r := h.login(h.client, "wrong password!"); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i+1, r.status)
		}
	}
	r := h.login(h.client, testPassword)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("sixth attempt: status %d, want 429", r.status)
	}
	if !strings.Contains(r.body, "Too many failed logins") || !strings.Contains(r.body, "minute") {
		t.Errorf("429 page lacks a clear message:\n%s", r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("429 lacks Retry-After")
	}
}

func TestLoginLimiterWindowPasses(t *testing.T) {
	now := testClock()
	l := newLoginLimiter(2, 15*time.Minute, now.Now)
	l.fail("192.0.2.1")
	l.fail("192.0.2.1")
	if l.blocked("192.0.2.1") == 0 {
		t.Fatal("address not blocked after 2 failures with a limit of 2")
	}
	if l.blocked("192.0.2.2") != 0 {
		t.Error("another address is blocked too")
	}
	now.advance(16 * time.Minute)
	if d := l.blocked("192.0.2.1"); d != 0 {
		t.Errorf("still blocked for %v after the window passed", d)
	}
}

func TestSessionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	h := newHarnessIn(t, dir)
	h.completeSetup(h.client)

	h2 := newHarnessIn(t, dir)
	h2.client.Jar = h.client.Jar
	// The jar keys cookies by host, and both test servers are on
	// 127.0.0.1, so the first server's session cookie goes to the second.
	if r := h2.get(h2.client, "/"); r.status != http.StatusOK {
		t.Errorf("dashboard on the restarted server: status %d, want 200", r.status)
	}
	if !h2.srv.auth.hasPassword() {
		t.Error("restarted server lost the admin password")
	}
}

func TestSessionsFileHoldsNoToken(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	u, _ := url.Parse(h.ts.URL)
	var token string
	for _, c := range h.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			token = c.Value
		}
	}
	if token == "" {
		t.Fatal("no session cookie")
	}
	data := readFile(t, h.dir+"/"+sessionsFile)
	if strings.Contains(data, token) {
		t.Error("sessions file contains the cookie value itself")
	}
	if !strings.Contains(data, tokenKey(token)) {
		t.Error("sessions file lacks the session's hash")
	}
}

func TestSetupCannotRunTwice(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)

	attacker := h.newClient()
	form := setupForm(h.csrf(attacker, "/login"))
	form.Set("password", "attacker password")
	form.Set("password_confirm", "attacker password")
	if r := h.post(attacker, "/setup", form); r.status != http.StatusUnauthorized {
		t.Errorf("second setup: status %d, want 401", r.status)
	}
	if h.srv.auth.checkPassword("attacker password") {
		t.Fatal("a second setup replaced the admin password")
	}
	if !h.srv.auth.checkPassword(testPassword) {
		t.Error("the admin password no longer works")
	}
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	other := h.newClient()
	if r := h.login(other, testPassword); r.status != http.StatusSeeOther {
		t.Fatalf("second login: status %d", r.status)
	}

	wrong := url.Values{"csrf": {h.csrf(h.client, "/settings")}, "current_password": {"not it at all"},
		"new_password": {"a new password 1"}, "new_password_confirm": {"a new password 1"}}
	if r := h.post(h.client, "/password", wrong); r.status != http.StatusUnauthorized {
		t.Errorf("wrong current password: status %d, want 401", r.status)
	}

	change := url.Values{"csrf": {h.csrf(h.client, "/settings")}, "current_password": {testPassword},
		"new_password": {"a new password 1"}, "new_password_confirm": {"a new password 1"}}
	if r := h.post(h.client, "/password", change); r.status != http.StatusSeeOther {
		t.Fatalf("password change: status %d, want 303:\n%s", r.status, r.body)
	}
	if r := h.get(h.client, "/settings"); r.status != http.StatusOK {
		t.Errorf("the browser that changed the password lost its session: status %d", r.status)
	}
	if r := h.get(other, "/"); r.status != http.StatusSeeOther {
		t.Errorf("another browser kept its session after the change: status %d", r.status)
	}
	if !h.srv.auth.checkPassword("a new password 1") {
		t.Error("the new password does not work")
	}
	if h.srv.auth.checkPassword(testPassword) {
		t.Error("the old password still works")
	}
}

func TestLoginLimiterDropsStaleAddresses(t *testing.T) {
	now := testClock()
	l := newLoginLimiter(5, 15*time.Minute, now.Now)
	for i := range maxTrackedAddresses {
		l.fail(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&0xff, i&0xff))
	}
	now.advance(16 * time.Minute)
	l.fail("192.0.2.1")
	if n := len(l.failures); n != 1 {
		t.Errorf("limiter tracks %d addresses after the window passed, want 1", n)
	}
}

func TestPasswordRulesRejectRepeats(t *testing.T) {
	for _, pw := range []string{"          ", "aaaaaaaaaa", "abababababab"} {
		if msg := checkPasswordRules(pw, pw); msg == "" {
			t.Errorf("password %q accepted", pw)
		}
	}
	if msg := checkPasswordRules("correct horse battery", "correct horse battery"); msg != "" {
		t.Errorf("a good password rejected: %s", msg)
	}
}

func TestPlantedPreSessionCookieRejected(t *testing.T) {
	h := newHarness(t)
	req, err := http.NewRequest("POST", h.ts.URL+"/setup", strings.NewReader("csrf=x&password=correct+horse+battery"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// A one-character cookie with a matching form field, as another
	// service on the admin host could plant.
	req.AddCookie(&http.Cookie{Name: preSessionCookie, Value: "x"})
	r := h.do(h.client, req)
	if r.status != http.StatusForbidden {
		t.Errorf("status %d with a planted token, want 403", r.status)
	}
}
