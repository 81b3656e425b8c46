package plugintest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
)

// TestTemplatesRun builds both SDKs' template plugins and runs them on a
// matching and a clean message, so that the templates never rot.
func TestTemplatesRun(t *testing.T) {
	ctx := context.Background()
	for _, dir := range []string{"../go/template", "../assemblyscript/template"} {
		t.Run(filepath.Base(filepath.Dir(dir)), func(t *testing.T) {
			wasm, err := BuildOnce(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			manifest, err := os.ReadFile(filepath.Join(dir, "template.toml"))
			if err != nil {
				t.Fatal(err)
			}
			opt := Options{CacheDir: TestCacheDir, From: "boss@example.com"}

			res, err := Run(ctx, wasm, manifest, []byte("Subject: You WIN A PRIZE\n\nbody\n"), opt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict.Action != filter.Reject || res.StoppedAt != "data" || res.Verdict.Code != 550 {
				t.Errorf("matching subject: verdict %v at %q code %d, want reject at data with 550",
					res.Verdict.Action, res.StoppedAt, res.Verdict.Code)
			}

			res, err = Run(ctx, wasm, manifest, []byte("Subject: Minutes\n\nbody\n"), opt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict.Action != filter.Continue {
				t.Errorf("clean subject: verdict %v, want continue", res.Verdict.Action)
			}
		})
	}
}

func TestRunReportsRejectedPlugin(t *testing.T) {
	_, err := Run(context.Background(), []byte("\x00asm\x01\x00\x00\x00"), []byte("name = \"empty\"\nphases = [\"connect\"]\n"),
		[]byte("Subject: x\n\nbody\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "lambgate_abi_version_1") {
		t.Errorf("error %v, want the missing ABI marker named", err)
	}
}

func TestPrintShowsVerdictAndEdits(t *testing.T) {
	res := &Result{
		Verdict:   filter.Verdict{Action: filter.Reject, Code: 550, Enhanced: [3]int{5, 7, 1}, Text: "no"},
		StoppedAt: "data",
		Edits:     filter.Edits{AddHeaders: []filter.Header{{Name: "X-A", Value: "1"}}, Tags: []string{"t"}},
	}
	var buf bytes.Buffer
	Print(&buf, res)
	for _, want := range []string{"verdict: reject at data (550 5.7.1 no)", "add header: X-A: 1", "tags: t"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestCRLFConversion(t *testing.T) {
	cases := map[string]string{
		"a\nb\n":     "a\r\nb\r\n",
		"a\r\nb\r\n": "a\r\nb\r\n",
		"a\r\nb\n":   "a\r\nb\r\n",
	}
	for in, want := range cases {
		if got := string(crlf([]byte(in))); got != want {
			t.Errorf("crlf(%q) = %q, want %q", in, got, want)
		}
	}
}
