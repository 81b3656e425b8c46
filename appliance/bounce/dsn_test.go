package bounce

import (
	"bufio"
	"bytes"
	"context"
	"net/textproto"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// bounceOriginal runs a Bouncer on env and body and returns the one DSN
// it submitted.
func bounceOriginal(t *testing.T, env *envelope.Envelope, body string) submitted {
	t.Helper()
	b, rec, logs := newTestBouncer(t, testConfig())
	if err := b.Bounce(context.Background(), env, bodyOf(body), env.Recipients); err != nil {
		t.Fatalf("Bounce: %v", err)
	}
	if rec.count() != 1 {
		t.Fatalf("submitted %d DSNs, expected 1; log:\n%s", rec.count(), logs)
	}
	return rec.dsns[0]
}

func TestDSNTopLevelHeaders(t *testing.T) {
	got := bounceOriginal(t, originalEnvelope(), originalMessage())
	d := parseDSN(t, got.msg)

	want := map[string]string{
		"From":           "Mail Delivery System <MAILER-DAEMON@bounce.example.test>",
		"To":             "<alice@example.org>",
		"Subject":        "Undelivered Mail Returned to Sender",
		"MIME-Version":   "1.0",
		"Auto-Submitted": "auto-replied",
		"X-Lambgate-DSN": "ORIGQUEUEID1",
	}
	for name, value := range want {
		if g := d.header.Get(name); g != value {
			t.Errorf("%s = %q, expected %q", name, g, value)
		}
	}
	if id := d.header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@bounce.example.test>") {
		t.Errorf("Message-ID = %q, expected <...@bounce.example.test>", id)
	}
	if _, err := d.header.Date(); err != nil {
		t.Errorf("Date %q does not parse: %v", d.header.Get("Date"), err)
	}
	if d.params["report-type"] != "delivery-status" {
		t.Errorf("report-type = %q, expected delivery-status", d.params["report-type"])
	}
}

func TestDSNEnvelopeIsNullSenderBounce(t *testing.T) {
	got := bounceOriginal(t, originalEnvelope(), originalMessage())

	if got.env.Kind != envelope.KindBounce {
		t.Errorf("Kind = %q, expected %q", got.env.Kind, envelope.KindBounce)
	}
	if got.env.From != "" {
		t.Errorf("From = %q, expected the null sender", got.env.From)
	}
	if len(got.env.Recipients) != 1 {
		t.Fatalf("%d recipients, expected 1", len(got.env.Recipients))
	}
	if r := got.env.Recipients[0]; r.Address != "alice@example.org" || r.State != envelope.StatePending {
		t.Errorf("recipient = %+v, expected pending alice@example.org", r)
	}
	if got.env.Received.IsZero() {
		t.Error("Received is zero, expected the time the DSN was made")
	}
	if got.env.Size != int64(len(got.msg)) {
		t.Errorf("Size = %d, expected %d", got.env.Size, len(got.msg))
	}
}

func TestDSNPartsInOrder(t *testing.T) {
	got := bounceOriginal(t, originalEnvelope(), originalMessage())
	d := parseDSN(t, got.msg)

	want := []string{"text/plain; charset=us-ascii", "message/delivery-status", "text/rfc822-headers"}
	if len(d.parts) != len(want) {
		t.Fatalf("%d parts, expected %d", len(d.parts), len(want))
	}
	for i, ct := range want {
		if g := d.parts[i].header.Get("Content-Type"); g != ct {
			t.Errorf("part %d Content-Type = %q, expected %q", i, g, ct)
		}
	}

	text := string(d.parts[0].body)
	for _, s := range []string{
		"<bob@example.test>: 550 5.1.1 <bob@example.test>: mailbox unavailable",
		"<carol@example.test>: 550 5.1.1 user unknown",
		"gw.example.test",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("text part lacks %q:\n%s", s, text)
		}
	}
}

