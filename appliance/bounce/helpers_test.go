package bounce

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// submitted is one DSN that a test submit function received.
type submitted struct {
	env *envelope.Envelope
	msg []byte
}

// recorder is a SubmitFunc that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	dsns []submitted
	err  error
}

func (r *recorder) submit(_ context.Context, env *envelope.Envelope, msg []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	env.QueueID = "DSNQUEUEID01"
	r.dsns = append(r.dsns, submitted{env: env, msg: bytes.Clone(msg)})
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.dsns)
}

func testConfig() Config {
	return Config{
		Hostname:       "gw.example.test",
		HELO:           "bounce.example.test",
		MXPort:         25,
		RequireSPFPass: true,
		RatePerDomain:  100,
	}
}

// newTestBouncer returns a Bouncer whose log lines go to the returned
// buffer as JSON.
func newTestBouncer(t *testing.T, cfg Config) (*Bouncer, *recorder, *bytes.Buffer) {
	t.Helper()
	rec := &recorder{}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	b, err := NewBouncer(cfg, rec.submit, log)
	if err != nil {
		t.Fatalf("NewBouncer: %v", err)
	}
	return b, rec, &logs
}

const originalBodyMarker = "BODY-MARKER-7f3a: buy cheap watches"

// originalMessage is a plain message with a body that must never reach a DSN.
func originalMessage() string {
	return "Received: from client.example.org by gw.example.test\r\n" +
		"From: Alice <alice@example.org>\r\n" +
		"To: bob@example.test\r\n" +
		"Subject: quarterly numbers\r\n" +
		"Message-ID: <orig-1@example.org>\r\n" +
		"\r\n" +
		originalBodyMarker + "\r\n" +
		"Subject: a body line that looks like a header\r\n"
}

func originalEnvelope() *envelope.Envelope {
	return &envelope.Envelope{
		QueueID:  "ORIGQUEUEID1",
		Kind:     envelope.KindInbound,
		From:     "alice@example.org",
		SPF:      "pass",
		EnvID:    "client-envid-42",
		Received: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Recipients: []envelope.Recipient{
			{Address: "bob@example.test", State: envelope.StateFailed, LastCode: 550,
				LastError: "5.1.1 <bob@example.test>: mailbox unavailable", Attempts: 1,
				ORCPT: "rfc822;Bob@Example.test"},
			{Address: "carol@example.test", State: envelope.StateBounce},
		},
	}
}

func bodyOf(s string) envelope.Body { return bytes.NewReader([]byte(s)) }

// parsedDSN is a DSN taken apart with the standard MIME readers.
type parsedDSN struct {
	header mail.Header
	params map[string]string
	parts  []parsedPart
}

type parsedPart struct {
	header textproto.MIMEHeader
	body   []byte
}

func parseDSN(t *testing.T, msg []byte) *parsedDSN {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("DSN is not a parsable message: %v", err)
	}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("DSN Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	if mediaType != "multipart/report" {
		t.Fatalf("DSN Content-Type is %q, expected multipart/report", mediaType)
	}

	d := &parsedDSN{header: m.Header, params: params}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part %d: %v", len(d.parts), err)
		}
		var r io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			r = quotedprintable.NewReader(p)
		}
		body, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("DSN part %d body: %v", len(d.parts), err)
		}
		d.parts = append(d.parts, parsedPart{header: p.Header, body: body})
	}
	return d
}

// statusBlocks parses a message/delivery-status body into its
// per-message block and the per-recipient blocks.
func statusBlocks(t *testing.T, body []byte) []textproto.MIMEHeader {
	t.Helper()
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(bytes.Clone(body), "\r\n"...))))
	var blocks []textproto.MIMEHeader
	for {
		h, err := r.ReadMIMEHeader()
		if len(h) > 0 {
			blocks = append(blocks, h)
		}
		if err == io.EOF {
			return blocks
		}
		if err != nil {
			t.Fatalf("delivery-status block %d: %v", len(blocks), err)
		}
	}
}
