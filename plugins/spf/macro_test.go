package spf_test

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

// The sender and client addresses of RFC 7208 section 7.4's examples.
const (
	rfcSender = "strong-bad@email.example.com"
	rfcDomain = "email.example.com"
	rfcIPv4   = "192.0.2.3"
	rfcIPv6   = "2001:db8::cb01"
)

// runMacroRecord checks rfcSender from client against a zone where
// rfcDomain publishes record and extra gives further TXT records. It
// returns the result with the resolver for its queries.
func runMacroRecord(t *testing.T, client, record string,
	extra map[string][]string) (*plugintest.Result, *plugintest.Resolver) {
	t.Helper()
	r := &plugintest.Resolver{TXT: map[string][]string{rfcDomain: {record}}}
	for name, txt := range extra {
		r.TXT[name] = txt
	}
	return runMacroZone(t, client, r), r
}

// runMacroZone checks rfcSender from client against the zone r, with
// receiver set and the clock at a fixed time.
func runMacroZone(t *testing.T, client string, r *plugintest.Resolver) *plugintest.Result {
	t.Helper()
	ctx := context.Background()
	wasm, err := plugintest.BuildOnce(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile("spf.toml")
	if err != nil {
		t.Fatal(err)
	}
	manifest = plugintest.WithSetting(manifest, "receiver", `"gw.example.net"`)
	res, err := plugintest.Run(ctx, wasm, manifest, []byte("Subject: hi\n\nbody\n"), plugintest.Options{
		Client: netip.MustParseAddr(client), From: rfcSender, HELO: "mx.example.org", Resolver: r,
		CacheDir: plugintest.TestCacheDir,
		Now:      func() time.Time { return time.Unix(1700000000, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestMacroExpansionRFCExamples runs every example of RFC 7208 section
// 7.4 as an exists: mechanism and checks the name the plugin looks up.
func TestMacroExpansionRFCExamples(t *testing.T) {
	cases := []struct {
		client, macro, want string
	}{
		{rfcIPv4, "%{s}", "strong-bad@email.example.com"},
		{rfcIPv4, "%{o}", "email.example.com"},
		{rfcIPv4, "%{d}", "email.example.com"},
		{rfcIPv4, "%{d4}", "email.example.com"},
		{rfcIPv4, "%{d3}", "email.example.com"},
		{rfcIPv4, "%{d2}", "example.com"},
		{rfcIPv4, "%{d1}", "com"},
		{rfcIPv4, "%{dr}", "com.example.email"},
		{rfcIPv4, "%{d2r}", "example.email"},
		{rfcIPv4, "%{l}", "strong-bad"},
		{rfcIPv4, "%{l-}", "strong.bad"},
		{rfcIPv4, "%{lr}", "strong-bad"},
		{rfcIPv4, "%{lr-}", "bad.strong"},
		{rfcIPv4, "%{l1r-}", "strong"},
		{rfcIPv4, "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
		{rfcIPv4, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
		{rfcIPv4, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{rfcIPv4, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{rfcIPv4, "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
		{rfcIPv6, "%{ir}.%{v}._spf.%{d2}",
			"1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.client+" "+tc.macro, func(t *testing.T) {
			_, r := runMacroRecord(t, tc.client, "v=spf1 exists:"+tc.macro+" -all", nil)
			if q := r.Queries(); !slices.Contains(q, "A "+tc.want) {
				t.Errorf("queries %v, want A %s", q, tc.want)
			}
		})
	}
}

// TestMacroExpansionTransformers covers what the RFC's examples do not:
// several delimiters at once, other letters, upper-case letters and
// counts larger than the number of parts.
func TestMacroExpansionTransformers(t *testing.T) {
	cases := []struct {
		name, macro, want string
	}{
		{"several delimiters", "%{l-.}.%{d}", "strong.bad.email.example.com"},
		{"every delimiter", "%{d.-+,/_=}", "email.example.com"},
		{"count above parts", "%{d127}", "email.example.com"},
		{"count with many digits", "%{d0002}", "example.com"},
		{"upper-case r transformer", "%{dR}", "com.example.email"},
		{"helo", "%{h}.helo.test", "mx.example.org.helo.test"},
		{"ptr name", "%{p}.ptr.test", "unknown.ptr.test"},
		{"upper-case escapes", "%{S}.x.test", "strong-bad%40email.example.com.x.test"},
		{"upper-case keeps unreserved", "%{L}.x.test", "strong-bad.x.test"},
		{"trailing dot", "%{d}.x.test.", "email.example.com.x.test"},
		{"literal only", "static.example.net", "static.example.net"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, r := runMacroRecord(t, rfcIPv4, "v=spf1 exists:"+tc.macro+" -all", nil)
			if q := r.Queries(); !slices.Contains(q, "A "+tc.want) {
				t.Errorf("queries %v, want A %s", q, tc.want)
			}
		})
	}
}

func TestMacroExpansionMatches(t *testing.T) {
	res, _ := runMacroRecord(t, rfcIPv4, "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all", nil)
	if res.Verdict.Action != filter.Reject {
		t.Fatalf("verdict %v without the A record, want reject", res.Verdict.Action)
	}

	r := &plugintest.Resolver{
		TXT: map[string][]string{rfcDomain: {"v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all"}},
		A:   map[string][]string{"3.2.0.192.in-addr._spf.example.com": {"127.0.0.2"}},
	}
	res = runMacroZone(t, rfcIPv4, r)
	if res.Verdict.Action != filter.Continue {
		t.Fatalf("verdict %v with the A record, want continue", res.Verdict.Action)
	}
	if h := receivedSPF(res); !strings.HasPrefix(h, "pass ") {
		t.Errorf("Received-SPF %q, want pass", h)
	}
}

// TestMacroExpansionLongName checks the left-hand truncation of names
// longer than 253 characters (RFC 7208 section 7.3).
func TestMacroExpansionLongName(t *testing.T) {
	macro := "%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.x.test"
	full := strings.Repeat(rfcDomain+".", 15) + "x.test"
	want := full
	for len(want) > 253 {
		want = want[strings.IndexByte(want, '.')+1:]
	}
	_, r := runMacroRecord(t, rfcIPv4, "v=spf1 exists:"+macro+" -all", nil)
	if q := r.Queries(); !slices.Contains(q, "A "+want) {
		t.Errorf("queries %v, want A %s (%d characters)", q, want, len(want))
	}
}

func TestMacroSyntaxErrorsPermerror(t *testing.T) {
	cases := map[string]string{
		"unknown letter":          "exists:%{x}.x.test",
		"parentheses":             "exists:%(ir).sbl.example.org",
		"zero count":              "exists:%{d0}.x.test",
		"unclosed":                "exists:%{ir.x.test",
		"empty braces":            "exists:%{}.x.test",
		"bad delimiter":           "exists:%{d:}.x.test",
		"percent at end":          "exists:x.test%",
		"percent and letter":      "exists:%d.x.test",
		"c outside explanation":   "exists:%{c}.x.test",
		"r outside explanation":   "exists:%{r}.x.test",
		"t outside explanation":   "exists:%{t}.x.test",
		"numeric top label":       "a:192.0.2.1",
		"no top label":            "a:localhost",
		"redirect bad macro":      "redirect=%{z}.x.test",
		"include bad macro":       "include:%{d2x}.x.test",
		"two exp modifiers":       "exp=a.x.test exp=b.x.test",
		"two redirect modifiers":  "redirect=a.x.test redirect=b.x.test",
		"non-ASCII literal":       "exists:caf\u00e9.x.test",
		"macro then bad end":      "exists:%{d}.123",
		"hyphen-ended top label":  "exists:%{d}.x-",
		"bad macro in mx":         "mx:%{q}.x.test",
		"bad macro in a with len": "a:%{q}.x.test/24",
	}
	for name, term := range cases {
		t.Run(name, func(t *testing.T) {
			record := "v=spf1 " + term
			if !strings.HasPrefix(term, "redirect") {
				// A matching -all would end the check before a redirect.
				record += " -all"
			}
			res, _ := runMacroRecord(t, rfcIPv4, record, nil)
			if res.Verdict.Action != filter.Continue {
				t.Fatalf("verdict %v (%s), want continue for permerror", res.Verdict.Action, res.Verdict.Text)
			}
			if h := receivedSPF(res); !strings.HasPrefix(h, "permerror ") {
				t.Errorf("Received-SPF %q, want permerror", h)
			}
		})
	}
}

// TestExplanation checks that a fail quotes the exp= text with its
// macros expanded, including c, r and t, which only explanations allow.
func TestExplanation(t *testing.T) {
	cases := []struct {
		name, client, record, txt, want string
	}{
		{"RFC 7208 section 6.2 example", rfcIPv4, "v=spf1 -all exp=explain._spf.%{d}",
			"See http://%{d}/why.html?s=%{S}&i=%{I}",
			"See http://email.example.com/why.html?s=strong-bad%40email.example.com&i=192.0.2.3"},
		{"client receiver and time", rfcIPv6, "v=spf1 -all exp=explain._spf.%{d}",
			"%{c} was refused by %{r} at %{t}",
			"2001:db8::cb01 was refused by gw.example.net at 1700000000"},
		{"escapes", rfcIPv4, "v=spf1 -all exp=explain._spf.%{d}", "a%%b%_c%-d", "a%b c%20d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := runMacroRecord(t, tc.client, tc.record,
				map[string][]string{"explain._spf." + rfcDomain: {tc.txt}})
			if res.Verdict.Action != filter.Reject {
				t.Fatalf("verdict %v, want reject", res.Verdict.Action)
			}
			want := rfcDomain + " explains: " + tc.want
			if !strings.HasSuffix(res.Verdict.Text, want) {
				t.Errorf("reply %q, want it to end with %q", res.Verdict.Text, want)
			}
		})
	}
}

// TestExplanationDropped checks the cases where RFC 7208 section 6.2
// requires going on as if there were no exp=: the reply still rejects,
// without an explanation.
func TestExplanationDropped(t *testing.T) {
	cases := []struct {
		name, record string
		txt          map[string][]string
	}{
		{"no TXT record", "v=spf1 -all exp=explain._spf.%{d}", nil},
		{"two TXT records", "v=spf1 -all exp=explain._spf.%{d}",
			map[string][]string{"explain._spf." + rfcDomain: {"one", "two"}}},
		{"syntax error in text", "v=spf1 -all exp=explain._spf.%{d}",
			map[string][]string{"explain._spf." + rfcDomain: {"bad %{x} macro"}}},
		{"syntax error in target", "v=spf1 -all exp=%{x}.x.test", nil},
		{"fail inside include", "v=spf1 include:inc.x.test -all exp=explain._spf.%{d}",
			map[string][]string{"inc.x.test": {"v=spf1 -all exp=inc-explain.x.test"}, "inc-explain.x.test": {"included"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := runMacroRecord(t, rfcIPv4, tc.record, tc.txt)
			if res.Verdict.Action != filter.Reject {
				t.Fatalf("verdict %v, want reject", res.Verdict.Action)
			}
			if strings.Contains(res.Verdict.Text, "explains") {
				t.Errorf("reply %q quotes an explanation, want none", res.Verdict.Text)
			}
		})
	}
}

func receivedSPF(res *plugintest.Result) string {
	for _, h := range res.Edits.AddHeaders {
		if h.Name == "Received-SPF" {
			return h.Value
		}
	}
	return ""
}