func TestDSNDeliveryStatusFields(t *testing.T) {
	got := bounceOriginal(t, originalEnvelope(), originalMessage())
	d := parseDSN(t, got.msg)
	blocks := statusBlocks(t, d.parts[1].body)
	if len(blocks) != 3 {
		t.Fatalf("%d delivery-status blocks, expected 1 per message and 2 per recipient", len(blocks))
	}

	perMessage := map[string]string{
		"Reporting-MTA":        "dns; bounce.example.test",
		"X-Lambgate-Queue-Id":  "ORIGQUEUEID1",
		"Original-Envelope-Id": "client-envid-42",
		"Arrival-Date":         "Tue, 01 Dec 2026 10:00:00 +0000",
	}
	for name, value := range perMessage {
		if g := blocks[0].Get(name); g != value {
			t.Errorf("per-message %s = %q, expected %q", name, g, value)
		}
	}

	bob := map[string]string{
		"Original-Recipient": "rfc822; Bob@Example.test",
		"Final-Recipient":    "rfc822; bob@example.test",
		"Action":             "failed",
		"Status":             "5.1.1",
		"Diagnostic-Code":    "smtp; 550 5.1.1 <bob@example.test>: mailbox unavailable",
	}
	for name, value := range bob {
		if g := blocks[1].Get(name); g != value {
			t.Errorf("bob %s = %q, expected %q", name, g, value)
		}
	}
	if blocks[1].Get("Last-Attempt-Date") == "" {
		t.Error("bob has no Last-Attempt-Date although he was tried once")
	}

	carol := map[string]string{
		"Final-Recipient": "rfc822; carol@example.test",
		"Action":          "failed",
		"Status":          "5.1.1",
		"Diagnostic-Code": "smtp; 550 5.1.1 user unknown",
	}
	for name, value := range carol {
		if g := blocks[2].Get(name); g != value {
			t.Errorf("carol %s = %q, expected %q", name, g, value)
		}
	}
	if g := blocks[2].Get("Original-Recipient"); g != "" {
		t.Errorf("carol Original-Recipient = %q, expected none without ORCPT", g)
	}
	if g := blocks[2].Get("Last-Attempt-Date"); g != "" {
		t.Errorf("carol Last-Attempt-Date = %q, expected none: she was never tried", g)
	}
}

func TestDSNHeadersPartOmitsBody(t *testing.T) {
	got := bounceOriginal(t, originalEnvelope(), originalMessage())
	d := parseDSN(t, got.msg)

	if bytes.Contains(got.msg, []byte("BODY-MARKER")) {
		t.Errorf("DSN contains the original's body:\n%s", got.msg)
	}
	if bytes.Contains(got.msg, []byte("a body line that looks like a header")) {
		t.Error("DSN contains a body line of the original")
	}

	h := parseHeadersPart(t, d.parts[2].body)
	if g := h.Get("Subject"); g != "quarterly numbers" {
		t.Errorf("quoted Subject = %q, expected the original's", g)
	}
	if g := h.Get("Message-Id"); g != "<orig-1@example.org>" {
		t.Errorf("quoted Message-ID = %q, expected the original's", g)
	}
}

func TestDSNIncludesPrependedHeaders(t *testing.T) {
	env := originalEnvelope()
	env.Prepend = "X-Spam-Score: 3.1\r\n"
	got := bounceOriginal(t, env, originalMessage())
	d := parseDSN(t, got.msg)

	if !bytes.HasPrefix(d.parts[2].body, []byte("X-Spam-Score: 3.1\r\nReceived: ")) {
		t.Errorf("headers part starts %q, expected the prepended field first", d.parts[2].body[:40])
	}
}

