package e2e

import (
	"bytes"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/internal/testenv"
)

// testMessage has a leading dot, a line of dots and 8-bit text, so that
// dot-stuffing and 8BITMIME are checked on the way to Postfix.
const testMessage = "From: Sender <sender@example.org>\r\n" +
	"To: alice@example.test\r\n" +
	"Subject: relay check\r\n" +
	"Message-ID: <relay-check@example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"\r\n" +
	"first line\r\n" +
	".leading dot\r\n" +
	"..\r\n" +
	"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n" +
	"\r\n" +
	"last line\r\n"

func writeMessage(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "message.eml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRelayDeliversByteForByte(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	gw := startGateway(t, baseSettings(t, pf.Addr()))

	// swaks ends the data with CRLF "." CRLF itself, so the file lacks the
	// last CRLF.
	out, code := testenv.Swaks(t, "--server", gw.Addr(),
		"--from", "sender@example.org", "--to", "alice@example.test",
		"--data", writeMessage(t, strings.TrimSuffix(testMessage, "\r\n")))
	if code != 0 {
		t.Fatalf("swaks exit %d:\n%s", code, out)
	}

	got := pf.WaitMessages(t, "alice@example.test", 1, 30*time.Second)[0].Original()
	if !bytes.HasSuffix(got, []byte(testMessage)) {
		t.Fatalf("relayed message does not end with the original:\n%q", got)
	}
	added := got[:len(got)-len(testMessage)]
	parsed, err := mail.ReadMessage(bytes.NewReader(append(append([]byte{}, added...), "\r\n"...)))
	if err != nil {
		t.Fatalf("added header lines do not parse: %v\n%q", err, added)
	}
	if n := len(parsed.Header); n != 1 {
		t.Errorf("gateway added %d header fields, want only Received: %q", n, added)
	}
	received := parsed.Header.Get("Received")
	for _, want := range []string{"by lambgate.example.test", "for <alice@example.test>", "with ESMTP"} {
		if !strings.Contains(received, want) {
			t.Errorf("Received header %q lacks %q", received, want)
		}
	}
}

func TestRelayLeavesFromInternalAddress(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	s := baseSettings(t, pf.Addr())
	s.Internal.SourceAddress = "127.0.0.9"
	gw := startGateway(t, s)

	if out, code := testenv.Swaks(t, "--server", gw.Addr(),
		"--from", "sender@example.org", "--to", "alice@example.test"); code != 0 {
		t.Fatalf("swaks exit %d:\n%s", code, out)
	}
	msg := pf.WaitMessages(t, "alice@example.test", 1, 30*time.Second)[0]
	// Postfix's own Received header names the connecting address.
	received := msg.Header.Get("Received")
	if !strings.Contains(received, "[127.0.0.9]") {
		t.Errorf("Postfix saw the relay from %q, want 127.0.0.9", received)
	}
}

func TestUnknownRecipientRejectedAtRCPT(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{Users: []string{"alice@example.test"}})
	s := baseSettings(t, pf.Addr())
	s.Recipients.Validation = "callout"
	gw := startGateway(t, s)

	out, code := testenv.Swaks(t, "--server", gw.Addr(),
		"--from", "sender@example.org", "--to", "nobody@example.test")
	if code != 24 {
		t.Errorf("swaks exit %d, want 24 (every recipient rejected):\n%s", code, out)
	}
	if !strings.Contains(out, "550 5.1.1") {
		t.Errorf("no 550 5.1.1 reply:\n%s", out)
	}

	out, code = testenv.Swaks(t, "--server", gw.Addr(),
		"--from", "sender@example.org", "--to", "alice@example.test")
	if code != 0 {
		t.Fatalf("known recipient: swaks exit %d:\n%s", code, out)
	}
	pf.WaitMessages(t, "alice@example.test", 1, 30*time.Second)
}

func TestInternalOutageQueuesThenDelivers(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	gw := startGateway(t, baseSettings(t, pf.Addr()))
	pf.Stop()

	const n = 5
	for i := range n {
		out, code := testenv.Swaks(t, "--server", gw.Addr(),
			"--from", "sender@example.org", "--to", "alice@example.test",
			"--header", "Subject: outage "+string(rune('a'+i)))
		if code != 0 {
			t.Fatalf("message %d: swaks exit %d:\n%s", i, code, out)
		}
	}
	// Deliveries fail while Postfix is down; the messages stay queued.
	time.Sleep(3 * time.Second)
	if c := pf.Count(); c != 0 {
		t.Fatalf("%d messages arrived while the internal server was down", c)
	}
	if !strings.Contains(gw.Log(), "deferred") {
		t.Errorf("gateway log has no deferred line:\n%s", gw.Log())
	}

	pf.Start()
	msgs := pf.WaitMessages(t, "alice@example.test", n, 60*time.Second)
	if len(msgs) != n {
		t.Errorf("%d messages delivered after the outage, want %d", len(msgs), n)
	}
}
