package host

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func TestMIMEPartsFound(t *testing.T) {
	msg := strings.Join([]string{
		"Subject: parts",
		"Content-Type: multipart/mixed; boundary=outer",
		"",
		"--outer",
		"Content-Type: text/plain; charset=utf-8",
		"",
		"hello",
		"--outer",
		"Content-Type: multipart/alternative; boundary=inner",
		"",
		"--inner",
		"Content-Type: text/html",
		"",
		"<p>hi</p>",
		"--inner",
		"Content-Type: application/octet-stream",
		"Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf.exe",
		"",
		"AAAA",
		"--inner--",
		"--outer",
		"Content-Type: message/rfc822",
		"Content-Disposition: attachment; filename=fwd.eml",
		"",
		"Subject: inner",
		"Content-Type: application/zip; name=\"=?UTF-8?B?c2VjcmV0LnppcA==?=\"",
		"",
		"PK",
		"--outer",
		"Content-Type: application/x-msdownload",
		"Content-Disposition: attachment; filename=\"bad.scr\" broken",
		"",
		"MZ",
		"--outer--",
		"",
	}, "\r\n")
	m := newMessage(bytes.NewReader([]byte(msg)))
	parts := m.mimeParts()
	if m.mimeErr != nil {
		t.Errorf("MIME walk error: %v", m.mimeErr)
	}
	want := []mimePart{
		{path: "1", contentType: "text/plain"},
		{path: "2.1", contentType: "text/html"},
		{path: "2.2", contentType: "application/octet-stream", fileName: "résumé.pdf.exe", disposition: "attachment"},
		{path: "3", contentType: "message/rfc822", fileName: "fwd.eml", disposition: "attachment"},
		{path: "3.1", contentType: "application/zip", fileName: "secret.zip"},
		{path: "4", contentType: "application/x-msdownload", fileName: "bad.scr", disposition: "attachment"},
	}
	if len(parts) != len(want) {
		t.Fatalf("got %d parts %+v, want %d", len(parts), parts, len(want))
	}
	for i, w := range want {
		g := parts[i]
		if g.path != w.path || g.contentType != w.contentType || g.fileName != w.fileName || g.disposition != w.disposition {
			t.Errorf("part %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestMIMEErrorOnDeepNesting(t *testing.T) {
	// 20 nested multiparts, past the limit of 16, with an attachment at
	// the bottom: the walk must stop and say so.
	var sb strings.Builder
	sb.WriteString("Content-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := 1; i <= 20; i++ {
		sb.WriteString("--b" + strconv.Itoa(i-1) + "\r\nContent-Type: multipart/mixed; boundary=b" + strconv.Itoa(i) + "\r\n\r\n")
	}
	sb.WriteString("--b20\r\nContent-Disposition: attachment; filename=deep.exe\r\n\r\nMZ\r\n")
	m := newMessage(bytes.NewReader([]byte(sb.String())))
	m.mimeParts()
	if m.mimeErr == nil || !strings.Contains(m.mimeErr.Error(), "deeper than 16") {
		t.Errorf("MIME error %v, want the nesting limit", m.mimeErr)
	}
	for _, p := range m.parts {
		if p.fileName == "deep.exe" {
			t.Errorf("part beyond the nesting limit was recorded: %+v", p)
		}
	}
}

func TestHeaderFieldsUnfolded(t *testing.T) {
	msg := "Subject: a\r\n  folded\r\n\tline\r\nX-Empty:\r\nsubject: second\r\n\r\nbody"
	m := newMessage(bytes.NewReader([]byte(msg)))
	cases := []struct {
		name  string
		index int
		want  string
		found bool
	}{
		{"Subject", 0, "a  folded\tline", true},
		{"SUBJECT", 1, "second", true},
		{"Subject", 2, "", false},
		{"X-Empty", 0, "", true},
		{"Missing", 0, "", false},
	}
	for _, tc := range cases {
		got, ok := m.headerValue(tc.name, tc.index)
		if got != tc.want || ok != tc.found {
			t.Errorf("%s[%d]: got %q %t, want %q %t", tc.name, tc.index, got, ok, tc.want, tc.found)
		}
	}
	if got := string(m.bodyBytes()); got != "body" {
		t.Errorf("body %q, want %q", got, "body")
	}
}

func TestMessageWithoutBody(t *testing.T) {
	m := newMessage(bytes.NewReader([]byte("Subject: only\r\n")))
	if v, ok := m.headerValue("Subject", 0); !ok || v != "only" {
		t.Errorf("Subject %q %t, want only", v, ok)
	}
	if n := m.bodySize(); n != 0 {
		t.Errorf("body size %d, want 0", n)
	}
}

func TestHeaderBlockAcrossChunks(t *testing.T) {
	// A header block longer than one 8 KiB read, with the blank line at
	// the chunk boundary and beyond it.
	for _, pad := range []int{8192 - 20, 8192 - 19, 8192 - 18, 8192 - 17, 8192 - 16, 20000} {
		hdr := "Subject: s\r\nX-Pad: " + strings.Repeat("a", pad) + "\r\n"
		m := newMessage(bytes.NewReader([]byte(hdr + "\r\nbody")))
		if v, ok := m.headerValue("Subject", 0); !ok || v != "s" {
			t.Errorf("pad %d: Subject %q %t, want s", pad, v, ok)
		}
		if got := string(m.bodyBytes()); got != "body" {
			t.Errorf("pad %d: body %q, want %q", pad, got, "body")
		}
		if len(m.headerBlock()) != len(hdr) {
			t.Errorf("pad %d: header block %d bytes, want %d", pad, len(m.headerBlock()), len(hdr))
		}
	}
}