func TestDSNResistsHeaderInjection(t *testing.T) {
	env := originalEnvelope()
	env.Recipients = []envelope.Recipient{{
		Address:  "bob@example.test",
		State:    envelope.StateFailed,
		LastCode: 550,
		LastError: "5.7.1 rejected\r\nX-Injected-Status: yes\r\n\r\n" +
			"--fake-boundary\r\nContent-Type: text/html\r\n",
		Attempts: 1,
	}}
	original := "Subject: hello\rX-Injected-Bare-CR: yes\r\n" +
		"X-Injected-Bare-LF: no\nX-After-LF: kept\r\n" +
		"--boundary-lookalike\r\n" +
		" continuation of a dropped line\r\n" +
		"To: bob@example.test\r\n\r\nbody\r\n"
	got := bounceOriginal(t, env, original)
	d := parseDSN(t, got.msg)

	if len(d.parts) != 3 {
		t.Fatalf("%d parts, expected 3: the diagnostic added a part", len(d.parts))
	}
	blocks := statusBlocks(t, d.parts[1].body)
	if len(blocks) != 2 {
		t.Fatalf("%d delivery-status blocks, expected 2", len(blocks))
	}
	if g := blocks[1].Get("X-Injected-Status"); g != "" {
		t.Errorf("diagnostic text added a field X-Injected-Status: %q", g)
	}
	diag := blocks[1].Get("Diagnostic-Code")
	if !strings.HasPrefix(diag, "smtp; 550 5.7.1 rejected X-Injected-Status: yes --fake-boundary") {
		t.Errorf("Diagnostic-Code = %q, expected the text on one line", diag)
	}

	h := parseHeadersPart(t, d.parts[2].body)
	if g := h.Get("X-Injected-Bare-CR"); g != "" {
		t.Errorf("bare CR in a quoted header started a field: %q", g)
	}
	if g := h.Get("Subject"); g != "hello X-Injected-Bare-CR: yes" {
		t.Errorf("Subject = %q, expected the bare CR turned into a space", g)
	}
	if bytes.Contains(d.parts[2].body, []byte("--boundary-lookalike")) {
		t.Error("a line that is not a header field was quoted")
	}
	if bytes.Contains(d.parts[2].body, []byte("continuation of a dropped line")) {
		t.Error("the continuation of a dropped line was quoted")
	}
	if g := h.Get("To"); g != "bob@example.test" {
		t.Errorf("To = %q, expected the field after the dropped lines", g)
	}
}

func TestDSNFoldsLongHeaderLines(t *testing.T) {
	words := strings.Repeat("word ", 500)
	solid := strings.Repeat("x", 2500)
	original := "Subject: " + words + "\r\nX-Solid: " + solid + "\r\n\r\nbody\r\n"
	got := bounceOriginal(t, originalEnvelope(), original)
	d := parseDSN(t, got.msg)

	for i, line := range strings.Split(string(d.parts[2].body), "\r\n") {
		if len(line) > 998 {
			t.Errorf("quoted line %d has %d bytes, over the 998 that RFC 5322 allows", i, len(line))
		}
	}
	h := parseHeadersPart(t, d.parts[2].body)
	if g := strings.Join(strings.Fields(h.Get("Subject")), " "); g != strings.TrimSpace(words) {
		t.Errorf("folded Subject lost words: %d bytes, expected %d", len(g), len(strings.TrimSpace(words)))
	}
	if g := strings.ReplaceAll(h.Get("X-Solid"), " ", ""); g != solid {
		t.Errorf("X-Solid lost characters: %d bytes, expected %d", len(g), len(solid))
	}
}

func TestDSNCapsHeaderSection(t *testing.T) {
	var original strings.Builder
	for i := 0; original.Len() < 3*MaxHeaderBytes; i++ {
		original.WriteString("X-Filler: 0123456789012345678901234567890123456789\r\n")
	}
	original.WriteString("\r\nbody\r\n")
	got := bounceOriginal(t, originalEnvelope(), original.String())
	d := parseDSN(t, got.msg)

	quoted := d.parts[2].body
	if len(quoted) > MaxHeaderBytes+200 {
		t.Errorf("headers part has %d bytes, expected about %d at most", len(quoted), MaxHeaderBytes)
	}
	if !bytes.HasSuffix(quoted, []byte("X-Lambgate-Truncated: header section cut at 65536 bytes\r\n")) {
		t.Errorf("headers part ends %q, expected the truncation note", quoted[len(quoted)-80:])
	}
}

