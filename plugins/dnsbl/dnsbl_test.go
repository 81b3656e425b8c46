package dnsbl_test

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

const message = "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"

func run(t *testing.T, client string, r *plugintest.Resolver) *plugintest.Result {
	t.Helper()
	ctx := context.Background()
	wasm, err := plugintest.BuildOnce(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile("dnsbl.toml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := plugintest.Run(ctx, wasm, manifest, []byte(message), plugintest.Options{
		Client: netip.MustParseAddr(client), From: "a@example.org", Resolver: r, CacheDir: plugintest.TestCacheDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDNSBLVerdicts(t *testing.T) {
	cases := []struct {
		name       string
		client     string
		a          map[string][]string
		tempFail   map[string]bool
		action     filter.Action
		wantHeader string
	}{
		{name: "unlisted client continues", client: "192.0.2.10", action: filter.Continue},
		{name: "heavy list rejects", client: "192.0.2.10",
			a:      map[string][]string{"10.2.0.192.zen.spamhaus.org": {"127.0.0.2"}},
			action: filter.Reject},
		{name: "light list only tags", client: "192.0.2.10",
			a:      map[string][]string{"10.2.0.192.bl.spamcop.net": {"127.0.0.2"}},
			action: filter.Continue, wantHeader: "score=2 listed=bl.spamcop.net"},
		{name: "two light lists reject", client: "192.0.2.10",
			a: map[string][]string{
				"10.2.0.192.bl.spamcop.net":         {"127.0.0.2"},
				"10.2.0.192.b.barracudacentral.org": {"127.0.0.2"},
			}, action: filter.Reject},
		{name: "list error code ignored", client: "192.0.2.10",
			a:      map[string][]string{"10.2.0.192.zen.spamhaus.org": {"127.255.255.254"}},
			action: filter.Continue},
		{name: "answer outside loopback ignored", client: "192.0.2.10",
			a:      map[string][]string{"10.2.0.192.zen.spamhaus.org": {"192.0.2.99"}},
			action: filter.Continue},
		{name: "resolver failure continues", client: "192.0.2.10",
			tempFail: map[string]bool{"10.2.0.192.zen.spamhaus.org": true},
			action:   filter.Continue},
		{name: "IPv6 client uses nibbles", client: "2001:db8::1",
			a: map[string][]string{
				"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org": {"127.0.0.4"},
			}, action: filter.Reject},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, tc.client, &plugintest.Resolver{A: tc.a, TempFail: tc.tempFail})
			if res.Verdict.Action != tc.action {
				t.Fatalf("verdict %v at %q, want %v", res.Verdict.Action, res.StoppedAt, tc.action)
			}
			if tc.action == filter.Reject {
				if res.StoppedAt != "connect" || res.Verdict.Code != 554 {
					t.Errorf("rejected at %q with %d, want connect with 554", res.StoppedAt, res.Verdict.Code)
				}
				if !strings.Contains(res.Verdict.Text, tc.client) {
					t.Errorf("reply %q does not name the client", res.Verdict.Text)
				}
			}
			var got string
			for _, h := range res.Edits.AddHeaders {
				if h.Name == "X-Lambgate-DNSBL" {
					got = h.Value
				}
			}
			if got != tc.wantHeader {
				t.Errorf("X-Lambgate-DNSBL %q, want %q", got, tc.wantHeader)
			}
			if (tc.wantHeader != "") != (len(res.Edits.Tags) == 1 && res.Edits.Tags[0] == "dnsbl") {
				t.Errorf("tags %v, want dnsbl exactly when a header is added", res.Edits.Tags)
			}
		})
	}
}

func TestDNSBLCachesScore(t *testing.T) {
	r := &plugintest.Resolver{A: map[string][]string{"10.2.0.192.bl.spamcop.net": {"127.0.0.2"}}}
	run(t, "192.0.2.10", r)
	// Three lists at connect; the headers phase reads the cached score.
	if n := len(r.Queries()); n != 3 {
		t.Errorf("%d DNS queries %v, want 3", n, r.Queries())
	}
}
