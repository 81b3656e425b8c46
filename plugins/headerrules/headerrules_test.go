package headerrules_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

func TestHeaderRuleVerdicts(t *testing.T) {
	ctx := context.Background()
	wasm, err := plugintest.BuildOnce(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile("headerrules.toml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		headers string
		rules   string // replaces the shipped rules when set
		action  filter.Action
		tags    []string
	}{
		{name: "clean message continues", headers: "Subject: Meeting notes\n", action: filter.Continue},
		{name: "subject rule quarantines", headers: "Subject: Cheap VIAGRA now\n",
			action: filter.Quarantine, tags: []string{"headerrules:1"}},
		{name: "encoded subject decoded first", headers: "Subject: =?UTF-8?B?Q2hlYXAgdmlhZ3Jh?=\n",
			action: filter.Quarantine, tags: []string{"headerrules:1"}},
		{name: "tag rule goes on", headers: "Subject: hi\nX-Mailer: PHPMailer 6.0\n",
			action: filter.Continue, tags: []string{"bulk-mailer"}},
		{name: "charset rule rejects",
			headers: "Subject: hi\nContent-Type: text/plain; charset=\"ks_c_5601-1987\"\n", action: filter.Reject},
		{name: "charset rule sees folded value",
			headers: "Subject: hi\nContent-Type: text/plain;\n charset=gb2312-80\n", action: filter.Reject},
		{name: "header block rule rejects", headers: "Subject: hi\nX-Spam-Flag: YES\n",
			rules: `["* reject (?im)^X-Spam-Flag: *yes"]`, action: filter.Reject},
		{name: "header block rule continues", headers: "Subject: X-Spam-Flag: YES\n",
			rules: `["* reject (?im)^X-Spam-Flag: *yes"]`, action: filter.Continue},
		{name: "invalid rule skipped", headers: "Subject: spam offer\n",
			rules: `["Subject", "Subject reject (", "Subject discard (?i)spam"]`, action: filter.Discard},
		{name: "first match wins", headers: "Subject: spam offer\n",
			rules: `["Subject accept spam", "Subject reject spam"]`, action: filter.Accept},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			manifest := shipped
			if tc.rules != "" {
				manifest = plugintest.WithSetting(shipped, "rules", tc.rules)
			}
			eml := []byte("From: a@example.org\n" + tc.headers + "\nbody\n")
			res, err := plugintest.Run(ctx, wasm, manifest, eml, plugintest.Options{CacheDir: plugintest.TestCacheDir})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict.Action != tc.action {
				t.Errorf("verdict %v, want %v", res.Verdict.Action, tc.action)
			}
			if tc.action == filter.Reject && res.Verdict.Text != "Message rejected by content policy" {
				t.Errorf("reply text %q, want the reject_text setting", res.Verdict.Text)
			}
			if !slices.Equal(res.Edits.Tags, tc.tags) {
				t.Errorf("tags %v, want %v", res.Edits.Tags, tc.tags)
			}
		})
	}
}
