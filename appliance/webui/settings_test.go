package webui

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSettingsErrorShownNextToField(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	before := h.backend.appliedCount()

	r := h.post(h.client, "/settings", url.Values{
		"csrf":                    {h.csrf(h.client, "/settings")},
		"inbound.max_connections": {"0"},
		"queue.min_backoff":       {"soon"},
	})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.status)
	}
	if !strings.Contains(r.body, `id="err-queue.min_backoff"`) {
		t.Errorf("page lacks the min_backoff error next to its field")
	}
	if !strings.Contains(r.body, "is not a duration") {
		t.Errorf("page lacks the duration message")
	}
	if h.backend.appliedCount() != before {
		t.Error("invalid settings were applied")
	}

	r = h.post(h.client, "/settings", url.Values{
		"csrf":                    {h.csrf(h.client, "/settings")},
		"inbound.max_connections": {"0"},
	})
	if !strings.Contains(r.body, `id="err-inbound.max_connections"`) {
		t.Errorf("page lacks the max_connections error next to its field:\n%s", r.body)
	}
}

func TestSettingsSaveApplies(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	r := h.post(h.client, "/settings", url.Values{
		"csrf":                    {h.csrf(h.client, "/settings")},
		"inbound.max_connections": {"321"},
		"inbound.spf":             {"false"},
		"bounce.require_spf_pass": {"false"},
	})
	if r.status != http.StatusSeeOther {
		t.Fatalf("status %d, want 303:\n%s", r.status, r.body)
	}
	s := h.backend.Settings()
	if s.Inbound.MaxConnections != 321 {
		t.Errorf("max_connections = %d, want 321", s.Inbound.MaxConnections)
	}
	if s.Inbound.SPF {
		t.Error("unchecked spf box left spf on")
	}
	if s.Hostname != "mx.example.org" {
		t.Errorf("a field the form left out changed: hostname = %q", s.Hostname)
	}
}

func TestSettingsFormListsEveryKey(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	r := h.get(h.client, "/settings")
	for _, key := range []string{"hostname", "inbound.listen", "inbound.data_timeout", "domains.relay",
		"recipients.callout_negative_ttl", "internal.tls_verify", "bounce.allow_internal_mx",
		"queue.workers", "admin.listen", "log.level", "interface[0].name", "interface[0].bounce_table"} {
		if !strings.Contains(r.body, `name="`+key+`"`) {
			t.Errorf("settings page lacks the field %s", key)
		}
	}
}

func TestSettingsImportValidated(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	before := h.backend.appliedCount()

	upload := func(content string) response {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("csrf", h.csrf(h.client, "/settings"))
		fw, _ := mw.CreateFormFile("file", "lambgate.toml")
		fw.Write([]byte(content))
		mw.Close()
		req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/settings/import", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return h.do(h.client, req)
	}

	r := upload("hostname = \"mx.example.org\"\n[queue]\nworkers = 0\n")
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid import: status %d, want 422", r.status)
	}
	if !strings.Contains(r.body, "queue.workers") {
		t.Errorf("page does not name the bad key:\n%s", r.body)
	}
	if r := upload("hostnme = \"typo.example.org\"\n"); r.status != http.StatusUnprocessableEntity {
		t.Errorf("import with an unknown key: status %d, want 422", r.status)
	}
	if h.backend.appliedCount() != before {
		t.Fatal("an invalid import was applied")
	}

	export := h.get(h.client, "/settings/export")
	if export.status != http.StatusOK || !strings.Contains(export.body, `hostname = "mx.example.org"`) {
		t.Fatalf("export: status %d:\n%s", export.status, export.body)
	}
	if strings.Contains(export.body, "password") {
		t.Error("export contains a password field")
	}
	modified := strings.Replace(export.body, `hostname = "mx.example.org"`, `hostname = "mx2.example.org"`, 1)
	if r := upload(modified); r.status != http.StatusSeeOther {
		t.Fatalf("valid import: status %d:\n%s", r.status, r.body)
	}
	if got := h.backend.Settings().Hostname; got != "mx2.example.org" {
		t.Errorf("hostname after import = %q, want mx2.example.org", got)
	}
}

func TestSettingsHelpFromDefaultFile(t *testing.T) {
	for key, want := range map[string]string{
		"inbound.max_message_bytes": "SIZE limit advertised in EHLO, in bytes.",
		"recipients.unknown":        "550 5.1.1 at RCPT time",
		"interface[2].bounce_table": "policy routing",
	} {
		if got := helpFor(key); !strings.Contains(got, want) {
			t.Errorf("help of %s = %q, want it to contain %q", key, got, want)
		}
	}
	if got := helpFor("inbound.tls_key"); got != "" {
		t.Errorf("help of inbound.tls_key = %q: the comment above tls_cert belongs to tls_cert only", got)
	}
}

func TestSettingsAdminMoveRedirects(t *testing.T) {
	h := newHarness(t)
	h.completeSetup(h.client)
	r := h.post(h.client, "/settings", url.Values{
		"csrf":         {h.csrf(h.client, "/settings")},
		"admin.listen": {"127.0.0.1:18443"},
	})
	if r.status != http.StatusOK {
		t.Fatalf("admin move: status %d, want 200", r.status)
	}
	if !strings.Contains(r.body, `href="https://127.0.0.1:18443/settings"`) {
		t.Errorf("page lacks the link to the new address:\n%s", r.body)
	}
}
