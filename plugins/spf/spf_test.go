package spf_test

import (
	"context"
	"net/netip"
	"os"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

// dns is the test zone: example.org authorises its /24, an include with
// an a mechanism, and an mx; the other domains cover the remaining
// results.
func dns() *plugintest.Resolver {
	return &plugintest.Resolver{
		TXT: map[string][]string{
			"example.org":      {"v=spf1 ip4:192.0.2.0/24 include:_spf.example.net mx ip6:2001:db8::/32 -all", "other text"},
			"_spf.example.net": {"v=spf1 a:mail.example.net ~all"},
			"soft.example":     {"v=spf1 ~all"},
			"two.example":      {"v=spf1 -all", "v=spf1 +all"},
			"redirect.example": {"v=spf1 redirect=example.org"},
			"macro.example":    {"v=spf1 exists:%{i}.allow.example -all"},
			"cidr.example":     {"v=spf1 a:hosts.example/24 -all"},
			"loop.example":     {"v=spf1 include:loop.example -all"},
			"helo.example":     {"v=spf1 ip4:198.51.100.0/24 -all"},
			"neutral.example":  {"v=spf1 ?all"},
			"badmech.example":  {"v=spf1 frobnicate -all"},
			"badmacro.example": {"v=spf1 exists:%{x}.x.example -all"},
		},
		A: map[string][]string{
			"mail.example.net":            {"203.0.113.9"},
			"mx1.example.org":             {"203.0.113.20"},
			"198.51.100.77.allow.example": {"127.0.0.2"},
			"hosts.example":               {"203.0.113.200"},
		},
		MX:       map[string][]string{"example.org": {"10 mx1.example.org."}},
		TempFail: map[string]bool{"broken.example": true},
	}
}

func TestSPFResults(t *testing.T) {
	ctx := context.Background()
	wasm, err := plugintest.BuildOnce(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile("spf.toml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		client  string
		from    string
		helo    string
		gateway string // the gateway's own SPF result
		result  string
		action  filter.Action
		code    [3]int
	}{
		{name: "ip4 range passes", client: "192.0.2.5", from: "a@example.org", result: "pass", action: filter.Continue},
		{name: "include a passes", client: "203.0.113.9", from: "a@example.org", result: "pass", action: filter.Continue},
		{name: "mx passes", client: "203.0.113.20", from: "a@example.org", result: "pass", action: filter.Continue},
		{name: "ip6 range passes", client: "2001:db8::5", from: "a@example.org", result: "pass", action: filter.Continue},
		{name: "other address fails", client: "198.51.100.7", from: "a@example.org",
			result: "fail", action: filter.Reject, code: [3]int{5, 7, 23}},
		{name: "softfail tags", client: "198.51.100.7", from: "a@soft.example", result: "softfail", action: filter.Continue},
		{name: "no record is none", client: "198.51.100.7", from: "a@norecord.example", result: "none", action: filter.Continue},
		{name: "two records permerror", client: "198.51.100.7", from: "a@two.example", result: "permerror", action: filter.Continue},
		{name: "DNS failure tempfails", client: "198.51.100.7", from: "a@broken.example",
			result: "temperror", action: filter.Tempfail, code: [3]int{4, 7, 24}},
		{name: "redirect follows", client: "192.0.2.5", from: "a@redirect.example", result: "pass", action: filter.Continue},
		{name: "exists macro passes", client: "198.51.100.77", from: "a@macro.example", result: "pass", action: filter.Continue},
		{name: "exists macro fails", client: "198.51.100.78", from: "a@macro.example",
			result: "fail", action: filter.Reject, code: [3]int{5, 7, 23}},
		{name: "a with CIDR passes", client: "203.0.113.1", from: "a@cidr.example", result: "pass", action: filter.Continue},
		{name: "include loop permerror", client: "192.0.2.5", from: "a@loop.example", result: "permerror", action: filter.Continue},
		{name: "null sender checks HELO", client: "198.51.100.7", from: "", helo: "helo.example", result: "pass", action: filter.Continue},
		{name: "neutral continues", client: "198.51.100.7", from: "a@neutral.example", result: "neutral", action: filter.Continue},
		{name: "unknown mechanism permerror", client: "198.51.100.7", from: "a@badmech.example", result: "permerror", action: filter.Continue},
		{name: "invalid macro permerror", client: "198.51.100.7", from: "a@badmacro.example", result: "permerror", action: filter.Continue},
		{name: "gateway result used", client: "198.51.100.7", from: "a@example.org", gateway: "pass", result: "pass", action: filter.Continue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dns()
			res, err := plugintest.Run(ctx, wasm, manifest, []byte("Subject: hi\n\nbody\n"), plugintest.Options{
				Client: netip.MustParseAddr(tc.client), From: tc.from, HELO: tc.helo, SPF: tc.gateway,
				Resolver: r, CacheDir: plugintest.TestCacheDir,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict.Action != tc.action {
				t.Fatalf("verdict %v at %q (%s), want %v", res.Verdict.Action, res.StoppedAt, res.Verdict.Text, tc.action)
			}
			if tc.action != filter.Continue {
				if res.StoppedAt != "mail" || res.Verdict.Enhanced != tc.code {
					t.Errorf("stopped at %q with %v, want mail with %v", res.StoppedAt, res.Verdict.Enhanced, tc.code)
				}
				return
			}
			var header string
			for _, h := range res.Edits.AddHeaders {
				if h.Name == "Received-SPF" {
					header = h.Value
				}
			}
			helo := tc.helo
			if helo == "" {
				helo = "client.example" // plugintest's default
			}
			sender := tc.from
			if sender == "" {
				sender = "postmaster@" + helo
			}
			want := tc.result + " client-ip=" + tc.client + `; envelope-from="` + sender + `"; helo=` + helo + ";"
			if header != want {
				t.Errorf("Received-SPF %q, want %q", header, want)
			}
			if tc.result == "softfail" && (len(res.Edits.Tags) != 1 || res.Edits.Tags[0] != "spf-softfail") {
				t.Errorf("tags %v, want [spf-softfail]", res.Edits.Tags)
			}
			if tc.gateway != "" && len(r.Queries()) != 0 {
				t.Errorf("DNS queries %v, want none when the gateway checked", r.Queries())
			}
		})
	}
}
