package webui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestRetryActionRetriesOneMessage(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	token := h.csrf(h.client, "/queue")
	r := h.post(h.client, "/queue/08E6mTuvvl6LDIut/retry", url.Values{"csrf": {token}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST retry: status %d, want 303", r.status)
	}
	h.backend.mu.Lock()
	defer h.backend.mu.Unlock()
	if !slices.Equal(h.backend.retried, []string{"08E6mTuvvl6LDIut"}) {
		t.Errorf("backend retried %v, want only the message of the request", h.backend.retried)
	}
}

func TestActionsDuringAttemptConflict(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	h.backend.setAttemptRunning()
	token := h.csrf(h.client, "/queue")

	for _, action := range []string{"delete", "bounce"} {
		r := h.post(h.client, "/queue/08E6mTuvvl6LDIut/"+action, url.Values{"csrf": {token}})
		if r.status != http.StatusConflict {
			t.Errorf("POST %s: status %d, want 409", action, r.status)
		}
		if !strings.Contains(r.body, "try again when it ends") {
			t.Errorf("POST %s: page does not say to try again later:\n%s", action, r.body)
		}
	}
}

func TestRetryDuringAttemptSaysRunning(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	h.backend.setAttemptRunning()
	token := h.csrf(h.client, "/queue")

	r := h.post(h.client, "/queue/08E6mTuvvl6LDIut/retry", url.Values{"csrf": {token}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST retry: status %d, want 303", r.status)
	}
	if r.location != "/queue?done=attempt-running" {
		t.Errorf("POST retry: redirect to %q, want the notice that an attempt is running", r.location)
	}
	page := h.get(h.client, r.location)
	if !strings.Contains(page.body, "running already") {
		t.Errorf("queue page lacks the running-attempt notice:\n%s", page.body)
	}
}
