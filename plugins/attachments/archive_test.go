package attachments_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

// zipEntry is one file of a test archive; stored skips compression, as
// zip tools do for archives inside archives.
type zipEntry struct {
	name      string
	data      []byte
	stored    bool
	encrypted bool
}

func buildZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.stored {
			h.Method = zip.Store
		}
		if e.encrypted {
			// archive/zip cannot encrypt; the flag alone is what a reader
			// sees in the central directory.
			h.Flags |= 1
		}
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(e.data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// b64Attachment is a base64 MIME part with 76-character lines.
func b64Attachment(ctype, name string, data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var sb strings.Builder
	for len(enc) > 76 {
		sb.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	sb.WriteString(enc)
	return "Content-Type: " + ctype + "; name=\"" + name + "\"\nContent-Disposition: attachment; filename=\"" +
		name + "\"\nContent-Transfer-Encoding: base64\n\n" + sb.String()
}

func runPolicy(t *testing.T, eml string, settings map[string]string) *plugintest.Result {
	t.Helper()
	ctx := context.Background()
	wasm, err := plugintest.BuildOnce(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile("attachments.toml")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range settings {
		manifest = plugintest.WithSetting(manifest, k, v)
	}
	res, err := plugintest.Run(ctx, wasm, manifest, []byte(eml), plugintest.Options{CacheDir: plugintest.TestCacheDir})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestArchivePolicy(t *testing.T) {
	pdf := []byte("%PDF-1.4 " + strings.Repeat("x", 3000))
	clean := buildZip(t, zipEntry{name: "report.pdf", data: pdf}, zipEntry{name: "notes/readme.txt", data: []byte("hi")})
	exe := buildZip(t, zipEntry{name: "report.pdf", data: pdf}, zipEntry{name: "invoice.pdf.exe", data: []byte("MZ")})
	nested2 := buildZip(t, zipEntry{name: "docs.zip", stored: true, data: exe})
	nested3 := buildZip(t, zipEntry{name: "outer.zip", stored: true, data: nested2})
	cleanNested := buildZip(t, zipEntry{name: "docs.zip", stored: true, data: clean})
	compressedNested := buildZip(t, zipEntry{name: "docs.zip", data: clean})
	encryptedNested := buildZip(t, zipEntry{name: "docs.zip", stored: true, encrypted: true, data: clean})
	encryptedExe := buildZip(t, zipEntry{name: "run.exe", encrypted: true, data: []byte("MZ")})
	encryptedPDF := buildZip(t, zipEntry{name: "a.pdf", encrypted: true, data: pdf})
	hiddenExe := buildZip(t, zipEntry{name: "scan.exe.pdf", data: pdf})
	large := buildZip(t, zipEntry{name: "big.bin", stored: true, data: bytes.Repeat([]byte{7}, 200000)},
		zipEntry{name: "setup.scr", data: []byte("MZ")})
	sevenZip := append([]byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c, 0, 4}, pdf...)
	rar := append([]byte("Rar!\x1a\x07\x01\x00"), pdf...)
	var many []zipEntry
	for i := 0; i < 30; i++ {
		many = append(many, zipEntry{name: strings.Repeat("f", i+1) + ".txt", data: []byte("x")})
	}
	manyZip := buildZip(t, many...)

	cases := []struct {
		name     string
		eml      string
		settings map[string]string
		action   filter.Action
		reason   string
		tag      string
	}{
		{name: "clean zip continues", eml: mixed(text, b64Attachment("application/zip", "files.zip", clean)),
			action: filter.Continue},
		{name: "exe in zip rejected", eml: mixed(text, b64Attachment("application/zip", "files.zip", exe)),
			action: filter.Reject, reason: "file name extension .exe inside files.zip (invoice.pdf.exe)"},
		{name: "hidden extension in zip rejected", eml: mixed(b64Attachment("application/zip", "a.zip", hiddenExe)),
			action: filter.Reject, reason: "hidden file name extension .exe"},
		{name: "zip as octet-stream rejected",
			eml:    mixed(text, b64Attachment("application/octet-stream", "statement.dat", exe)),
			action: filter.Reject, reason: ".exe inside statement.dat"},
		{name: "zip named pdf as octet-stream rejected",
			eml:    mixed(b64Attachment("application/octet-stream", "statement.pdf", exe)),
			action: filter.Reject, reason: ".exe inside statement.pdf"},
		{name: "nested zip rejected", eml: mixed(text, b64Attachment("application/zip", "outer.zip", nested2)),
			action: filter.Reject, reason: "inside docs.zip"},
		{name: "three levels rejected", eml: mixed(b64Attachment("application/zip", "top.zip", nested3)),
			action: filter.Reject, reason: "inside docs.zip"},
		{name: "depth limit unreadable", eml: mixed(b64Attachment("application/zip", "top.zip", nested3)),
			settings: map[string]string{"archive_max_depth": "2"},
			action:   filter.Quarantine, tag: "archive-unreadable"},
		{name: "clean nested zip continues", eml: mixed(b64Attachment("application/zip", "a.zip", cleanNested)),
			action: filter.Continue},
		{name: "compressed nested zip uninspectable",
			eml:    mixed(b64Attachment("application/zip", "a.zip", compressedNested)),
			action: filter.Quarantine, tag: "archive-uninspectable"},
		{name: "encrypted nested zip unreadable",
			eml:    mixed(b64Attachment("application/zip", "a.zip", encryptedNested)),
			action: filter.Quarantine, tag: "archive-unreadable"},
		{name: "encrypted exe rejected by name",
			eml:    mixed(b64Attachment("application/zip", "a.zip", encryptedExe)),
			action: filter.Reject, reason: ".exe inside a.zip"},
		{name: "encrypted pdf continues", eml: mixed(b64Attachment("application/zip", "a.zip", encryptedPDF)),
			action: filter.Continue},
		{name: "truncated zip unreadable",
			eml:    mixed(b64Attachment("application/zip", "cut.zip", exe[:len(exe)-30])),
			action: filter.Quarantine, tag: "archive-unreadable"},
		{name: "truncated directory unreadable",
			eml:    mixed(b64Attachment("application/zip", "cut.zip", exe[:len(exe)/2])),
			action: filter.Quarantine, tag: "archive-unreadable"},
		{name: "unreadable action reject",
			eml:      mixed(b64Attachment("application/zip", "cut.zip", exe[:len(exe)-30])),
			settings: map[string]string{"unreadable_archive_action": `"reject"`},
			action:   filter.Reject, reason: "truncated or malformed ZIP archive cut.zip"},
		{name: "unreadable action continue",
			eml:      mixed(b64Attachment("application/zip", "cut.zip", exe[:len(exe)-30])),
			settings: map[string]string{"unreadable_archive_action": `"continue"`},
			action:   filter.Continue},
		{name: "not a zip unreadable", eml: mixed(b64Attachment("application/zip", "fake.zip", pdf)),
			action: filter.Quarantine, tag: "archive-unreadable"},
		{name: "octet-stream pdf continues",
			eml:    mixed(b64Attachment("application/octet-stream", "scan.pdf", pdf)),
			action: filter.Continue},
		{name: "7z uninspectable", eml: mixed(b64Attachment("application/octet-stream", "a.bin", sevenZip)),
			action: filter.Quarantine, tag: "archive-uninspectable"},
		{name: "rar uninspectable", eml: mixed(b64Attachment("application/x-rar", "a.rar", rar)),
			action: filter.Quarantine, tag: "archive-uninspectable"},
		{name: "uninspectable action continue", eml: mixed(b64Attachment("application/x-rar", "a.rar", rar)),
			settings: map[string]string{"uninspectable_archive_action": `"continue"`}, action: filter.Continue},
		{name: "large zip rejected", eml: mixed(b64Attachment("application/zip", "big.zip", large)),
			action: filter.Reject, reason: ".scr inside big.zip"},
		{name: "byte limit unreadable", eml: mixed(b64Attachment("application/zip", "n.zip", nested2)),
			settings: map[string]string{"archive_max_bytes": "1000"},
			action:   filter.Quarantine, tag: "archive-unreadable"},
		{name: "entry limit unreadable", eml: mixed(b64Attachment("application/zip", "m.zip", manyZip)),
			settings: map[string]string{"archive_max_entries": "20"},
			action:   filter.Quarantine, tag: "archive-unreadable"},
		{name: "inspection off continues", eml: mixed(b64Attachment("application/zip", "files.zip", exe)),
			settings: map[string]string{"inspect_archives": "false"}, action: filter.Continue},
		{name: "zip in nested multipart rejected",
			eml: mixed(text, "Content-Type: multipart/alternative; boundary=C\n\npreamble\n--C\n"+text+"\n--C\n"+
				b64Attachment("application/zip", "deep.zip", exe)+"\n--C--\nepilogue"),
			action: filter.Reject, reason: ".exe inside deep.zip"},
		{name: "zip after nested multipart rejected",
			eml: mixed("Content-Type: multipart/alternative; boundary=C\n\n--C\n"+text+"\n--C\n"+text+"\n--C--\n",
				b64Attachment("application/zip", "late.zip", exe)),
			action: filter.Reject, reason: ".exe inside late.zip"},
		{name: "zip in attached message rejected",
			eml: mixed("Content-Type: message/rfc822\n\nSubject: fwd\nContent-Type: multipart/mixed; boundary=D\n\n--D\n" +
				b64Attachment("application/zip", "fwd.zip", exe) + "\n--D--"),
			action: filter.Reject, reason: ".exe inside fwd.zip"},
		{name: "single-part zip message rejected",
			eml: "Subject: zip\nMIME-Version: 1.0\n" + strings.Replace(b64Attachment("application/zip", "only.zip", exe),
				"\n\n", "\n\n", 1),
			action: filter.Reject, reason: ".exe inside only.zip"},
		{name: "binary zip rejected",
			eml: mixed("Content-Type: application/zip\nContent-Disposition: attachment; filename=\"raw.zip\"\n" +
				"Content-Transfer-Encoding: binary\n\n" + string(buildZip(t, zipEntry{name: "x.js", stored: true, data: []byte("1")}))),
			action: filter.Reject, reason: ".js inside raw.zip"},
		{name: "quoted-printable zip unreadable",
			eml: mixed("Content-Type: application/zip; name=\"q.zip\"\nContent-Transfer-Encoding: quoted-printable\n\n" +
				"PK=03=04"),
			action: filter.Quarantine, tag: "archive-unreadable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runPolicy(t, tc.eml, tc.settings)
			if res.Verdict.Action != tc.action {
				t.Fatalf("verdict %v (%s), want %v", res.Verdict.Action, res.Verdict.Text, tc.action)
			}
			if tc.reason != "" && !strings.Contains(res.Verdict.Text, tc.reason) {
				t.Errorf("reply %q does not give reason %q", res.Verdict.Text, tc.reason)
			}
			if tc.tag != "" && (len(res.Edits.Tags) != 1 || res.Edits.Tags[0] != tc.tag) {
				t.Errorf("tags %v, want [%s]", res.Edits.Tags, tc.tag)
			}
		})
	}
}
