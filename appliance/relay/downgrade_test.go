package relay

import (
	"bytes"
	"io"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

func decodeQP(t *testing.T, s string) string {
	t.Helper()
	out, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(s)))
	if err != nil {
		t.Fatalf("quoted-printable %q: %v", s, err)
	}
	return string(out)
}

func TestDowngradeLeavesASCIIAlone(t *testing.T) {
	msg := []byte("Subject: plain\r\n\r\nascii only\r\n")
	if got := downgrade8bit(msg); !bytes.Equal(got, msg) {
		t.Errorf("ASCII message changed:\n%q", got)
	}
}

func TestDowngradeSinglePart(t *testing.T) {
	msg := []byte("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nna\xc3\xafve caf\xc3\xa9\r\n")
	got := downgrade8bit(msg)
	if has8bit(got) {
		t.Fatalf("8-bit bytes left:\n%q", got)
	}
	m, err := mail.ReadMessage(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	if cte := m.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Errorf("Content-Transfer-Encoding = %q, want quoted-printable", cte)
	}
	if n := strings.Count(string(got), "Content-Transfer-Encoding"); n != 1 {
		t.Errorf("%d Content-Transfer-Encoding fields, want 1:\n%s", n, got)
	}
	body, _ := io.ReadAll(m.Body)
	if text := decodeQP(t, string(body)); text != "na\xc3\xafve caf\xc3\xa9\r\n" {
		t.Errorf("decoded body = %q", text)
	}
}

func TestDowngradeMultipartConvertsOnlyEightBitParts(t *testing.T) {
	const base64Part = "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
	msg := []byte("Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\nzweite Zeile\r\n" +
		"--b1\r\n" + base64Part +
		"--b1--\r\nepilogue\r\n")
	got := downgrade8bit(msg)
	if has8bit(got) {
		t.Fatalf("8-bit bytes left:\n%s", got)
	}
	if !bytes.Contains(got, []byte(base64Part)) {
		t.Errorf("the base64 part changed:\n%s", got)
	}
	for _, keep := range []string{"preamble\r\n--b1\r\n", "--b1--\r\nepilogue\r\n"} {
		if !bytes.Contains(got, []byte(keep)) {
			t.Errorf("output lost %q:\n%s", keep, got)
		}
	}

	m, err := mail.ReadMessage(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	r := multipart.NewReader(m.Body, "b1")
	p, err := r.NextRawPart()
	if err != nil {
		t.Fatal(err)
	}
	if cte := p.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Errorf("text part Content-Transfer-Encoding = %q", cte)
	}
	raw, _ := io.ReadAll(p)
	if text := decodeQP(t, string(raw)); text != "Gr\xc3\xbc\xc3\x9fe\r\nzweite Zeile" {
		t.Errorf("decoded text part = %q", text)
	}
	if _, err := r.NextRawPart(); err != nil {
		t.Errorf("the second part is unreadable: %v", err)
	}
}

func TestDowngradeAttachedMessage(t *testing.T) {
	msg := []byte("Subject: fwd\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n" +
		"--outer\r\nContent-Type: message/rfc822\r\n\r\n" +
		"Subject: inner\r\nContent-Type: text/plain\r\n\r\n\xc3\xa9t\xc3\xa9\r\n" +
		"--outer--\r\n")
	got := downgrade8bit(msg)
	if has8bit(got) {
		t.Fatalf("8-bit bytes left:\n%s", got)
	}
	if !bytes.Contains(got, []byte("Subject: inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9t=C3=A9")) {
		t.Errorf("the attached message was not converted:\n%s", got)
	}
}

func TestDowngradeFoldedTransferEncoding(t *testing.T) {
	msg := []byte("Content-Transfer-Encoding:\r\n 8bit\r\nX-After: kept\r\n\r\n\xff\r\n")
	got := string(downgrade8bit(msg))
	want := "Content-Transfer-Encoding: quoted-printable\r\nX-After: kept\r\n\r\n=FF\r\n"
	if got != want {
		t.Errorf("output = %q, want the folded field replaced in place: %q", got, want)
	}
}

func TestDowngradeDeepNestingStops(t *testing.T) {
	var b strings.Builder
	for i := range 1000 {
		b.WriteString("Content-Type: multipart/mixed; boundary=b" + string(rune('a'+i%26)) + "\r\n\r\n--b" + string(rune('a'+i%26)) + "\r\n")
	}
	b.WriteString("\r\n\xff\r\n")
	// It must return without exhausting the stack; what it returns for
	// such a message is not specified.
	downgrade8bit([]byte(b.String()))
}

// FuzzDowngrade checks that no input makes the conversion panic or hang.
func FuzzDowngrade(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n\xff\r\n--x--\r\n"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nA: b\r\n\r\n\xc3\xa9\r\n"))
	f.Add([]byte("Content-Transfer-Encoding: base64\r\n\r\n\xff"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		downgrade8bit(msg)
	})
}
