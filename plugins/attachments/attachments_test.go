package attachments_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

// mixed wraps MIME parts (header lines, a blank line, content) into a
// multipart/mixed message.
func mixed(parts ...string) string {
	var sb strings.Builder
	sb.WriteString("From: a@example.org\nSubject: files\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n")
	for _, p := range parts {
		sb.WriteString("--B\n" + p + "\n")
	}
	sb.WriteString("--B--\n")
	return sb.String()
}

// nested wraps part into depth levels of multipart/mixed.
func nested(depth int, part string) string {
	var sb strings.Builder
	sb.WriteString("Subject: deep\nContent-Type: multipart/mixed; boundary=b0\n\n")
	for i := 1; i <= depth; i++ {
		sb.WriteString(fmt.Sprintf("--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i-1, i))
	}
	sb.WriteString(fmt.Sprintf("--b%d\n%s\n", depth, part))
	return sb.String()
}

func attachment(name string) string {
	return "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"" + name + "\"\n\nAAAA"
}

// typed is an attachment of a given media type.
func typed(ctype, name string) string {
	return "Content-Type: " + ctype + "\nContent-Disposition: attachment; filename=\"" + name + "\"\n\nAAAA"
}

const text = "Content-Type: text/plain\n\nhello"

func TestAttachmentPolicy(t *testing.T) {
	ctx := context.Background()
	wasm, err := plugintest.BuildOnce(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile("attachments.toml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		eml      string
		settings map[string]string
		action   filter.Action
		reason   string
	}{
		{name: "plain text continues", eml: "Subject: hi\n\nhello\n", action: filter.Continue},
		{name: "pdf attachment continues", eml: mixed(text, attachment("report.pdf")), action: filter.Continue},
		{name: "exe attachment rejected", eml: mixed(text, attachment("setup.exe")),
			action: filter.Reject, reason: ".exe"},
		{name: "double extension rejected", eml: mixed(attachment("invoice.pdf.exe")),
			action: filter.Reject, reason: ".exe"},
		{name: "upper case and dots rejected", eml: mixed(attachment("INVOICE.EXE. . ")),
			action: filter.Reject, reason: ".exe"},
		{name: "hidden inner extension rejected", eml: mixed(attachment("report.exe.pdf")),
			action: filter.Reject, reason: "hidden file name extension .exe"},
		{name: "hidden inner extension allowed when off", eml: mixed(attachment("report.exe.pdf")),
			settings: map[string]string{"block_any_extension": "false"}, action: filter.Continue},
		{name: "right-to-left override rejected", eml: mixed(attachment("photo\u202egpj.scr")),
			action: filter.Reject, reason: ".scr"},
		{name: "name in Content-Type rejected",
			eml:    mixed("Content-Type: application/octet-stream; name=\"run.js\"\n\nx"),
			action: filter.Reject, reason: ".js"},
		{name: "RFC 2231 name rejected",
			eml:    mixed("Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.vbs\n\nx"),
			action: filter.Reject, reason: ".vbs"},
		{name: "blocked type rejected",
			eml:    mixed("Content-Type: application/x-msdownload\n\nMZ"),
			action: filter.Reject, reason: "type application/x-msdownload"},
		{name: "nested multipart rejected",
			eml: mixed(text, "Content-Type: multipart/alternative; boundary=C\n\n--C\n"+text+"\n--C\n"+
				attachment("deep.bat")+"\n--C--"), action: filter.Reject, reason: ".bat"},
		{name: "attached message rejected",
			eml: mixed("Content-Type: message/rfc822\n\nSubject: fwd\nContent-Type: multipart/mixed; boundary=D\n\n--D\n" +
				attachment("inner.hta") + "\n--D--"), action: filter.Reject, reason: ".hta"},
		{name: "deep nesting quarantined", eml: nested(20, attachment("deep.exe")), action: filter.Quarantine},
		{name: "deep nesting allowed when continue", eml: nested(20, attachment("deep.exe")),
			settings: map[string]string{"malformed_action": `"continue"`}, action: filter.Continue},
		// Parts of specific types meet the host-side screen first, which
		// must send every name that the checks would block on to them.
		{name: "typed pdf continues", eml: mixed(text, typed("application/pdf", "report.pdf")),
			action: filter.Continue},
		{name: "typed double extension rejected", eml: mixed(text, typed("application/pdf", "scan.pdf.EXE")),
			action: filter.Reject, reason: ".exe"},
		{name: "typed spaced extension rejected", eml: mixed(typed("image/png", "a. exe ."), text),
			action: filter.Reject, reason: ".exe"},
		{name: "typed name with path rejected", eml: mixed(typed("image/png", "dir/run.bat")),
			action: filter.Reject, reason: ".bat"},
		{name: "typed zero-width space rejected", eml: mixed(typed("image/png", "a.e\u200bxe")),
			action: filter.Reject, reason: ".exe"},
		{name: "typed zip name inspected", eml: mixed(typed("application/pdf", "files.zip")),
			settings: map[string]string{"unreadable_archive_action": `"reject"`},
			action:   filter.Reject, reason: "not a ZIP"},
		// A single-part text message may skip the host's MIME walk, but
		// only when its header leaves no name or type to check.
		{name: "plain text with charset continues",
			eml: "Subject: hi\nContent-Type: text/plain; charset=\"utf-8\"\n\nhello\n", action: filter.Continue},
		{name: "plain text with name rejected",
			eml:    "Subject: hi\nContent-Type: text/plain; name=\"run.exe\"\n\nhello\n",
			action: filter.Reject, reason: ".exe"},
		{name: "plain text attachment rejected",
			eml:    "Subject: hi\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; filename=\"a.bat\"\n\nhello\n",
			action: filter.Reject, reason: ".bat"},
		{name: "blocked text/plain rejected", eml: "Subject: hi\n\nhello\n",
			settings: map[string]string{"block_types": `["text/plain"]`},
			action:   filter.Reject, reason: "type text/plain"},
		{name: "quarantine action", eml: mixed(attachment("setup.exe")),
			settings: map[string]string{"action": `"quarantine"`}, action: filter.Quarantine},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			manifest := shipped
			for k, v := range tc.settings {
				manifest = plugintest.WithSetting(manifest, k, v)
			}
			res, err := plugintest.Run(ctx, wasm, manifest, []byte(tc.eml), plugintest.Options{CacheDir: plugintest.TestCacheDir})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict.Action != tc.action {
				t.Fatalf("verdict %v, want %v", res.Verdict.Action, tc.action)
			}
			if tc.action == filter.Reject {
				if res.Verdict.Code != 550 || res.Verdict.Enhanced != [3]int{5, 7, 1} {
					t.Errorf("reply %d %v, want 550 5.7.1", res.Verdict.Code, res.Verdict.Enhanced)
				}
				if !strings.Contains(res.Verdict.Text, tc.reason) {
					t.Errorf("reply %q does not give reason %q", res.Verdict.Text, tc.reason)
				}
			}
			if tc.action == filter.Quarantine && (len(res.Edits.Tags) != 1 || res.Edits.Tags[0] != "attachment-blocked") {
				t.Errorf("tags %v, want [attachment-blocked]", res.Edits.Tags)
			}
		})
	}
}