func TestDSNEncodesEightBitHeaders(t *testing.T) {
	original := "Subject: Grüße aus Köln\r\nFrom: alice@example.org\r\n\r\nbody\r\n"
	got := bounceOriginal(t, originalEnvelope(), original)
	d := parseDSN(t, got.msg)

	for i, c := range got.msg {
		if c >= 0x80 {
			t.Fatalf("DSN byte %d is 0x%x, expected a 7-bit message", i, c)
		}
	}
	if g := d.parts[2].header.Get("Content-Transfer-Encoding"); g != "quoted-printable" {
		t.Errorf("headers part encoding = %q, expected quoted-printable", g)
	}
	if !bytes.Contains(d.parts[2].body, []byte("Subject: Grüße aus Köln\r\n")) {
		t.Errorf("decoded headers part lacks the Subject:\n%s", d.parts[2].body)
	}
}

// parseHeadersPart parses a text/rfc822-headers body, which has no empty
// line of its own at the end.
func parseHeadersPart(t *testing.T, body []byte) textproto.MIMEHeader {
	t.Helper()
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(bytes.Clone(body), "\r\n"...))))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("headers part does not parse: %v\n%s", err, body)
	}
	return h
}

func TestFailureOfRecipient(t *testing.T) {
	tests := []struct {
		name string
		rcpt envelope.Recipient
		want failure
	}{
		{"enhanced code in text", envelope.Recipient{LastCode: 550, LastError: "5.1.1 no such user"},
			failure{550, "5.1.1", "no such user"}},
		{"whole reply as the queue records it", envelope.Recipient{LastCode: 550, LastError: "550 5.2.1 mailbox unavailable"},
			failure{550, "5.2.1", "mailbox unavailable"}},
		{"no enhanced code permanent", envelope.Recipient{LastCode: 554, LastError: "transaction failed"},
			failure{554, "5.0.0", "transaction failed"}},
		{"no enhanced code temporary", envelope.Recipient{LastCode: 451, LastError: "try later"},
			failure{451, "4.0.0", "try later"}},
		{"local failure", envelope.Recipient{LastError: "connection refused"},
			failure{0, "5.0.0", "connection refused"}},
		{"nothing recorded", envelope.Recipient{State: envelope.StateFailed},
			failure{0, "5.0.0", "delivery failed"}},
		{"unknown under bounce policy", envelope.Recipient{State: envelope.StateBounce},
			failure{550, "5.1.1", "user unknown"}},
		{"malformed enhanced code kept as text", envelope.Recipient{LastCode: 550, LastError: "5.1 x"},
			failure{550, "5.0.0", "5.1 x"}},
		{"invalid class kept as text", envelope.Recipient{LastCode: 550, LastError: "3.1.1 x"},
			failure{550, "5.0.0", "3.1.1 x"}},
		{"long text bounded", envelope.Recipient{LastCode: 550, LastError: "5.2.2 " + strings.Repeat("a", 2000)},
			failure{550, "5.2.2", strings.Repeat("a", maxDiagnosticBytes-len("5.2.2 "))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failureOf(tt.rcpt); got != tt.want {
				t.Errorf("failureOf = %+v, expected %+v", got, tt.want)
			}
		})
	}
}

func TestDSNAddressEncodesUTF8(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bob@example.test", "rfc822; bob@example.test"},
		{"jörg@example.test", `utf-8; j\x{F6}rg@example.test`},
		{"a\r\nb@example.test", "rfc822; a b@example.test"},
	}
	for _, tt := range tests {
		if got := dsnAddress("rfc822", tt.in); got != tt.want {
			t.Errorf("dsnAddress(%q) = %q, expected %q", tt.in, got, tt.want)
		}
	}
}
