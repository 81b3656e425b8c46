package testenv_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/internal/testenv"
)

func TestSinkRecordsClientAndEnvelope(t *testing.T) {
	sink := testenv.StartSink(t, "")

	out, code := testenv.Swaks(t, "--server", sink.Addr(), "--local-interface", "127.0.0.2",
		"--helo", "mx.sender.test", "--from", "bounce@sender.test",
		"--to", "alice@example.test,bob@example.test",
		"--header", "Subject: sink check", "--body", "Body line.")
	if code != 0 {
		t.Fatalf("swaks exit code %d, want 0:\n%s", code, out)
	}

	msgs := sink.WaitMessages(t, 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("sink has %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.ClientAddr != "127.0.0.2" {
		t.Errorf("ClientAddr = %q, want 127.0.0.2", m.ClientAddr)
	}
	if m.HELO != "mx.sender.test" {
		t.Errorf("HELO = %q, want mx.sender.test", m.HELO)
	}
	if m.Proto != "ESMTP" {
		t.Errorf("Proto = %q, want ESMTP", m.Proto)
	}
	if m.MailFrom != "bounce@sender.test" {
		t.Errorf("MailFrom = %q, want bounce@sender.test", m.MailFrom)
	}
	if want := []string{"alice@example.test", "bob@example.test"}; !slices.Equal(m.Rcpts, want) {
		t.Errorf("Rcpts = %q, want %q", m.Rcpts, want)
	}
	if !bytes.Contains(m.Data, []byte("\nSubject: sink check\n")) {
		t.Errorf("Data has no Subject header:\n%s", m.Data)
	}
	if !bytes.Contains(m.Data, []byte("\n\nBody line.\n")) {
		t.Errorf("Data has no body line after the header:\n%s", m.Data)
	}
}

func TestSinkRecordsNullSender(t *testing.T) {
	sink := testenv.StartSink(t, "")

	out, code := testenv.Swaks(t, "--server", sink.Addr(), "--from", "<>", "--to", "alice@example.test")
	if code != 0 {
		t.Fatalf("swaks exit code %d, want 0:\n%s", code, out)
	}

	m := sink.WaitMessages(t, 1, 10*time.Second)[0]
	if m.MailFrom != "" {
		t.Errorf("MailFrom = %q, want empty for the null sender", m.MailFrom)
	}
	if m.MailArgs != "<>" {
		t.Errorf("MailArgs = %q, want <>", m.MailArgs)
	}
}

func TestPostfixRelaysToSink(t *testing.T) {
	sink := testenv.StartSinkWith(t, testenv.SinkOptions{})
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{RelayTo: sink.Addr()})

	testenv.SMTPSource(t, "-s", "2", "-m", "4", "-f", "load@sender.test", "-t", "bob@example.test", pf.Addr())

	msgs := sink.WaitMessages(t, 4, 20*time.Second)
	for _, m := range msgs {
		if !slices.Equal(m.Rcpts, []string{"bob@example.test"}) {
			t.Errorf("relayed Rcpts = %q, want [bob@example.test]", m.Rcpts)
		}
		if m.MailFrom != "load@sender.test" {
			t.Errorf("relayed MailFrom = %q, want load@sender.test", m.MailFrom)
		}
	}
}

func TestSinkDiscardAcceptsLoad(t *testing.T) {
	sink := testenv.StartSinkWith(t, testenv.SinkOptions{Discard: true})

	testenv.SMTPSource(t, "-s", "5", "-m", "50", "-l", "5000", "-f", "load@sender.test",
		"-t", "bob@example.test", sink.Addr())

	if got := sink.Messages(); len(got) != 0 {
		t.Errorf("Messages returned %d dumps in Discard mode, want 0", len(got))
	}
}

func TestPostfixFlushAfterSinkOutage(t *testing.T) {
	sinkAddr := testenv.FreeAddr(t)
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{RelayTo: sinkAddr})

	out, code := testenv.Swaks(t, "--server", pf.Addr(), "--from", "sender@sender.test", "--to", "bob@example.test")
	if code != 0 {
		t.Fatalf("swaks exit code %d, want 0:\n%s", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(pf.Log(), "status=deferred") {
		if time.Now().After(deadline) {
			t.Fatalf("no deferral logged while the sink is down:\n%s", pf.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := pf.Queued(); got != 1 {
		t.Errorf("Queued = %d while the sink is down, want 1", got)
	}

	sink := testenv.StartSink(t, sinkAddr)
	pf.Flush()
	sink.WaitMessages(t, 1, 10*time.Second)
	deadline = time.Now().Add(10 * time.Second)
	for pf.Queued() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := pf.Queued(); got != 0 {
		t.Errorf("Queued = %d after delivery, want 0", got)
	}
}
