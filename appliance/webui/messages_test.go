package webui

import (
	"net/http"
	"net/url"
	"slices"
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
